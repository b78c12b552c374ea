import XCTest

@testable import Balancing

final class DequeTests: XCTestCase {
  /// Removing from the middle keeps the order, also when the ring has wrapped around.
  func testRemoveKeepsOrderAcrossTheWrap() {
    var deque = Deque<Int>()
    for value in 0..<16 { deque.append(value) }
    for _ in 0..<10 { _ = deque.popFirst() }  // head is now at 10
    for value in 16..<24 { deque.append(value) }  // these wrap to the start of the storage
    deque.remove(at: 3)  // 13
    deque.remove(at: 6)  // 17 (positions moved up by one)
    XCTAssertEqual(Array(deque), [10, 11, 12, 14, 15, 16, 18, 19, 20, 21, 22, 23])
    deque.remove(at: deque.count - 1)
    deque.remove(at: 0)
    XCTAssertEqual(Array(deque), [11, 12, 14, 15, 16, 18, 19, 20, 21, 22])
    deque.append(99)
    XCTAssertEqual(deque.first, 11)
    XCTAssertEqual(Array(deque).last, 99)
    XCTAssertEqual(deque.firstIndex(of: 16), 4)
  }
}
