import HTTPCore

/// What the balancer asks a server, and what it needs to hear: whether it is busy (to settle
/// overdue leases and bring down servers back), and whether an unclaimed lease's job started
/// (to take back a lease its client never used).
public protocol HealthProbe: AnyObject {
  /// Calls `completion` (on the caller's thread) with idle, busy, or unreachable.
  func check(_ server: ServerAddress, completion: @escaping (ServerPool.CheckResult) -> Void)
  /// Asks the lease's server to revoke it unless its job started; calls `completion` (on the
  /// caller's thread) with what the server did.
  func revoke(_ lease: Lease, completion: @escaping (RevokeResult) -> Void)
}

/// What a server did when asked to revoke an unclaimed lease.
public enum RevokeResult: Sendable, Equatable {
  /// The job had not started; the server will refuse the lease from now on.
  case revoked
  /// The client came with the lease: its job started.
  case started
  /// The server cannot tell (a server written for the original), or did not answer.
  case unknown
}
