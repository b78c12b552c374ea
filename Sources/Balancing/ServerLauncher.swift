/// Starts and stops the factorial-server processes of local entries, when the balancer supervises
/// them (the program's `ProcessLauncher`; tests use a recorder).
public protocol ServerLauncher: AnyObject {
  /// Starts a server process for `server` and keeps it running.
  func start(_ server: ServerAddress)
  /// Stops the process of `server` for good.
  func stop(_ server: ServerAddress)
  /// How many times the process of `server` was restarted.
  func restartCount(_ server: ServerAddress) -> Int
}
