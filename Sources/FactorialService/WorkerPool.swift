import Foundation

/// A fixed set of threads that run jobs in arrival order, so that CPU-bound work (a factorial of
/// 100000 takes a noticeable fraction of a second) never blocks an event loop. The threads run
/// until `stop`.
public final class WorkerPool: @unchecked Sendable {
  private let condition = NSCondition()
  private var jobs = [@Sendable () -> Void]()
  private var nextJob = 0
  private var running = 0
  private var isStopped = false
  public let workerCount: Int

  /// Starts `workers` threads.
  public init(workers: Int) {
    workerCount = max(1, workers)
    for index in 0..<workerCount {
      // Each thread keeps the pool alive until `stop`.
      let thread = Thread { [self] in self.work() }
      thread.name = "worker-\(index)"
      thread.start()
    }
  }

  /// The number of jobs running or waiting.
  public var pendingCount: Int {
    condition.lock()
    defer { condition.unlock() }
    return jobs.count - nextJob + running
  }

  /// Queues `job` behind the jobs already submitted.
  public func submit(_ job: @escaping @Sendable () -> Void) {
    condition.lock()
    jobs.append(job)
    condition.signal()
    condition.unlock()
  }

  /// Lets the workers finish; queued jobs that have not started are dropped.
  public func stop() {
    condition.lock()
    isStopped = true
    jobs.removeAll()
    nextJob = 0
    condition.broadcast()
    condition.unlock()
  }

  private func work() {
    while true {
      condition.lock()
      while nextJob == jobs.count && !isStopped { condition.wait() }
      if isStopped {
        condition.unlock()
        return
      }
      let job = jobs[nextJob]
      nextJob += 1
      if nextJob == jobs.count {
        jobs.removeAll(keepingCapacity: true)
        nextJob = 0
      }
      running += 1
      condition.unlock()
      job()
      condition.lock()
      running -= 1
      condition.unlock()
    }
  }
}
