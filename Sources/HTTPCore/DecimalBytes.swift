extension Array where Element == UInt8 {
  /// Appends the decimal digits of a non-negative number, without building a String.
  public mutating func appendDecimal(_ value: Int) {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
      let end = digits.writeDecimal(value, at: 0)
      append(contentsOf: UnsafeBufferPointer(rebasing: digits[..<end]))
    }
  }
}

extension UnsafeMutableBufferPointer where Element == UInt8 {
  /// Writes the decimal digits of a non-negative number at `offset` (room for 19 digits is
  /// enough for any Int) and returns the offset past them.
  public func writeDecimal(_ value: Int, at offset: Int) -> Int {
    precondition(value >= 0, "writeDecimal takes non-negative numbers")
    var length = 1
    var rest = value / 10
    while rest > 0 {
      length += 1
      rest /= 10
    }
    precondition(offset + length <= count, "no room for the digits")
    rest = value
    var index = offset + length
    repeat {
      index -= 1
      self[index] = UInt8(ascii: "0") + UInt8(rest % 10)
      rest /= 10
    } while index > offset
    return offset + length
  }
}
