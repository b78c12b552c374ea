import HTTPCore

/// Hands a chosen server to a claim: a fresh lease recorded in the `LeaseStore`, then the answer
/// to the client. The one place where a decision of a dispatcher becomes an effect.
public final class LeaseIssuer {
  public let store: LeaseStore
  /// Seconds a lease is trusted before it is checked (or, under the other policies, ends).
  public var leaseTimeout: Double
  /// Seconds after which a lease not known to be used is checked with its server (0: never).
  public var claimTimeout = 3.0
  /// The current monotonic time in nanoseconds.
  public var clock: () -> UInt64 = MonotonicClock.now
  private var tokens = LeaseTokenSource()
  /// The store, when it is the in-process ledger: leases are then granted at once.
  private let ledger: LeaseLedger?

  public init(store: LeaseStore, leaseTimeout: Double = 60) {
    self.store = store
    self.leaseTimeout = leaseTimeout
    ledger = store as? LeaseLedger
  }

  /// Leases `server` to `claim` and answers it. `completion` gets false if the client was gone
  /// (then no lease is left behind, and the server is the caller's to pass on).
  public func grant(
    _ server: ServerAddress, to claim: ServerClaim, completion: @escaping (Bool) -> Void
  ) {
    if let delivered = grantAtOnce(server, to: claim) { return completion(delivered) }
    guard claim.isOpen else { return completion(false) }
    let lease = makeLease(server, for: claim)
    store.issue(lease) { [store] in
      if claim.answer(.lease(lease)) { return completion(true) }
      // The connection went away without a word: the lease is void at once.
      store.expire(lease.token) { _ in completion(false) }
    }
  }

  /// Leases `server` to `claim` and answers it now, if the store records leases at once (the
  /// in-process ledger): whether the client got it (if not, no lease is left behind). Nil for
  /// a store that answers later: use `grant(_:to:completion:)`.
  public func grantAtOnce(_ server: ServerAddress, to claim: ServerClaim) -> Bool? {
    guard let ledger else { return nil }
    guard claim.isOpen else { return false }
    let lease = makeLease(server, for: claim)
    ledger.record(lease)
    if claim.answer(.lease(lease)) { return true }
    // The connection went away without a word: the lease is void at once.
    ledger.expire(lease.token) { _ in }
    return false
  }

  private func makeLease(_ server: ServerAddress, for claim: ServerClaim) -> Lease {
    let now = clock()
    var lease = Lease(
      token: tokens.next(), server: server, issued: now,
      deadline: now + MonotonicClock.nanoseconds(leaseTimeout))
    lease.client = claim.client
    if claimTimeout > 0 { lease.claimDeadline = now + MonotonicClock.nanoseconds(claimTimeout) }
    return lease
  }
}
