import Balancing
import Foundation
import HTTPCore
import RedisClient
import TestSupport
import XCTest

@testable import SharedQueue

/// What the clients of a test got, in order, by name.
final class Answers: @unchecked Sendable {
  private let lock = NSLock()
  private var list: [(name: String, answer: ClaimAnswer)] = []

  func record(_ name: String, _ answer: ClaimAnswer) {
    lock.withLock { list.append((name, answer)) }
  }

  var all: [(name: String, answer: ClaimAnswer)] { lock.withLock { list } }

  /// The lease `name` got, if it got one.
  func lease(of name: String) -> Lease? {
    for entry in all where entry.name == name {
      if case .lease(let lease) = entry.answer { return lease }
    }
    return nil
  }
}

/// A test of the shared books: a real redis-server (started by `startRedis`), an event loop on
/// a thread of its own for the balancers' parts, and a connection of the test's own to look at
/// Redis. tearDown shuts the dispatchers down, closes every connection, stops the loop and kills
/// the server, whatever happened.
class SharedBooksTestCase: XCTestCase {
  var redis: RedisServerProcess!
  var running: LoopThread!
  private var dispatchers: [SharedQueueDispatcher] = []
  private var connections: [RedisConnection] = []
  private var observer: RedisConnection?

  override func setUpWithError() throws {
    running = try LoopThread()
  }

  override func tearDown() {
    if let running {
      let all = connections + (observer.map { [$0] } ?? [])
      nonisolated(unsafe) let closing = all
      nonisolated(unsafe) let stopping = dispatchers
      _ = running.sync {
        for dispatcher in stopping { dispatcher.shutDown(reason: "test over") }
        for connection in closing { connection.close() }
      }
      running.stop()
    }
    dispatchers = []
    connections = []
    observer = nil
    redis?.stop()
    redis?.removeLog()
  }

  func startRedis(persistent: Bool = false) throws {
    redis = try RedisServerProcess(
      executable: try RedisServerProcess.requireExecutable(), persistent: persistent)
  }

  /// A connection for a balancer's part; closed in tearDown.
  func connection(unavailableTimeout: Double = 10) -> RedisConnection {
    var configuration = RedisConnection.Configuration(host: "127.0.0.1", port: redis.port)
    configuration.unavailableTimeout = unavailableTimeout
    let made = RedisConnection(loop: running.loop, configuration: configuration)
    connections.append(made)
    return made
  }

  /// A dispatcher to shut down in tearDown (so that no client waits on).
  func register(_ dispatcher: SharedQueueDispatcher) { dispatchers.append(dispatcher) }

  /// Runs `body` on the loop and waits for it to call back; nil on timeout.
  func wait<T>(timeout: Double = 10, _ body: @escaping (@escaping (T) -> Void) -> Void) -> T? {
    let result = NSLock()
    nonisolated(unsafe) var value: T?
    let done = DispatchSemaphore(value: 0)
    running.loop.execute {
      body { got in
        result.withLock { value = got }
        done.signal()
      }
    }
    guard done.wait(timeout: .now() + timeout) == .success else { return nil }
    return result.withLock { value }
  }

  /// A client named `name` asks through `ask` (a dispatcher's or a broker's); its answer goes to
  /// `answers`.
  func claim(_ name: String, answers: Answers, _ ask: @escaping (ServerClaim) -> Void) {
    _ = running.sync {
      ask(
        ServerClaim(client: "127.0.0.1", key: name) { answer, _ in
          answers.record(name, answer)
          return true
        })
    }
  }

  func eventually(
    _ description: String, timeout: Double = 10, file: StaticString = #filePath,
    line: UInt = #line, _ condition: () -> Bool
  ) {
    running.eventually(description, timeout: timeout, file: file, line: line, condition)
  }

  /// A command on the test's own connection (not one of a balancer's).
  func redisCommand(_ command: [String]) -> RESPValue? {
    if observer == nil {
      observer = running.sync {
        RedisConnection(loop: self.running.loop, host: "127.0.0.1", port: self.redis.port)
      }
    }
    let connection = observer!
    let result: Result<RESPValue, RedisError>? = wait { done in
      connection.send(command) { done($0) }
    }
    return try? result?.get()
  }

  /// A command's answer as a list of strings.
  func strings(_ command: [String]) -> [String] {
    redisCommand(command)?.array?.compactMap(\.string) ?? []
  }
}
