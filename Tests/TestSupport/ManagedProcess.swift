import Foundation
import Glibc
import HTTPCore

/// A program under test: started with its output captured, stopped (SIGKILL if need be) when the
/// test ends, whatever happened.
public final class ManagedProcess: @unchecked Sendable {
  public let process = Process()
  private let lock = NSLock()
  private var captured = ""
  private let pipe = Pipe()

  /// Starts `executable` (a product name, found beside the test bundle, or an absolute path)
  /// with `arguments`.
  public init(
    _ executable: String, _ arguments: [String], directory: String? = nil,
    environment: [String: String] = [:]
  ) throws {
    process.executableURL =
      executable.hasPrefix("/")
      ? URL(fileURLWithPath: executable)
      : Self.productsDirectory.appendingPathComponent(executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    var env = ProcessInfo.processInfo.environment
    env["LB_PORT"] = nil
    env["LB_IP_ADDR"] = nil
    for (key, value) in environment { env[key] = value }
    process.environment = env
    process.standardOutput = pipe
    process.standardError = pipe
    pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
      let data = handle.availableData
      guard let self, !data.isEmpty else { return }
      self.lock.lock()
      self.captured += String(decoding: data, as: UTF8.self)
      self.lock.unlock()
    }
    try process.run()
  }

  deinit { stop() }

  /// Everything the program printed so far (stdout and stderr).
  public var output: String {
    lock.lock()
    defer { lock.unlock() }
    return captured
  }

  /// Waits until the output contains `text`; throws after `timeout` seconds or if the program exits.
  public func waitForOutput(_ text: String, timeout: Double = 20) throws {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while Date() < deadline {
      if output.contains(text) { return }
      if !process.isRunning {
        Thread.sleep(forTimeInterval: 0.05)
        if output.contains(text) { return }
        throw TestFailure(
          "program exited (\(process.terminationStatus)) before printing '\(text)': \(output)")
      }
      Thread.sleep(forTimeInterval: 0.01)
    }
    throw TestFailure("timed out waiting for '\(text)' in: \(output)")
  }

  /// Waits for the program to exit by itself; returns its status, or nil after `timeout`.
  public func waitForExit(timeout: Double = 10) -> Int32? {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    if process.isRunning { return nil }
    Thread.sleep(forTimeInterval: 0.05)  // let the output handler drain
    return process.terminationStatus
  }

  /// Sends `signal`.
  public func signal(_ signal: Int32) {
    if process.isRunning { kill(process.processIdentifier, signal) }
  }

  /// SIGTERM, then SIGKILL if it has not exited within two seconds.
  public func stop() {
    guard process.isRunning else { return }
    kill(process.processIdentifier, SIGTERM)
    if waitForExit(timeout: 2) == nil {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }
  }

  /// Where `swift build` put the executables: beside the running test binary.
  public static var productsDirectory: URL {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var directory = executable.deletingLastPathComponent()
    // The test binary may sit inside a .xctest bundle directory.
    while directory.path != "/"
      && !FileManager.default.fileExists(
        atPath: directory.appendingPathComponent("balancer").path)
    {
      directory = directory.deletingLastPathComponent()
    }
    return directory
  }
}

/// A port that was free a moment ago (bound to port 0, then released).
public func freePort() throws -> Int { try freePorts(1)[0] }

/// `count` distinct ports that were free a moment ago.
public func freePorts(_ count: Int) throws -> [Int] { try Socket.freePorts(count) }
