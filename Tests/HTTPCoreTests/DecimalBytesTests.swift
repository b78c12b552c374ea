import XCTest

@testable import HTTPCore

final class DecimalBytesTests: XCTestCase {
  func testAppendedDigitsAreTheNumbersDecimalForm() {
    for value in [0, 1, 9, 10, 11, 99, 100, 101, 5001, 9999, 10000, 65535, 1_000_000, Int.max] {
      var bytes = Array("x".utf8)
      bytes.appendDecimal(value)
      XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "x\(value)")
    }
  }
}
