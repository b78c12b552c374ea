/// The leases that ended unreported when their server was found down, by server: each must be
/// revoked at its server before that server is handed out again (a client held up by a
/// partition may still come with one). The in-memory book behind `LeaseStore`'s stranded-lease
/// steps: the ledger keeps one, the shared store a copy of the one in Redis.
public struct StrandedLeases: Sendable {
  private var byServer: [ServerAddress: [Lease]] = [:]

  public init() {}

  /// `server`'s stranded leases; nil if none holds it back, empty once each is settled.
  public func leases(of server: ServerAddress) -> [Lease]? { byServer[server] }

  /// The servers held back, or still to be released.
  public var servers: [ServerAddress] { Array(byServer.keys) }

  /// Holds `server` back for `leases` as well.
  public mutating func strand(_ leases: [Lease], of server: ServerAddress) {
    byServer[server, default: []] += leases
  }

  /// `lease` was settled at its server: it holds it back no longer (the server stays listed
  /// until `release`).
  public mutating func settle(_ lease: Lease) {
    byServer[lease.server]?.removeAll { $0.token == lease.token }
  }

  /// `server` is handed out again.
  public mutating func release(_ server: ServerAddress) { byServer[server] = nil }

  /// Moves `old`'s stranded leases to `new` (the same process, listed again); whether there
  /// were any.
  @discardableResult
  public mutating func move(from old: ServerAddress, to new: ServerAddress) -> Bool {
    guard old != new, let leases = byServer.removeValue(forKey: old) else { return false }
    byServer[new, default: []] += leases.map { $0.moved(to: new) }
    return true
  }
}
