import Foundation
import Glibc
import HTTPCore
import RedisClient
import Synchronization
import XCTest

/// An event loop running on its own thread for the length of a test; every wait is bounded.
final class LoopThread: @unchecked Sendable {
  let loop: EventLoop
  private let returned = DispatchSemaphore(value: 0)
  private let thread = Mutex<pthread_t?>(nil)
  private var running = true

  init() throws {
    loop = try EventLoop()
    Thread.detachNewThread { [self] in
      thread.withLock { $0 = pthread_self() }
      loop.run()
      returned.signal()
    }
  }

  /// Whether the caller is the loop's thread.
  var isLoopThread: Bool {
    guard let loopThread = thread.withLock({ $0 }) else { return false }
    return pthread_equal(loopThread, pthread_self()) != 0
  }

  /// Runs `body` on the loop and waits (≤ `timeout` s) for its result; nil on timeout.
  func sync<T>(timeout: Double = 10, _ body: @escaping () -> T) -> T? {
    let result = Mutex<T?>(nil)
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) let body = body
    loop.execute {
      let value = body()
      nonisolated(unsafe) let sendable = value
      result.withLock { $0 = sendable }
      done.signal()
    }
    guard done.wait(timeout: .now() + timeout) == .success else { return nil }
    return result.withLock { $0 }
  }

  /// Stops the loop and waits (≤ 10 s) for `run()` to return.
  func stop() -> Bool {
    guard running else { return true }
    running = false
    loop.stop()
    return returned.wait(timeout: .now() + 10) == .success
  }
}

/// Where a completion reports to the test thread: the result, how long it took and whether it
/// ran on the loop's thread.
final class Outcome: @unchecked Sendable {
  private let lock = NSLock()
  private let done = DispatchSemaphore(value: 0)
  private var stored: Result<RESPValue, RedisError>?
  private var storedElapsed = 0.0
  private var storedOnLoop = false
  let started = MonotonicClock.now()

  func record(_ result: Result<RESPValue, RedisError>, onLoop: Bool) {
    lock.withLock {
      stored = result
      storedElapsed = Double(MonotonicClock.now() - started) / 1e9
      storedOnLoop = onLoop
    }
    done.signal()
  }

  /// Waits (≤ `timeout` s) for the result; nil on timeout.
  func wait(timeout: Double = 10) -> Result<RESPValue, RedisError>? {
    guard done.wait(timeout: .now() + timeout) == .success else { return nil }
    done.signal()  // later waits return at once
    return lock.withLock { stored }
  }

  /// Seconds from creation to the completion.
  var elapsed: Double { lock.withLock { storedElapsed } }
  var ranOnLoop: Bool { lock.withLock { storedOnLoop } }
}

extension LoopThread {
  /// Sends `command` on the loop; the outcome reports its completion.
  @discardableResult
  func send(_ connection: RedisConnection, _ command: [String]) -> Outcome {
    let outcome = Outcome()
    nonisolated(unsafe) let connection = connection
    loop.execute { [self] in
      connection.send(command) { [self] result in
        outcome.record(result, onLoop: isLoopThread)
      }
    }
    return outcome
  }

  /// Sends `command` and waits (≤ `timeout` s) for its result.
  func call(
    _ connection: RedisConnection, _ command: [String], timeout: Double = 10,
    file: StaticString = #filePath, line: UInt = #line
  ) -> Result<RESPValue, RedisError>? {
    let result = send(connection, command).wait(timeout: timeout)
    if result == nil {
      XCTFail("no reply to \(command) within \(timeout) s", file: file, line: line)
    }
    return result
  }

  /// Sends `command` and returns its value, failing the test on an error or a timeout.
  func value(
    _ connection: RedisConnection, _ command: [String], file: StaticString = #filePath,
    line: UInt = #line
  ) -> RESPValue? {
    switch call(connection, command, file: file, line: line) {
    case .success(let value)?: return value
    case .failure(let error)?:
      XCTFail("\(command) failed: \(error)", file: file, line: line)
      return nil
    case nil: return nil
    }
  }

  /// Polls `condition` on the test thread every 20 ms for up to `timeout` seconds.
  func eventually(
    _ description: String, timeout: Double = 10, file: StaticString = #filePath,
    line: UInt = #line, _ condition: () -> Bool
  ) {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while Date() < deadline {
      if condition() { return }
      Thread.sleep(forTimeInterval: 0.02)
    }
    XCTFail("timed out waiting until \(description)", file: file, line: line)
  }
}
