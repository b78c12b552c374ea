import Foundation
import Glibc
import HTTPCore
import XCTest

/// A redis-server child process on 127.0.0.1 for the length of a test, killed (SIGKILL) by
/// `stop()`, which tearDown calls whatever happened. Without persistence, unless `persistent`:
/// then every write goes to an append-only file, so that a restart keeps the data.
public final class RedisServerProcess: @unchecked Sendable {
  public let port: Int
  public let executable: String
  private var process: Process?
  private let logPath: String
  private let dataDirectory: String?

  /// The redis-server binary (`REDIS_SERVER` if set, else from PATH), or nil if there is none.
  public static func findExecutable() -> String? {
    if let chosen = ProcessInfo.processInfo.environment["REDIS_SERVER"] {
      return FileManager.default.isExecutableFile(atPath: chosen) ? chosen : nil
    }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin"]
    for directory in directories {
      let candidate = directory + "/redis-server"
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
  }

  /// The installed redis-server, or a skip (a failure when `CI` is set) saying how to install it.
  public static func requireExecutable() throws -> String {
    if let executable = findExecutable() { return executable }
    let message =
      "redis-server is not installed; install it with "
      + "`apt-get install redis-server` (Debian package redis-server)"
    // In CI a missing server is a failure, not a silently skipped test.
    if ProcessInfo.processInfo.environment["CI"] != nil { throw RedisTestFailure(message) }
    throw XCTSkip(message)
  }

  /// Starts a server on a free port and waits until it answers PING.
  public init(executable: String, persistent: Bool = false) throws {
    self.executable = executable
    port = try Socket.freePorts(1)[0]
    logPath = NSTemporaryDirectory() + "redis-tests-\(getpid())-\(port).log"
    if persistent {
      let directory = NSTemporaryDirectory() + "redis-tests-\(getpid())-\(port)"
      try FileManager.default.createDirectory(
        atPath: directory, withIntermediateDirectories: true)
      dataDirectory = directory
    } else {
      dataDirectory = nil
    }
    try start()
  }

  deinit { stop() }

  /// (Re)starts the server on the same port and waits (≤ 10 s) until it answers PING.
  public func start() throws {
    stop()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments =
      [
        "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no",
        "--logfile", logPath, "--loglevel", "warning",
      ]
      + (dataDirectory.map {
        ["--appendonly", "yes", "--appendfsync", "always", "--dir", $0]
      } ?? ["--appendonly", "no"])
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    self.process = process
    let deadline = Date(timeIntervalSinceNow: 10)
    while Date() < deadline {
      if Self.ping(port: port) { return }
      if !process.isRunning { break }
      Thread.sleep(forTimeInterval: 0.02)
    }
    let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    stop()
    throw RedisTestFailure("redis-server on port \(port) did not answer PING within 10 s: \(log)")
  }

  /// Kills the server (SIGKILL) and waits for it to exit. Harmless if it is not running.
  public func stop() {
    guard let process else { return }
    self.process = nil
    if process.isRunning {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }
  }

  /// Stops the server in its tracks (SIGSTOP): its sockets stay open and nothing answers, as
  /// with a hung Redis or a partition without a reset. `stop()` still kills it.
  public func pause() {
    if let process, process.isRunning { kill(process.processIdentifier, SIGSTOP) }
  }

  /// Lets a paused server run on (SIGCONT).
  public func resume() {
    if let process { kill(process.processIdentifier, SIGCONT) }
  }

  /// Removes the log file; call once the server is stopped for good.
  public func removeLog() {
    try? FileManager.default.removeItem(atPath: logPath)
    if let dataDirectory { try? FileManager.default.removeItem(atPath: dataDirectory) }
  }

  /// Whether a server on 127.0.0.1:`port` answers PING within half a second (blocking sockets).
  public static func ping(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 0, tv_usec: 500_000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard connected == 0 else { return false }
    let request = Array("*1\r\n$4\r\nPING\r\n".utf8)
    guard write(fd, request, request.count) == request.count else { return false }
    var reply = [UInt8](repeating: 0, count: 64)
    let count = read(fd, &reply, reply.count)
    return count >= 7 && String(decoding: reply[0..<7], as: UTF8.self) == "+PONG\r\n"
  }
}

/// A failure raised by the test helpers.
public struct RedisTestFailure: Error, CustomStringConvertible {
  public let description: String
  public init(_ description: String) { self.description = description }
}
