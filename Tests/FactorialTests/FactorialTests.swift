import TestSupport
import XCTest

@testable import Factorial

final class FactorialTests: XCTestCase {
  func testSmallFactorials() {
    let expected = [1, 1, 2, 6, 24, 120, 720, 5040, 40320, 362_880, 3_628_800, 39_916_800]
    for (n, value) in expected.enumerated() {
      XCTAssertEqual(Factorial.of(n).description, String(value), "\(n)!")
    }
    XCTAssertEqual(Factorial.of(20).description, "2432902008176640000")
  }

  func testKnownDigitsOf100And1000() {
    XCTAssertEqual(Factorial.of(100).description, KnownFactorials.of100)
    XCTAssertEqual(Factorial.of(1000).description, KnownFactorials.of1000)
    XCTAssertEqual(Factorial.of(1000).digitCount, 2568)
  }

  func testFactorialOf100000() {
    let value = Factorial.of(100_000)
    let digits = value.description
    XCTAssertEqual(value.digitCount, 456_574)
    XCTAssertEqual(digits.count, 456_574)
    XCTAssertTrue(digits.hasPrefix(KnownFactorials.prefixOf100000))
    // 100000! ends in exactly 24999 zeros (Legendre's formula for the power of 5).
    let trailingZeros = digits.reversed().prefix { $0 == "0" }.count
    XCTAssertEqual(trailingZeros, 24_999)
  }

  /// The product tree and Karatsuba agree with the plainest possible method, step by step.
  func testProductTreeMatchesRepeatedSmallMultiplication() {
    var plain = DecimalBigInt(1)
    for n in 1...3000 {
      plain.multiply(bySmall: UInt32(n))
      if n % 97 == 0 || n == 3000 || n < 40 {
        XCTAssertEqual(Factorial.of(n), plain, "\(n)!")
      }
    }
  }

  func testKaratsubaMatchesSchoolbookOnAwkwardShapes() {
    var generator = SeededGenerator(seed: 42)
    for (left, right) in [(48, 48), (49, 97), (200, 57), (301, 300), (1000, 49), (513, 1025)] {
      // Include limbs at the edge of the base, where carries and borrows happen.
      let a = (0..<left).map { _ in generator.limb() }
      let b = (0..<right).map { _ in generator.limb() }
      let expected = DecimalBigInt(limbs: DecimalBigInt.schoolbook(a[...], b[...]))
      XCTAssertEqual(
        DecimalBigInt(limbs: a) * DecimalBigInt(limbs: b), expected, "\(left)x\(right)")
    }
  }

  /// Every width of the top limb, limbs of zeros and of nines, and appending after other bytes.
  func testDecimalDigitsAgreeWithIntegerPrinting() {
    var generator = SeededGenerator(seed: 7)
    var values: [UInt64] = [0, 9, 10, 999_999_999, 1_000_000_000, 1_000_000_001, .max]
    for width in 1...19 { values.append(UInt64(String(repeating: "7", count: width))!) }
    for _ in 0..<200 { values.append(generator.next() >> (generator.next() % 64)) }
    for value in values {
      XCTAssertEqual(DecimalBigInt(value).description, String(value))
      var bytes = Array("n = ".utf8)
      DecimalBigInt(value).appendDecimalDigits(to: &bytes)
      XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "n = \(value)")
    }
  }

  func testZeroAndDigitCount() {
    XCTAssertEqual(DecimalBigInt(0).description, "0")
    XCTAssertEqual(DecimalBigInt(0).digitCount, 1)
    XCTAssertEqual(DecimalBigInt(1_000_000_000).description, "1000000000")
    XCTAssertEqual((DecimalBigInt(0) * DecimalBigInt(5)).description, "0")
  }
}

extension SeededGenerator {
  /// A limb below 10^9, often 0 or 999999999.
  mutating func limb() -> UInt32 {
    switch next() % 4 {
    case 0: return 999_999_999
    case 1: return 0
    default: return UInt32(next() % 1_000_000_000)
    }
  }
}
