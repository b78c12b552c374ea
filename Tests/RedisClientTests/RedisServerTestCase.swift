import Foundation
import HTTPCore
import RedisClient
import TestSupport
import XCTest

/// A test case with its own redis-server and event loop thread; tearDown closes the connections
/// the test made, stops the loop and kills the server, whatever happened.
class RedisServerTestCase: XCTestCase {
  var server: RedisServerProcess!
  var running: LoopThread!
  private var connections: [RedisConnection] = []

  override func setUpWithError() throws {
    let executable = try RedisServerProcess.requireExecutable()
    server = try RedisServerProcess(executable: executable)
    running = try LoopThread()
  }

  override func tearDown() {
    if let running {
      let all = connections
      nonisolated(unsafe) let closing = all
      _ = running.sync { for connection in closing { connection.close() } }
      XCTAssertTrue(running.stop(), "the event loop did not stop")
    }
    connections.removeAll()
    running = nil
    server?.stop()
    server?.removeLog()
    server = nil
  }

  /// A connection to this test's server, closed in tearDown.
  func makeConnection(
    _ configure: (inout RedisConnection.Configuration) -> Void = { _ in }
  ) -> RedisConnection {
    var configuration = RedisConnection.Configuration(host: "127.0.0.1", port: server.port)
    configuration.unavailableTimeout = 10
    configure(&configuration)
    let connection = RedisConnection(loop: running.loop, configuration: configuration)
    connections.append(connection)
    return connection
  }

  /// Waits until Redis reports `count` clients blocked (BLPOP) — their commands have arrived.
  func waitForBlockedClients(_ count: Int, using connection: RedisConnection) {
    running.eventually("\(count) client(s) blocked") {
      guard case .success(let info)? = running.call(connection, ["INFO", "clients"]) else {
        return false
      }
      return info.string?.contains("blocked_clients:\(count)\r\n") == true
    }
  }
}
