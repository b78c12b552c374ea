import Foundation
import XCTest

@testable import FactorialService

/// State shared between jobs on worker threads and the test thread.
private final class Shared<Value>: @unchecked Sendable {
  private let lock = NSLock()
  private var storage: Value

  init(_ value: Value) { storage = value }

  var value: Value { lock.withLock { storage } }

  @discardableResult
  func update<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&storage) } }
}

/// A one-way gate: jobs wait on it (bounded) until the test opens it.
private final class Gate: @unchecked Sendable {
  private let condition = NSCondition()
  private var isOpen = false

  func open() {
    condition.lock()
    isOpen = true
    condition.broadcast()
    condition.unlock()
  }

  /// Waits until open; false if `timeout` passed first.
  @discardableResult
  func wait(timeout: Double = 5) -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    condition.lock()
    defer { condition.unlock() }
    while !isOpen {
      if !condition.wait(until: deadline) { return isOpen }
    }
    return true
  }
}

/// A barrier for `parties` threads: each arrives and waits (bounded) until all have arrived.
private final class Barrier: @unchecked Sendable {
  private let condition = NSCondition()
  private let parties: Int
  private var arrived = 0

  init(parties: Int) { self.parties = parties }

  /// True if everyone arrived before `timeout`.
  func arriveAndWait(timeout: Double = 2) -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    condition.lock()
    defer { condition.unlock() }
    arrived += 1
    condition.broadcast()
    while arrived < parties {
      if !condition.wait(until: deadline) { return arrived >= parties }
    }
    return true
  }
}

final class WorkerPoolTests: XCTestCase {
  private var pools: [WorkerPool] = []

  override func tearDown() {
    // Every test stops its pools itself; this is for tests that fail early.
    for pool in pools { pool.stop() }
    pools = []
  }

  private func makePool(workers: Int) -> WorkerPool {
    let pool = WorkerPool(workers: workers)
    pools.append(pool)
    return pool
  }

  private func waitFor(
    _ semaphore: DispatchSemaphore, _ what: String, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    XCTAssertEqual(
      semaphore.wait(timeout: .now() + 5), .success, "timed out waiting for \(what)",
      file: file, line: line)
  }

  /// Polls `condition` until it holds or 5 s pass.
  private func eventually(
    _ what: String, file: StaticString = #filePath, line: UInt = #line, _ condition: () -> Bool
  ) {
    let deadline = Date(timeIntervalSinceNow: 5)
    while !condition() {
      if Date() > deadline {
        return XCTFail("timed out waiting for \(what)", file: file, line: line)
      }
      usleep(1000)
    }
  }

  func testWorkerCountIsAtLeastOne() {
    let pool = makePool(workers: 0)
    XCTAssertEqual(pool.workerCount, 1)
    XCTAssertEqual(makePool(workers: 3).workerCount, 3)
    let ran = DispatchSemaphore(value: 0)
    pool.submit { ran.signal() }
    waitFor(ran, "the job")
    for pool in pools { pool.stop() }
  }

  func testOneWorkerRunsJobsInSubmissionOrder() {
    let pool = makePool(workers: 1)
    let order = Shared<[Int]>([])
    let gate = Gate()
    let done = DispatchSemaphore(value: 0)

    // Some jobs queue up behind a blocked one, others arrive while the queue drains.
    pool.submit { gate.wait() }
    for index in 0..<50 { pool.submit { order.update { $0.append(index) } } }
    gate.open()
    for index in 50..<200 { pool.submit { order.update { $0.append(index) } } }
    pool.submit { done.signal() }
    waitFor(done, "the last job")

    // And after the queue has been empty.
    let doneAgain = DispatchSemaphore(value: 0)
    for index in 200..<210 { pool.submit { order.update { $0.append(index) } } }
    pool.submit { doneAgain.signal() }
    waitFor(doneAgain, "the last job of the second wave")

    XCTAssertEqual(order.value, Array(0..<210))
    pool.stop()
  }

  func testWorkersRunJobsConcurrently() {
    let workers = 4
    let pool = makePool(workers: workers)
    let barrier = Barrier(parties: workers)
    let metEveryone = Shared(0)
    let finished = DispatchSemaphore(value: 0)
    // Each job waits until all `workers` jobs are running: only possible if they run at once.
    for _ in 0..<workers {
      pool.submit {
        if barrier.arriveAndWait() { metEveryone.update { $0 += 1 } }
        finished.signal()
      }
    }
    for index in 0..<workers { waitFor(finished, "job \(index)") }
    XCTAssertEqual(metEveryone.value, workers)
    pool.stop()
  }

  func testNoMoreJobsRunAtOnceThanThereAreWorkers() {
    let pool = makePool(workers: 2)
    let state = Shared((running: 0, most: 0))
    let finished = DispatchSemaphore(value: 0)
    let jobs = 8
    for _ in 0..<jobs {
      pool.submit {
        state.update {
          $0.running += 1
          $0.most = max($0.most, $0.running)
        }
        usleep(10_000)
        state.update { $0.running -= 1 }
        finished.signal()
      }
    }
    for index in 0..<jobs { waitFor(finished, "job \(index)") }
    XCTAssertLessThanOrEqual(state.value.most, 2)
    XCTAssertGreaterThanOrEqual(state.value.most, 1)
    pool.stop()
  }

  func testPendingCountCountsQueuedAndRunningJobs() {
    let pool = makePool(workers: 2)
    XCTAssertEqual(pool.pendingCount, 0)

    let gate = Gate()
    let started = DispatchSemaphore(value: 0)
    for _ in 0..<2 {
      pool.submit {
        started.signal()
        gate.wait()
      }
    }
    waitFor(started, "the first job to start")
    waitFor(started, "the second job to start")
    XCTAssertEqual(pool.pendingCount, 2, "two running")

    let finished = DispatchSemaphore(value: 0)
    for _ in 0..<3 { pool.submit { finished.signal() } }
    XCTAssertEqual(pool.pendingCount, 5, "two running, three queued")

    gate.open()
    for index in 0..<3 { waitFor(finished, "queued job \(index)") }
    eventually("pendingCount to drop to 0") { pool.pendingCount == 0 }
    XCTAssertEqual(pool.pendingCount, 0)
    pool.stop()
  }

  func testStopDropsQueuedJobsAndLetsTheWorkersExit() {
    weak var weakPool: WorkerPool?
    let gate = Gate()
    let started = DispatchSemaphore(value: 0)
    let finishedRunning = Shared(false)
    let droppedRan = Shared(0)
    do {
      let pool = WorkerPool(workers: 1)
      weakPool = pool
      pool.submit {
        started.signal()
        gate.wait()
        finishedRunning.update { $0 = true }
      }
      for _ in 0..<5 { pool.submit { droppedRan.update { $0 += 1 } } }
      waitFor(started, "the first job to start")
      XCTAssertEqual(pool.pendingCount, 6)
      pool.stop()
      XCTAssertEqual(pool.pendingCount, 1, "the dropped jobs are no longer pending")
      // Submitting after stop does not run anything either.
      pool.submit { droppedRan.update { $0 += 1 } }
    }
    // The running job is not interrupted; it finishes when it is done.
    gate.open()
    // The worker thread holds the pool until it exits: the pool going away means it has.
    eventually("the worker to exit and release the pool") { weakPool == nil }
    XCTAssertTrue(finishedRunning.value)
    XCTAssertEqual(droppedRan.value, 0, "queued jobs ran after stop()")
  }

  func testStopLetsIdleWorkersExit() {
    weak var weakPool: WorkerPool?
    let ran = DispatchSemaphore(value: 0)
    do {
      let pool = WorkerPool(workers: 3)
      weakPool = pool
      pool.submit { ran.signal() }
      waitFor(ran, "the job")
      pool.stop()
    }
    eventually("all workers to exit and release the pool") { weakPool == nil }
  }
}
