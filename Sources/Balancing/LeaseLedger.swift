/// The in-process `LeaseStore`: leases by token, by server and by client, and the counts. Every
/// step completes at once, and the steps of a lease's life are also offered without completions
/// (`record`, `report(token:port:)`), so that the hot path builds no closure. Call from one
/// thread.
public final class LeaseLedger: LeaseStore {
  /// One server's book: its tokens, oldest first, and how many leases it was handed. A class,
  /// so that a lease is filed or taken off with one lookup and no write back to the dictionary.
  private final class ServerBook {
    var tokens: [String] = []
    var served = 0

    func add(_ token: String) {
      tokens.append(token)
      served += 1
    }

    /// Removes `token`: usually the oldest, often the only one.
    func remove(_ token: String) {
      if tokens.first == token {
        tokens.removeFirst()
      } else {
        tokens.removeAll { $0 == token }
      }
    }
  }

  private var byToken: [String: Lease] = [:]
  /// Each server's book (an emptied one is kept for the server's next lease).
  private var byServer: [ServerAddress: ServerBook] = [:]
  /// Leases not known to be used, by client address.
  private var unclaimedByClient: [String: Int] = [:]
  /// Down servers' stranded leases (see `LeaseStore.strandedLeases(of:)`).
  private var stranded = StrandedLeases()
  public private(set) var counts = LeaseCounts()

  public init() {}

  public func leases(of server: ServerAddress) -> [Lease] {
    (byServer[server]?.tokens ?? []).compactMap { byToken[$0] }
  }

  public func inFlight(_ server: ServerAddress) -> Int { byServer[server]?.tokens.count ?? 0 }

  public var leasedServers: [ServerAddress] {
    byServer.compactMap { $0.value.tokens.isEmpty ? nil : $0.key }
  }

  public func servedCount(_ server: ServerAddress) -> Int { byServer[server]?.served ?? 0 }

  public func unclaimedCount(of client: String) -> Int { unclaimedByClient[client] ?? 0 }

  public func issue(_ lease: Lease, completion: @escaping () -> Void) {
    record(lease)
    completion()
  }

  /// Records a new lease, at once.
  public func record(_ lease: Lease) {
    let previous = byToken.updateValue(lease, forKey: lease.token)
    precondition(previous == nil, "lease token issued twice")
    if let book = byServer[lease.server] {
      book.add(lease.token)
    } else {
      let book = ServerBook()
      book.add(lease.token)
      byServer[lease.server] = book
    }
    if Self.isUnclaimed(lease.claim) { unclaimedByClient[lease.client, default: 0] += 1 }
    counts.issued += 1
    counts.inFlight += 1
  }

  public func report(token: String, port: Int, completion: @escaping (ReportOutcome) -> Void) {
    completion(report(token: token, port: port))
  }

  /// A report naming a lease, at once: it ends if it is outstanding and its server has that port.
  public func report(token: String, port: Int) -> ReportOutcome {
    guard let index = byToken.index(forKey: token), byToken.values[index].server.port == port
    else { return .wrongToken(port: port) }
    let lease = byToken.remove(at: index).value
    forgetEnded(lease)
    counts.reported += 1
    return .released(lease)
  }

  public func reportWithoutToken(
    _ server: ServerAddress, completion: @escaping (ReportOutcome) -> Void
  ) {
    guard let oldest = byServer[server]?.tokens.first, let lease = end(oldest) else {
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
    let ended = (byServer[server]?.tokens ?? []).compactMap { end($0) }
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
    guard byServer[server]?.tokens.isEmpty ?? true else { return }
    byServer[server] = nil
  }

  public func strandedLeases(of server: ServerAddress) -> [Lease]? { stranded.leases(of: server) }

  public func strand(_ leases: [Lease], of server: ServerAddress) {
    stranded.strand(leases, of: server)
  }

  public func settleStranded(_ lease: Lease) { stranded.settle(lease) }

  public func releaseStranded(_ server: ServerAddress) { stranded.release(server) }

  public var strandedServers: [ServerAddress] { stranded.servers }

  public func moveStranded(from old: ServerAddress, to new: ServerAddress) {
    stranded.move(from: old, to: new)
  }

  /// Ends the lease `token`; nil if it had ended.
  private func end(_ token: String) -> Lease? {
    guard let lease = byToken.removeValue(forKey: token) else { return nil }
    forgetEnded(lease)
    return lease
  }

  /// Takes an ended lease (already out of `byToken`) off its server's and its client's books.
  private func forgetEnded(_ lease: Lease) {
    byServer[lease.server]?.remove(lease.token)
    if Self.isUnclaimed(lease.claim) { adjustUnclaimed(lease.client, by: -1) }
    counts.inFlight -= 1
  }

  private func adjustUnclaimed(_ client: String, by change: Int) {
    guard let index = unclaimedByClient.index(forKey: client) else {
      if change > 0 { unclaimedByClient[client] = change }
      return
    }
    let count = unclaimedByClient.values[index] + change
    if count > 0 {
      unclaimedByClient.values[index] = count
    } else {
      unclaimedByClient.remove(at: index)
    }
  }

  /// Whether a lease in this claim state counts as not known to be used.
  private static func isUnclaimed(_ claim: Lease.Claim) -> Bool { claim != .started }
}
