/// Starts and stops the factorial-server processes of local entries, when the balancer supervises
/// them (the program's `ProcessLauncher`; tests use a recorder).
public protocol ServerLauncher: AnyObject {
  /// Called when a process exits unexpectedly, or cannot be started (before it is restarted).
  var onExit: ((ServerAddress) -> Void)? { get set }
  /// Called when a process has been started or restarted.
  var onStart: ((ServerAddress) -> Void)? { get set }
  /// Starts a server process for `server` and keeps it running.
  func start(_ server: ServerAddress)
  /// Stops the process of `server` for good.
  func stop(_ server: ServerAddress)
  /// Whether it keeps a process for `server` (started and not stopped since).
  func isSupervising(_ server: ServerAddress) -> Bool
  /// How many times the process of `server` was restarted.
  func restartCount(_ server: ServerAddress) -> Int
  /// Kills the process of `server` if it has run for `grace` seconds (it then restarts): for a
  /// process that is alive but does not answer.
  func killUnresponsive(_ server: ServerAddress, grace: Double)
  /// Stops restarting processes that exit (the balancer is shutting down).
  func stopRestarting()
  /// Stops every process, waiting at most `timeout` seconds before killing.
  func stopAll(timeout: Double)
}
