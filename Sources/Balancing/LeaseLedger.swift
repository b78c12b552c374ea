/// The in-process `LeaseStore`: leases by token, by server and by client, and the counts. Every
/// step completes at once. Call from one thread.
public final class LeaseLedger: LeaseStore {
  private var byToken: [String: Lease] = [:]
  /// Each server's tokens, oldest first (an emptied list is kept for the server's next lease).
  private var byServer: [ServerAddress: [String]] = [:]
  private var served: [ServerAddress: Int] = [:]
  /// Leases not known to be used, by client address.
  private var unclaimedByClient: [String: Int] = [:]
  public private(set) var counts = LeaseCounts()

  public init() {}

  public func leases(of server: ServerAddress) -> [Lease] {
    (byServer[server] ?? []).compactMap { byToken[$0] }
  }

  public func inFlight(_ server: ServerAddress) -> Int { byServer[server]?.count ?? 0 }

  public func servedCount(_ server: ServerAddress) -> Int { served[server] ?? 0 }

  public func unclaimedCount(of client: String) -> Int { unclaimedByClient[client] ?? 0 }

  public func issue(_ lease: Lease, completion: @escaping () -> Void) {
    precondition(byToken[lease.token] == nil, "lease token issued twice")
    byToken[lease.token] = lease
    byServer[lease.server, default: []].append(lease.token)
    served[lease.server, default: 0] += 1
    if Self.isUnclaimed(lease.claim) { unclaimedByClient[lease.client, default: 0] += 1 }
    counts.issued += 1
    counts.inFlight += 1
    completion()
  }

  public func report(token: String, port: Int, completion: @escaping (ReportOutcome) -> Void) {
    guard let lease = byToken[token], lease.server.port == port else {
      return completion(.wrongToken(port: port))
    }
    _ = end(token)
    counts.reported += 1
    completion(.released(lease))
  }

  public func reportWithoutToken(
    _ server: ServerAddress, completion: @escaping (ReportOutcome) -> Void
  ) {
    guard let oldest = byServer[server]?.first, let lease = end(oldest) else {
      return completion(.notLeased(server))
    }
    counts.reported += 1
    completion(.released(lease))
  }

  public func expire(_ token: String, completion: @escaping (Lease?) -> Void) {
    let lease = end(token)
    if lease != nil { counts.expired += 1 }
    completion(lease)
  }

  public func reclaim(_ token: String, completion: @escaping (Lease?) -> Void) {
    let lease = end(token)
    if lease != nil { counts.reclaimed += 1 }
    completion(lease)
  }

  public func expireAll(of server: ServerAddress, completion: @escaping ([Lease]) -> Void) {
    let ended = (byServer[server] ?? []).compactMap { end($0) }
    counts.expired += ended.count
    completion(ended)
  }

  public func extend(_ token: String, until deadline: UInt64) {
    guard var lease = byToken[token] else { return }
    lease.deadline = deadline
    lease.extensions += 1
    lease.isBeingChecked = false
    byToken[token] = lease
  }

  public func postpone(_ token: String, until deadline: UInt64) {
    guard var lease = byToken[token] else { return }
    lease.deadline = deadline
    lease.isBeingChecked = false
    byToken[token] = lease
  }

  public func setClaim(_ token: String, _ claim: Lease.Claim) {
    guard var lease = byToken[token] else { return }
    let wasUnclaimed = Self.isUnclaimed(lease.claim)
    lease.claim = claim
    byToken[token] = lease
    if wasUnclaimed != Self.isUnclaimed(claim) {
      adjustUnclaimed(lease.client, by: wasUnclaimed ? -1 : 1)
    }
  }

  public func takeOverdue(now: UInt64, completion: @escaping ([Lease]) -> Void) {
    var due: [Lease] = []
    for (token, var lease) in byToken where !lease.isBeingChecked && lease.deadline <= now {
      lease.isBeingChecked = true
      byToken[token] = lease
      due.append(lease)
    }
    completion(due.sorted { ($0.issued, $0.token) < ($1.issued, $1.token) })
  }

  public func takeUnclaimed(now: UInt64, completion: @escaping ([Lease]) -> Void) {
    var due: [Lease] = []
    for (token, var lease) in byToken where lease.claim == .unclaimed && lease.claimDeadline <= now
    {
      lease.claim = .checking
      byToken[token] = lease
      due.append(lease)
    }
    completion(due.sorted { ($0.issued, $0.token) < ($1.issued, $1.token) })
  }

  public func forget(_ server: ServerAddress) {
    guard byServer[server]?.isEmpty ?? true else { return }
    byServer[server] = nil
    served[server] = nil
  }

  private func end(_ token: String) -> Lease? {
    guard let lease = byToken.removeValue(forKey: token) else { return nil }
    byServer[lease.server]?.removeAll { $0 == token }
    if Self.isUnclaimed(lease.claim) { adjustUnclaimed(lease.client, by: -1) }
    counts.inFlight -= 1
    return lease
  }

  private func adjustUnclaimed(_ client: String, by change: Int) {
    let count = (unclaimedByClient[client] ?? 0) + change
    unclaimedByClient[client] = count > 0 ? count : nil
  }

  /// Whether a lease in this claim state counts as not known to be used.
  private static func isUnclaimed(_ claim: Lease.Claim) -> Bool { claim != .started }
}
