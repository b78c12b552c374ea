import Foundation
import Glibc
import HTTPCore
import Synchronization
import XCTest

/// An event loop running on a thread of its own for the length of a test: work is posted to it
/// and waited for, and every wait is bounded.
public final class LoopThread: @unchecked Sendable {
  public let loop: EventLoop
  private let returned = DispatchSemaphore(value: 0)
  private let thread = Mutex<pthread_t?>(nil)
  private let running = Mutex(false)

  /// Creates the loop and (unless `start` is false) runs it.
  public init(start: Bool = true) throws {
    loop = try EventLoop()
    if start { self.start() }
  }

  /// Runs `loop.run()` on a new thread (again, after `stop`).
  public func start() {
    running.withLock { $0 = true }
    Thread.detachNewThread { [self] in
      thread.withLock { $0 = pthread_self() }
      loop.run()
      returned.signal()
    }
  }

  /// Whether the caller is the thread running the loop.
  public var isLoopThread: Bool {
    guard let loopThread = thread.withLock({ $0 }) else { return false }
    return pthread_equal(loopThread, pthread_self()) != 0
  }

  /// Runs `body` on the loop and waits (at most `timeout` s) for its result; nil on timeout.
  public func sync<T>(timeout: Double = 10, _ body: @escaping () -> T) -> T? {
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

  /// Waits (at most `timeout` s) for `run()` to return; false on timeout.
  public func waitForReturn(timeout: Double = 10) -> Bool {
    returned.wait(timeout: .now() + timeout) == .success
  }

  /// Stops the loop and waits (at most `timeout` s) for `run()` to return; harmless twice.
  @discardableResult
  public func stop(timeout: Double = 10) -> Bool {
    guard
      running.withLock({ value in
        defer { value = false }
        return value
      })
    else { return true }
    loop.stop()
    return waitForReturn(timeout: timeout)
  }
}

extension LoopThread {
  /// Polls `condition` on the test thread every 20 ms for up to `timeout` seconds.
  public func eventually(
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
