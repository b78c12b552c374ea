import HTTPCore

/// Asks a server whether it is busy: what the pool needs to settle overdue leases and to bring
/// down servers back.
public protocol HealthProbe: AnyObject {
  /// Calls `completion` (on the caller's thread) with idle, busy, or unreachable.
  func check(_ server: ServerAddress, completion: @escaping (ServerPool.CheckResult) -> Void)
}
