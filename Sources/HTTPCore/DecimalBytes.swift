extension Array where Element == UInt8 {
  /// Appends the decimal digits of a non-negative number, without building a String.
  public mutating func appendDecimal(_ value: Int) {
    precondition(value >= 0, "appendDecimal takes non-negative numbers")
    // Digit by digit from the most significant: a byte appended costs less than a copy of a
    // temporary (a port is 4 or 5 digits).
    var divisor = 1
    while divisor <= value / 10 { divisor &*= 10 }
    var rest = value
    repeat {
      append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest / divisor))
      rest %= divisor
      divisor /= 10
    } while divisor > 0
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
