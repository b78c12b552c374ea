import Foundation
import Synchronization
import TestSupport
import XCTest

@testable import HTTPCore

/// Shared state for timer bodies, which run on the loop thread while the test thread reads.
private final class Record<Value>: @unchecked Sendable {
  private let lock = NSLock()
  private var storage: Value

  init(_ value: Value) { storage = value }

  var value: Value { lock.withLock { storage } }

  func update<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&storage) } }
}

extension Record where Value == Int {
  /// Adds one and returns the new count.
  func increment() -> Int {
    update {
      $0 += 1
      return $0
    }
  }
}

final class EventLoopTimerTests: XCTestCase {
  private var running: LoopThread?
  private var stopped = false

  override func setUpWithError() throws {
    running = try LoopThread()
    stopped = false
  }

  override func tearDown() {
    if let running, !stopped {
      XCTAssertTrue(running.stop(), "run() did not return after stop()")
    }
    running = nil
  }

  private var loop: EventLoop { running!.loop }

  /// Runs `body` on the loop's thread (where timers may be added and cancelled) and waits.
  private func onLoop(
    _ body: @escaping () -> Void, file: StaticString = #filePath, line: UInt = #line
  ) {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) let body = body
    loop.execute {
      body()
      done.signal()
    }
    XCTAssertEqual(
      done.wait(timeout: .now() + 5), .success, "loop did not run", file: file, line: line)
  }

  private func seconds(since start: UInt64) -> Double {
    Double(MonotonicClock.now() - start) / 1e9
  }

  // MARK: - schedule(after:)

  func testScheduleAfterRunsOnceAfterTheDelay() {
    let fired = expectation(description: "timer fired")
    let probed = expectation(description: "probe fired")
    let runs = Record(0)
    let elapsed = Record<Double?>(nil)
    let onLoopThread = Record(false)
    let runsAtProbe = Record(-1)
    let running = running!
    let start = MonotonicClock.now()
    onLoop { [self] in
      loop.schedule(after: 0.1) { [self] in
        runs.update { $0 += 1 }
        elapsed.update { $0 = seconds(since: start) }
        onLoopThread.update { $0 = running.isLoopThread }
        fired.fulfill()
      }
      // Long after the timer: it must not have run a second time.
      loop.schedule(after: 0.4) {
        runsAtProbe.update { $0 = runs.value }
        probed.fulfill()
      }
    }
    wait(for: [fired, probed], timeout: 5, enforceOrder: true)
    XCTAssertEqual(runs.value, 1)
    XCTAssertEqual(runsAtProbe.value, 1)
    XCTAssertTrue(onLoopThread.value, "the timer ran off the loop thread")
    let delay = elapsed.value ?? .infinity
    XCTAssertGreaterThanOrEqual(delay, 0.1)
    XCTAssertLessThan(delay, 1.0)
  }

  func testOneShotTimersRunInDeadlineOrder() {
    let done = expectation(description: "all ran")
    let order = Record<[String]>([])
    onLoop { [self] in
      loop.schedule(after: 0.09) { order.update { $0.append("c") } }
      loop.schedule(after: 0.01) { order.update { $0.append("a") } }
      loop.schedule(after: 0.05) { order.update { $0.append("b") } }
      loop.schedule(after: 0.15) { done.fulfill() }
    }
    wait(for: [done], timeout: 5)
    XCTAssertEqual(order.value, ["a", "b", "c"])
  }

  func testNegativeDelayRunsOnTheNextIteration() {
    let fired = expectation(description: "timer fired")
    let start = MonotonicClock.now()
    let elapsed = Record<Double>(.infinity)
    onLoop { [self] in
      loop.schedule(after: -5) { [self] in
        elapsed.update { $0 = seconds(since: start) }
        fired.fulfill()
      }
    }
    wait(for: [fired], timeout: 5)
    XCTAssertLessThan(elapsed.value, 1.0)
  }

  // MARK: - schedule(every:)

  func testScheduleEveryRepeats() {
    let fifth = expectation(description: "fifth run")
    let times = Record<[Double]>([])
    let start = MonotonicClock.now()
    onLoop { [self] in
      var id: TimerID?
      id = loop.schedule(every: 0.02) { [self] in
        let count = times.update { times -> Int in
          times.append(seconds(since: start))
          return times.count
        }
        if count == 5 {
          loop.cancel(id!)
          fifth.fulfill()
        }
      }
    }
    wait(for: [fifth], timeout: 5)
    let runs = times.value
    XCTAssertEqual(runs.count, 5)
    // The first run comes after one interval, the n-th after at least n intervals.
    for (index, time) in runs.enumerated() {
      XCTAssertGreaterThanOrEqual(time, 0.02 * Double(index + 1) - 0.001, "run \(index + 1)")
    }
    XCTAssertEqual(runs, runs.sorted())
  }

  // MARK: - cancel

  func testCancelStopsARepeatingTimer() {
    let thirdRun = expectation(description: "third run")
    let probed = expectation(description: "probe fired")
    let runs = Record(0)
    let id = Record<TimerID?>(nil)
    onLoop { [self] in
      let timer = loop.schedule(every: 0.01) {
        if runs.increment() == 3 { thirdRun.fulfill() }
      }
      id.update { $0 = timer }
    }
    wait(for: [thirdRun], timeout: 5)

    let runsAtCancel = Record(0)
    onLoop { [self] in
      loop.cancel(id.value!)
      runsAtCancel.update { $0 = runs.value }
      loop.schedule(after: 0.15) { probed.fulfill() }
    }
    wait(for: [probed], timeout: 5)
    XCTAssertGreaterThanOrEqual(runsAtCancel.value, 3)
    XCTAssertEqual(runs.value, runsAtCancel.value, "the timer ran after it was cancelled")
  }

  func testRepeatingTimerCanCancelItself() {
    let probed = expectation(description: "probe fired")
    let runs = Record(0)
    onLoop { [self] in
      var id: TimerID?
      id = loop.schedule(every: 0.01) { [self] in
        if runs.increment() == 2 { loop.cancel(id!) }
      }
      loop.schedule(after: 0.2) { probed.fulfill() }
    }
    wait(for: [probed], timeout: 5)
    XCTAssertEqual(runs.value, 2)
  }

  func testCancelBeforeTheDeadlinePreventsAOneShotTimer() {
    let probed = expectation(description: "probe fired")
    let ran = Record(false)
    onLoop { [self] in
      let id = loop.schedule(after: 0.05) { ran.update { $0 = true } }
      loop.cancel(id)
      loop.schedule(after: 0.15) { probed.fulfill() }
    }
    wait(for: [probed], timeout: 5)
    XCTAssertFalse(ran.value)
  }

  func testCancellingATimerInTheSameBatchPreventsIt() {
    let probed = expectation(description: "probe fired")
    let ran = Record<[String: UInt64]>([:])
    onLoop { [self] in
      // Deadlines of "now" fall after the loop's `now` for this iteration, so all three are due
      // together in the next one, and run in the order they were added.
      var second: TimerID?
      let first = loop.schedule(after: 0) { [self] in
        ran.update { $0["first"] = loop.now }
        loop.cancel(second!)
      }
      second = loop.schedule(after: 0) { [self] in ran.update { $0["second"] = loop.now } }
      loop.schedule(after: 0) { [self] in
        ran.update { $0["third"] = loop.now }
        // Cancelling a timer that already ran is harmless.
        loop.cancel(first)
      }
      loop.schedule(after: 0.1) { probed.fulfill() }
    }
    wait(for: [probed], timeout: 5)
    let record = ran.value
    XCTAssertNotNil(record["first"])
    XCTAssertNil(record["second"], "a timer cancelled earlier in its batch still ran")
    XCTAssertNotNil(record["third"])
    // The loop's clock is refreshed once per wake-up: equal values mean the same batch.
    XCTAssertEqual(record["first"], record["third"])
  }

  func testCancellingARepeatingTimerInTheSameBatchPreventsIt() {
    let probed = expectation(description: "probe fired")
    let victimRuns = Record(0)
    onLoop { [self] in
      var victim: TimerID?
      loop.schedule(after: 0.03) { [self] in loop.cancel(victim!) }
      // Its deadline is a hair after the killer's, which is added first: whether both fall in
      // the same batch or the victim would be due in the next one, it must never run.
      victim = loop.schedule(every: 0.03) { victimRuns.update { $0 += 1 } }
      loop.schedule(after: 0.2) { probed.fulfill() }
    }
    wait(for: [probed], timeout: 5)
    XCTAssertEqual(victimRuns.value, 0)
  }

  // MARK: - execute

  func testExecuteFromOtherThreadsRunsEverythingOnTheLoop() {
    let threads = 4
    let perThread = 250
    let all = expectation(description: "all bodies ran")
    all.expectedFulfillmentCount = threads * perThread
    let offLoop = Record(0)
    let orders = Record<[Int: [Int]]>([:])
    let running = running!
    let loop = loop
    DispatchQueue.concurrentPerform(iterations: threads) { thread in
      for index in 0..<perThread {
        loop.execute {
          if !running.isLoopThread { offLoop.update { $0 += 1 } }
          orders.update { $0[thread, default: []].append(index) }
          all.fulfill()
        }
      }
    }
    wait(for: [all], timeout: 5)
    XCTAssertEqual(offLoop.value, 0, "bodies ran off the loop thread")
    // Bodies posted by one thread run in the order it posted them.
    for thread in 0..<threads {
      XCTAssertEqual(orders.value[thread], Array(0..<perThread), "thread \(thread)")
    }
  }

  func testExecuteWakesALoopWaitingForATimer() {
    let ran = expectation(description: "posted body ran")
    let start = MonotonicClock.now()
    let elapsed = Record<Double>(.infinity)
    onLoop { [self] in loop.schedule(after: 30) {} }
    loop.execute { [self] in
      elapsed.update { $0 = seconds(since: start) }
      ran.fulfill()
    }
    wait(for: [ran], timeout: 5)
    XCTAssertLessThan(elapsed.value, 1.0)
  }

  // MARK: - stop

  func testStopFromAnotherThreadMakesRunReturn() throws {
    let running = try XCTUnwrap(running)
    // Wait until the loop is inside run() and idle (no timers: an unbounded wait).
    onLoop {}
    stopped = true
    XCTAssertTrue(running.stop())
  }

  func testStopFromATimerMakesRunReturn() throws {
    let running = try XCTUnwrap(running)
    let later = Record(false)
    onLoop { [self] in
      loop.schedule(after: 0.02) { [self] in loop.stop() }
      loop.schedule(after: 0.5) { later.update { $0 = true } }
    }
    XCTAssertTrue(running.waitForReturn(), "run() did not return after stop() in a timer")
    stopped = true
    XCTAssertFalse(later.value)
  }

  func testRunCanBeStartedAgainAfterStop() throws {
    let running = try XCTUnwrap(running)
    onLoop {}
    XCTAssertTrue(running.stop())

    // A timer added while the loop is stopped runs once it runs again.
    let fired = expectation(description: "timer fired after restart")
    loop.schedule(after: 0.01) { fired.fulfill() }
    running.start()
    wait(for: [fired], timeout: 5)
    // tearDown stops it again.
  }
}
