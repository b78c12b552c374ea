extension Array where Element == UInt8 {
  /// Appends the decimal digits of a non-negative number, without building a String.
  public mutating func appendDecimal(_ value: Int) {
    precondition(value >= 0, "appendDecimal takes non-negative numbers")
    var divisor = 1
    while divisor <= value / 10 { divisor *= 10 }
    repeat {
      append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
      divisor /= 10
    } while divisor > 0
  }
}
