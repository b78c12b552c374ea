import XCTest

@testable import Balancing

final class LeaseTokenSourceTests: XCTestCase {
  func testTokensAre32HexDigitsAndNeverRepeat() {
    var source = LeaseTokenSource()
    var seen = Set<String>()
    // More than one 4 KiB refill.
    for _ in 0..<1000 {
      let token = source.next()
      XCTAssertEqual(token.count, 32)
      XCTAssertTrue(token.allSatisfy { $0.isHexDigit && !$0.isUppercase })
      seen.insert(token)
    }
    XCTAssertEqual(seen.count, 1000)
    // Every hex digit shows up in every position over many tokens: the bytes are not constant.
    let firstDigits = Set(seen.map(\.first!))
    XCTAssertEqual(firstDigits.count, 16)
  }
}
