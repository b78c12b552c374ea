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

  public init(store: LeaseStore, leaseTimeout: Double = 60) {
    self.store = store
    self.leaseTimeout = leaseTimeout
  }

  /// Leases `server` to `claim` and answers it. `completion` gets false if the client was gone
  /// (then no lease is left behind, and the server is the caller's to pass on).
  public func grant(
    _ server: ServerAddress, to claim: ServerClaim, completion: @escaping (Bool) -> Void
  ) {
    guard claim.isOpen else { return completion(false) }
    let now = clock()
    var lease = Lease(
      token: tokens.next(), server: server, issued: now,
      deadline: now + MonotonicClock.nanoseconds(leaseTimeout))
    lease.client = claim.client
    if claimTimeout > 0 { lease.claimDeadline = now + MonotonicClock.nanoseconds(claimTimeout) }
    store.issue(lease) { [store] in
      if claim.answer(.lease(lease)) { return completion(true) }
      // The connection went away without a word: the lease is void at once.
      store.expire(lease.token) { _ in completion(false) }
    }
  }
}
