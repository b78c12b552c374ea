import HTTPCore

/// What the balancer asks a server, and what it needs to hear: whether it is busy (to settle
/// overdue leases and bring down servers back), and whether a lease's job started (to take back
/// a lease its client never used, or one that ended while its server was down).
public protocol HealthProbe: AnyObject {
  /// Calls `completion` (on the caller's thread) with idle, busy, or unreachable.
  func check(_ server: ServerAddress, completion: @escaping (ServerPool.CheckResult) -> Void)
  /// Asks the lease's server to revoke it unless its job started; calls `completion` (on the
  /// caller's thread) with what the server did.
  func revoke(_ lease: Lease, completion: @escaping (RevokeResult) -> Void)
}

/// What a server did when asked to revoke a lease.
public enum RevokeResult: Sendable, Equatable {
  /// The job had not started; the server will refuse the lease from now on.
  case revoked
  /// The client came with the lease: its job started.
  case started
  /// The server answered but cannot tell (a server written for the original): asking again
  /// would tell no more.
  case unknown
  /// No answer (no connection, a timeout, or all its connections taken): the server may not
  /// have heard, so nothing is known of the lease.
  case unreachable
}
