import Dispatch
import Foundation
import Synchronization
import XCTest

@testable import Balancing

final class AvailabilityQueueTests: XCTestCase {
  func testTakesInFIFOOrderAndPutGoesToTheBack() {
    let queue = AvailabilityQueue([1, 2, 3])
    XCTAssertEqual(queue.tryTake(), 1)
    queue.put(1)
    XCTAssertEqual(queue.freeServers, [2, 3, 1])
    XCTAssertEqual(queue.tryTake(), 2)
    XCTAssertEqual(queue.tryTake(), 3)
    XCTAssertEqual(queue.tryTake(), 1)
    XCTAssertNil(queue.tryTake())
  }

  func testWaitersAreServedFirstComeFirstServed() {
    let queue = AvailabilityQueue<Int>([])
    var served: [(waiter: Int, server: Int)] = []
    for waiter in 0..<5 {
      guard
        case .waiting = queue.take(orWait: {
          served.append((waiter, $0))
          return true
        })
      else {
        return XCTFail("should wait")
      }
    }
    XCTAssertEqual(queue.waitingCount, 5)
    for server in [10, 11, 12, 13, 14, 15] { queue.put(server) }
    XCTAssertEqual(served.map(\.waiter), [0, 1, 2, 3, 4])
    XCTAssertEqual(served.map(\.server), [10, 11, 12, 13, 14])
    XCTAssertEqual(queue.waitingCount, 0)
    XCTAssertEqual(queue.freeServers, [15])
  }

  func testAWaiterThatCannotUseTheServerPassesItOn() {
    let queue = AvailabilityQueue<Int>([])
    var got: Int?
    _ = queue.take(orWait: { _ in false })  // its client has gone
    _ = queue.take(orWait: {
      got = $0
      return true
    })
    queue.put(7)
    XCTAssertEqual(got, 7)
    XCTAssertEqual(queue.freeCount, 0)
  }

  func testCancelledWaiterLeavesTheLine() {
    let queue = AvailabilityQueue<Int>([])
    var first: Int?
    var second: Int?
    guard
      case .waiting(let ticket) = queue.take(orWait: {
        first = $0
        return true
      })
    else {
      return XCTFail("should wait")
    }
    _ = queue.take(orWait: {
      second = $0
      return true
    })
    XCTAssertTrue(queue.cancel(ticket))
    XCTAssertFalse(queue.cancel(ticket))
    queue.put(1)
    XCTAssertNil(first)
    XCTAssertEqual(second, 1)
  }

  func testBlockingTakeWaitsUntilAPut() {
    let queue = AvailabilityQueue<Int>([])
    let done = expectation(description: "taken")
    let result = Mutex<Int?>(nil)
    Thread.detachNewThread {
      let server = queue.takeBlocking(timeout: 10)
      result.withLock { $0 = server }
      done.fulfill()
    }
    // The taker must really block: nothing is taken until the put.
    Thread.sleep(forTimeInterval: 0.2)
    XCTAssertEqual(queue.waitingCount, 1)
    XCTAssertNil(result.withLock { $0 })
    queue.put(42)
    wait(for: [done], timeout: 10)
    XCTAssertEqual(result.withLock { $0 }, 42)
  }

  func testBlockingTakeTimesOutAndLeavesTheLine() {
    let queue = AvailabilityQueue<Int>([])
    let start = Date()
    XCTAssertNil(queue.takeBlocking(timeout: 0.2))
    XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.19)
    XCTAssertEqual(queue.waitingCount, 0)
    queue.put(1)
    XCTAssertEqual(queue.freeServers, [1])
  }

  func testBlockedThreadsWakeInArrivalOrder() {
    let queue = AvailabilityQueue<Int>([])
    let order = Mutex<[Int]>([])
    let group = DispatchGroup()
    for taker in 0..<4 {
      group.enter()
      Thread.detachNewThread {
        let server = queue.takeBlocking(timeout: 10)!
        order.withLock { $0.append(taker * 100 + server) }
        group.leave()
      }
      // Let each taker get in line before the next starts.
      let deadline = Date(timeIntervalSinceNow: 5)
      while queue.waitingCount < taker + 1 && Date() < deadline {
        Thread.sleep(forTimeInterval: 0.001)
      }
    }
    for server in 1...4 { queue.put(server) }
    XCTAssertEqual(group.wait(timeout: .now() + 10), .success)
    // Taker k got server k+1: the oldest waiter is woken first.
    XCTAssertEqual(order.withLock { $0 }.sorted(), [1, 102, 203, 304])
  }

  /// Many threads take and return servers at once: at the end every server is free exactly once,
  /// and no server was ever held by two takers at the same time.
  func testNoServerIsLostOrDuplicatedUnderConcurrency() {
    let servers = Array(0..<8)
    let queue = AvailabilityQueue(servers)
    let holders = Mutex([Int](repeating: 0, count: servers.count))
    let doubleBooked = Mutex(0)
    let rounds = 2000
    DispatchQueue.concurrentPerform(iterations: 16) { worker in
      for round in 0..<rounds {
        guard let server = queue.takeBlocking(timeout: 10) else {
          doubleBooked.withLock { $0 += 1000 }
          return
        }
        let count = holders.withLock { holders -> Int in
          holders[server] += 1
          return holders[server]
        }
        if count != 1 { doubleBooked.withLock { $0 += 1 } }
        if (worker + round) % 7 == 0 { Thread.sleep(forTimeInterval: 0.0001) }
        holders.withLock { $0[server] -= 1 }
        queue.put(server)
      }
    }
    XCTAssertEqual(doubleBooked.withLock { $0 }, 0)
    XCTAssertEqual(queue.freeServers.sorted(), servers)
    XCTAssertEqual(queue.waitingCount, 0)
  }

  func testRemoveTakesAServerOutOfTheFreeQueue() {
    let queue = AvailabilityQueue([1, 2, 3])
    XCTAssertTrue(queue.remove(2))
    XCTAssertFalse(queue.remove(2))
    XCTAssertEqual(queue.freeServers, [1, 3])
    XCTAssertTrue(queue.isFree(3))
  }
}
