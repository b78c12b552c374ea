import Dispatch
import Foundation
import Synchronization
import TestSupport
import XCTest

@testable import Balancing

final class AvailabilityQueueTests: XCTestCase {
  private var lastTicket: UInt64 = 0
  private func ticket() -> WaitTicket {
    lastTicket += 1
    return WaitTicket(lastTicket)
  }

  func testTakesInFIFOOrderAndPutGoesToTheBack() {
    let queue = AvailabilityQueue([1, 2, 3])
    XCTAssertEqual(queue.take(ticket()), 1)
    XCTAssertNil(queue.put(1))
    XCTAssertEqual(queue.freeServers, [2, 3, 1])
    XCTAssertEqual(queue.take(ticket()), 2)
    XCTAssertEqual(queue.take(ticket()), 3)
    XCTAssertEqual(queue.take(ticket()), 1)
    XCTAssertNil(queue.take(ticket()))
  }

  func testWaitersAreServedFirstComeFirstServed() {
    let queue = AvailabilityQueue<Int>([])
    let tickets = (0..<5).map { _ in ticket() }
    for ticket in tickets { XCTAssertNil(queue.take(ticket), "should wait") }
    XCTAssertEqual(queue.waitingCount, 5)
    let grants = [10, 11, 12, 13, 14, 15].map { queue.put($0) }
    XCTAssertEqual(grants.prefix(5).map { $0?.ticket }, tickets)
    XCTAssertEqual(grants.prefix(5).map { $0?.server }, [10, 11, 12, 13, 14])
    XCTAssertNil(grants[5])
    XCTAssertEqual(queue.waitingCount, 0)
    XCTAssertEqual(queue.freeServers, [15])
  }

  func testCancelledWaiterLeavesTheLine() {
    let queue = AvailabilityQueue<Int>([])
    let first = ticket()
    let second = ticket()
    XCTAssertNil(queue.take(first))
    XCTAssertNil(queue.take(second))
    XCTAssertTrue(queue.cancel(first))
    XCTAssertFalse(queue.cancel(first))
    XCTAssertEqual(queue.waitingCount, 1)
    XCTAssertEqual(queue.put(1)?.ticket, second)
    XCTAssertFalse(queue.cancel(second), "a served ticket is not in line")
  }

  /// Leaving is O(1), and a line of mostly cancelled tickets is compacted, so a crowd that
  /// leaves at once costs nothing later.
  func testManyCancellationsAreCheapAndForgotten() {
    let queue = AvailabilityQueue<Int>([])
    let tickets = (0..<100_000).map { _ in ticket() }
    for ticket in tickets { XCTAssertNil(queue.take(ticket)) }
    for ticket in tickets.dropLast() { queue.cancel(ticket) }
    XCTAssertEqual(queue.waitingCount, 1)
    XCTAssertEqual(queue.put(7)?.ticket, tickets.last)
    XCTAssertEqual(queue.waitingCount, 0)
    XCTAssertNil(queue.put(8))
    XCTAssertEqual(queue.freeServers, [8])
  }

  func testBlockingTakeWaitsUntilAPut() {
    let queue = BlockingAvailabilityQueue<Int>([])
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
    let queue = BlockingAvailabilityQueue<Int>([])
    let start = Date()
    XCTAssertNil(queue.takeBlocking(timeout: 0.2))
    XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.19)
    XCTAssertEqual(queue.waitingCount, 0)
    queue.put(1)
    XCTAssertEqual(queue.freeServers, [1])
  }

  func testBlockedThreadsWakeInArrivalOrder() {
    let queue = BlockingAvailabilityQueue<Int>([])
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
    let queue = BlockingAvailabilityQueue(servers)
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
    XCTAssertTrue(queue.freeServers.contains(3))
  }
}
