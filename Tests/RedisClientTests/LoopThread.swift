import Foundation
import Glibc
import HTTPCore
import RedisClient
import Synchronization
import TestSupport
import XCTest

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
}
