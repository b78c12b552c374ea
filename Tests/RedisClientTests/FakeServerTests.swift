import Foundation
import Glibc
import HTTPCore
import RedisClient
import TestSupport
import XCTest

/// The client against a scripted fake server, for replies a real Redis never sends.
final class FakeServerTests: XCTestCase {
  private var running: LoopThread?
  private var connection: RedisConnection?

  override func tearDown() {
    if let running {
      nonisolated(unsafe) let connection = connection
      _ = running.sync { connection?.close() }
      XCTAssertTrue(running.stop(), "the event loop did not stop")
    }
    running = nil
    connection = nil
  }

  /// A command far larger than the socket buffers hold while the server reads nothing.
  private static let bigCommand = [
    Array("SET".utf8), Array("big".utf8), [UInt8](repeating: 120, count: 32 << 20),
  ]

  /// A connection to the fake server on `port`, and the loop of its own it runs on; both closed
  /// in tearDown.
  private func connect(
    to port: Int, _ configure: (inout RedisConnection.Configuration) -> Void
  ) throws -> (LoopThread, RedisConnection) {
    let running = try LoopThread()
    var configuration = RedisConnection.Configuration(host: "127.0.0.1", port: port)
    configure(&configuration)
    let connection = RedisConnection(loop: running.loop, configuration: configuration)
    self.running = running
    self.connection = connection
    return (running, connection)
  }

  /// `SET a 1` and `GET a` as the client sends them.
  private static let bothCommands = Array(
    "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n".utf8)

  /// A reply the client cannot parse fails the command it answers and drops the connection.
  /// (It also asserted that the two commands came in one write, which depends on when the loop
  /// writes: it failed once in CI.)
  func testAnInvalidReplyFailsTheCommandAndDropsTheConnection() throws {
    let listener = try Socket.listen(host: "127.0.0.1", port: 0)
    defer { close(listener) }
    let port = Socket.localPort(listener)
    let served = DispatchSemaphore(value: 0)
    let received = Outcome()
    Thread.detachNewThread {
      defer { served.signal() }
      guard Self.waitReadable(listener) else { return }
      let (fd, _) = Socket.accept(listener)
      guard fd >= 0 else { return }
      defer { close(fd) }
      // Both commands, in one write or in two (the test's thread hands them to the loop one
      // by one, which may write the first before the second comes), then the replies.
      var bytes: [UInt8] = []
      var buffer = [UInt8](repeating: 0, count: 1024)
      while bytes.count < Self.bothCommands.count, Self.waitReadable(fd) {
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { break }
        bytes += buffer[0..<count]
      }
      received.record(.success(.bulk(bytes)), onLoop: false)
      let reply = Array("+OK\r\n%1\r\n".utf8)  // a good reply, then a RESP3 map
      _ = write(fd, reply, reply.count)
      _ = Self.waitReadable(fd)  // until the client hangs up
    }
    let (running, redis) = try connect(to: port) { $0.unavailableTimeout = 10 }
    let first = running.send(redis, ["SET", "a", "1"])
    let second = running.send(redis, ["GET", "a"])
    XCTAssertEqual(try first.wait()?.get(), .simple("OK"))
    guard case .failure(.connectionLost(let reason))? = second.wait() else {
      return XCTFail("the command answered by garbage did not fail as connectionLost")
    }
    XCTAssertTrue(reason.contains("unknown RESP type byte 0x25"), reason)
    XCTAssertEqual(try received.wait()?.get().bytes, Self.bothCommands)
    XCTAssertEqual(served.wait(timeout: .now() + 10), .success, "the client did not hang up")
  }

  func testCommandsNotFullyWrittenWhenTheConnectionDropsAreSentAgain() throws {
    let listener = try Socket.listen(host: "127.0.0.1", port: 0)
    defer { close(listener) }
    let port = Socket.localPort(listener)
    let big = Self.bigCommand
    let small = ["GET", "small"]
    let expected = RESPEncoder.command(big).count + RESPEncoder.command(small).count
    let served = DispatchSemaphore(value: 0)
    let secondReceived = Outcome()
    Thread.detachNewThread {
      defer { served.signal() }
      // First connection: take some bytes, then reset it with most of the command unread.
      guard Self.waitReadable(listener) else { return }
      let (first, _) = Socket.accept(listener)
      guard first >= 0, Self.waitReadable(first) else { return }
      Thread.sleep(forTimeInterval: 0.1)
      close(first)
      // Second connection: read both commands whole, answer both.
      guard Self.waitReadable(listener) else { return }
      let (second, _) = Socket.accept(listener)
      guard second >= 0 else { return }
      defer { close(second) }
      var total = 0
      var buffer = [UInt8](repeating: 0, count: 1 << 20)
      while total < expected, Self.waitReadable(second) {
        let count = read(second, &buffer, buffer.count)
        if count > 0 { total += count } else if count == 0 || errno != EAGAIN { break }
      }
      secondReceived.record(.success(.integer(Int64(total))), onLoop: false)
      let reply = Array("+OK\r\n$2\r\nok\r\n".utf8)
      _ = write(second, reply, reply.count)
    }
    let (running, redis) = try connect(to: port) { $0.unavailableTimeout = 10 }
    nonisolated(unsafe) let connection = redis
    let setOutcome = Outcome()
    let getOutcome = Outcome()
    running.loop.execute {
      connection.send(big) { setOutcome.record($0, onLoop: true) }
      connection.send(small) { getOutcome.record($0, onLoop: true) }
    }
    XCTAssertEqual(try setOutcome.wait()?.get(), .simple("OK"))
    XCTAssertEqual(try getOutcome.wait()?.get().string, "ok")
    XCTAssertEqual(try secondReceived.wait()?.get().int, Int64(expected))
    XCTAssertEqual(served.wait(timeout: .now() + 10), .success)
  }

  /// A server that takes connections and reads nothing (hung, its socket buffers full): with a
  /// reply timeout, a command too large to be written whole and the one queued behind it fail
  /// as unavailable once the timeout passes, instead of being sent again on each new connection
  /// and waiting for good (helper-38's review).
  func testCommandsStuckBehindAHungServersFullBufferFailAfterTheReplyTimeout() throws {
    let listener = try Socket.listen(host: "127.0.0.1", port: 0)  // never accepts: the kernel does
    defer { close(listener) }
    let (running, redis) = try connect(to: Socket.localPort(listener)) { $0.replyTimeout = 0.5 }
    nonisolated(unsafe) let connection = redis
    let big = Self.bigCommand
    let bigOutcome = Outcome()
    let smallOutcome = Outcome()
    running.loop.execute {
      connection.send(big) { bigOutcome.record($0, onLoop: true) }
      connection.send(["GET", "small"]) { smallOutcome.record($0, onLoop: true) }
    }
    for outcome in [bigOutcome, smallOutcome] {
      guard case .failure(.unavailable(let reason))? = outcome.wait(timeout: 5) else {
        return XCTFail("a command stuck behind a hung server did not fail as unavailable")
      }
      XCTAssertTrue(reason.contains("no reply within 0.5 s"), reason)
      XCTAssertLessThan(outcome.elapsed, 3)
    }
  }

  /// Polls `fd` for input (or hang-up) for up to 10 s.
  private static func waitReadable(_ fd: Int32) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&entry, 1, 10_000) == 1
  }
}
