import Balancing
import Foundation
import HTTPCore

/// Runs one `factorial-server` process per local server and keeps it running: a process that
/// exits is restarted with back-off (so one that dies at start does not spin), one that stops
/// answering is killed and restarted, and all of them are stopped with the balancer.
///
/// Call from the event loop's thread; process exits are brought back to it.
public final class ProcessLauncher: ServerLauncher {
  private struct Child {
    var process: Process?
    var startedAt: UInt64 = 0
    var restarts = 0
    var backoff = 0.0
    var restartTimer: TimerID?
  }

  private let loop: EventLoop
  private let executable: URL
  /// The command line for a server.
  public var arguments: (ServerAddress) -> [String]
  private var children: [ServerAddress: Child] = [:]
  private var isStopping = false
  public var onExit: ((ServerAddress) -> Void)?
  public var onStart: ((ServerAddress) -> Void)?
  /// Receives one line per start, exit and restart.
  public var log: ((String) -> Void)?

  /// - Parameters:
  ///   - executable: the factorial-server binary.
  ///   - arguments: the command line for a server.
  public init(
    loop: EventLoop, executable: URL, arguments: @escaping (ServerAddress) -> [String] = { _ in [] }
  ) {
    self.loop = loop
    self.executable = executable
    self.arguments = arguments
  }

  public func start(_ server: ServerAddress) {
    guard !isStopping, children[server]?.process == nil else { return }
    children[server, default: Child()].backoff = 0
    launch(server)
  }

  public func stop(_ server: ServerAddress) {
    guard let child = children.removeValue(forKey: server) else { return }
    if let timer = child.restartTimer { loop.cancel(timer) }
    if let process = child.process, process.isRunning {
      log?("\(server): stopping its process")
      process.terminate()
    }
  }

  public func isSupervising(_ server: ServerAddress) -> Bool { children[server] != nil }

  public func restartCount(_ server: ServerAddress) -> Int { children[server]?.restarts ?? 0 }

  /// Whether the process of `server` is running.
  public func isRunning(_ server: ServerAddress) -> Bool {
    children[server]?.process?.isRunning ?? false
  }

  /// Kills (-9) the process of `server` if it has run for at least `grace` seconds; it is then
  /// restarted like any process that exits.
  public func killUnresponsive(_ server: ServerAddress, grace: Double) {
    guard let child = children[server], let process = child.process, process.isRunning,
      loop.now - child.startedAt >= MonotonicClock.nanoseconds(grace)
    else { return }
    log?("\(server): process \(process.processIdentifier) does not answer: killing it")
    kill(process.processIdentifier, SIGKILL)
  }

  /// Stops restarting processes that exit (the balancer is shutting down).
  public func stopRestarting() { isStopping = true }

  /// Stops every process: SIGTERM, then SIGKILL for any still running after `timeout` seconds.
  public func stopAll(timeout: Double = 2) {
    isStopping = true
    let processes = children.values.compactMap(\.process).filter(\.isRunning)
    for child in children.values { if let timer = child.restartTimer { loop.cancel(timer) } }
    children.removeAll()
    for process in processes { process.terminate() }
    let deadline = Date(timeIntervalSinceNow: timeout)
    while processes.contains(where: \.isRunning) && Date() < deadline {
      Thread.sleep(forTimeInterval: 0.01)
    }
    for process in processes where process.isRunning {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }
  }

  private func launch(_ server: ServerAddress) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments(server)
    // The handler runs on Foundation's thread: it only hands the exit to the loop, which owns
    // the launcher.
    nonisolated(unsafe) weak let launcher = self
    let loop = self.loop
    process.terminationHandler = { ended in
      let status = ended.terminationStatus
      loop.execute { launcher?.exited(server, ended, status: status) }
    }
    children[server, default: Child()].restartTimer = nil
    do {
      try process.run()
      children[server]!.process = process
      children[server]!.startedAt = loop.now
      log?("\(server): started process \(process.processIdentifier)")
      onStart?(server)
    } catch {
      log?("\(server): cannot start \(executable.path): \(error)")
      onExit?(server)  // as good as a process that exited at once
      scheduleRestart(server)
    }
  }

  private func exited(_ server: ServerAddress, _ process: Process, status: Int32) {
    guard !isStopping, let child = children[server], child.process === process else { return }
    children[server]!.process = nil
    log?("\(server): process \(process.processIdentifier) exited with status \(status)")
    onExit?(server)
    scheduleRestart(server)
  }

  /// Restarts after a delay that doubles while the process keeps dying young (0.5 s up to
  /// 30 s), and is short again once it has run for ten seconds.
  private func scheduleRestart(_ server: ServerAddress) {
    guard var child = children[server] else { return }
    let ranLong = child.startedAt > 0 && loop.now - child.startedAt > 10_000_000_000
    child.backoff = ranLong ? 0.1 : min(30, max(0.5, child.backoff * 2))
    child.restarts += 1
    let delay = child.backoff
    child.restartTimer = loop.schedule(after: delay) { [weak self] in
      guard let self, self.children[server] != nil, !self.isStopping else { return }
      self.log?("\(server): restarting (restart \(self.children[server]!.restarts))")
      self.launch(server)
    }
    children[server] = child
  }
}
