/// The in-process `LeaseStore`: leases by token and by server, and the counts. Every step
/// completes at once. Call from one thread.
public final class LeaseLedger: LeaseStore {
  private var byToken: [String: Lease] = [:]
  /// Each server's tokens, oldest first.
  private var byServer: [ServerAddress: [String]] = [:]
  private var served: [ServerAddress: Int] = [:]
  public private(set) var counts = LeaseCounts()

  public init() {}

  public func leases(of server: ServerAddress) -> [Lease] {
    (byServer[server] ?? []).compactMap { byToken[$0] }
  }

  public func inFlight(_ server: ServerAddress) -> Int { byServer[server]?.count ?? 0 }

  public func servedCount(_ server: ServerAddress) -> Int { served[server] ?? 0 }

  public func issue(_ lease: Lease, completion: @escaping () -> Void) {
    precondition(byToken[lease.token] == nil, "lease token issued twice")
    byToken[lease.token] = lease
    byServer[lease.server, default: []].append(lease.token)
    served[lease.server, default: 0] += 1
    counts.issued += 1
    counts.inFlight += 1
    completion()
  }

  public func report(
    _ server: ServerAddress, token: String?, completion: @escaping (ReportOutcome) -> Void
  ) {
    guard let oldest = byServer[server]?.first else {
      return completion(.notLeased(server))
    }
    let chosen: String
    if let token {
      guard let lease = byToken[token], lease.server == server else {
        return completion(.wrongToken(server))
      }
      chosen = lease.token
    } else {
      chosen = oldest
    }
    let lease = end(chosen)!
    counts.reported += 1
    completion(.released(lease))
  }

  public func expire(_ token: String, completion: @escaping (Lease?) -> Void) {
    let lease = end(token)
    if lease != nil { counts.expired += 1 }
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

  public func takeOverdue(now: UInt64, completion: @escaping ([Lease]) -> Void) {
    var due: [Lease] = []
    for (token, var lease) in byToken where !lease.isBeingChecked && lease.deadline <= now {
      lease.isBeingChecked = true
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
    // An emptied list is kept (with its storage) for the server's next lease.
    byServer[lease.server]?.removeAll { $0 == token }
    counts.inFlight -= 1
    return lease
  }
}
