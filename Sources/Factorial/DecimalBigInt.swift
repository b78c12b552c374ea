/// A non-negative integer of any size, stored in base 10⁹ so that printing it is linear.
///
/// Only what exact factorials need: multiplication (schoolbook below a threshold, Karatsuba
/// above it) and decimal output.
public struct DecimalBigInt: Equatable, Sendable, CustomStringConvertible {
  /// The base of one limb.
  static let base: UInt64 = 1_000_000_000
  /// Below this many limbs in the smaller factor, schoolbook beats Karatsuba.
  static let karatsubaThreshold = 48

  /// Limbs, least significant first, with no leading zero limbs (zero is `[]`).
  private(set) var limbs: [UInt32]

  public init(_ value: UInt64) {
    var limbs: [UInt32] = []
    var rest = value
    while rest > 0 {
      limbs.append(UInt32(rest % Self.base))
      rest /= Self.base
    }
    self.limbs = limbs
  }

  init(limbs: [UInt32]) {
    self.limbs = limbs
    Self.trim(&self.limbs)
  }

  public var isZero: Bool { limbs.isEmpty }

  /// The number of decimal digits (1 for zero).
  public var digitCount: Int {
    guard let top = limbs.last else { return 1 }
    return (limbs.count - 1) * 9 + String(top).count
  }

  /// The decimal digits, as ASCII bytes.
  public var decimalBytes: [UInt8] {
    var bytes: [UInt8] = []
    appendDecimalDigits(to: &bytes)
    return bytes
  }

  /// Appends the decimal digits, as ASCII bytes, to `bytes` (one allocation at most).
  public func appendDecimalDigits(to bytes: inout [UInt8]) {
    guard let top = limbs.last else { return bytes.append(UInt8(ascii: "0")) }
    var topDigits = 1
    var power: UInt32 = 10
    while topDigits < 10, top >= power {
      topDigits += 1
      power &*= 10
    }
    let start = bytes.count
    let end = start + topDigits + 9 * (limbs.count - 1)
    bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: end - start))
    bytes.withUnsafeMutableBufferPointer { buffer in
      // Least significant limb last; each limb below the top fills nine places, zeros kept.
      var position = end
      for (index, limb) in limbs.enumerated() {
        var rest = limb
        var digit = position - 1
        let stop = index == limbs.count - 1 ? start : position - 9
        while digit >= stop, rest > 0 {
          buffer[digit] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
          rest /= 10
          digit -= 1
        }
        position -= 9
      }
    }
  }

  public var description: String { String(decoding: decimalBytes, as: UTF8.self) }

  /// Multiplies by a small factor (below 10⁹) in place.
  public mutating func multiply(bySmall factor: UInt32) {
    precondition(UInt64(factor) < Self.base, "factor must be below 10^9")
    if factor == 0 {
      limbs = []
      return
    }
    var carry: UInt64 = 0
    for index in limbs.indices {
      let product = UInt64(limbs[index]) * UInt64(factor) + carry
      limbs[index] = UInt32(product % Self.base)
      carry = product / Self.base
    }
    while carry > 0 {
      limbs.append(UInt32(carry % Self.base))
      carry /= Self.base
    }
  }

  public static func * (lhs: DecimalBigInt, rhs: DecimalBigInt) -> DecimalBigInt {
    if lhs.isZero || rhs.isZero { return DecimalBigInt(0) }
    return DecimalBigInt(limbs: multiply(lhs.limbs[...], rhs.limbs[...]))
  }

  // MARK: - Limb arithmetic on slices (results are plain arrays, possibly with leading zeros).

  static func multiply(_ a: ArraySlice<UInt32>, _ b: ArraySlice<UInt32>) -> [UInt32] {
    if a.count < b.count { return multiply(b, a) }
    if b.count < karatsubaThreshold { return schoolbook(a, b) }
    let half = (a.count + 1) / 2
    if b.count <= half {
      // Unbalanced: split only the longer factor.
      let low = multiply(a.prefix(half), b)
      let high = multiply(a.dropFirst(half), b)
      var result = [UInt32](repeating: 0, count: a.count + b.count + 1)
      addShifted(&result, low[...], shift: 0)
      addShifted(&result, high[...], shift: half)
      return result
    }
    let a0 = trimmed(a.prefix(half))
    let a1 = a.dropFirst(half)
    let b0 = trimmed(b.prefix(half))
    let b1 = b.dropFirst(half)
    let z0 = multiply(a0, b0)
    let z2 = multiply(a1, b1)
    var z1 = multiply(add(a0, a1)[...], add(b0, b1)[...])
    subtract(&z1, z0[...])
    subtract(&z1, z2[...])
    var result = [UInt32](repeating: 0, count: a.count + b.count + 1)
    addShifted(&result, z0[...], shift: 0)
    addShifted(&result, z1[...], shift: half)
    addShifted(&result, z2[...], shift: 2 * half)
    return result
  }

  static func schoolbook(_ a: ArraySlice<UInt32>, _ b: ArraySlice<UInt32>) -> [UInt32] {
    var result = [UInt64](repeating: 0, count: a.count + b.count)
    result.withUnsafeMutableBufferPointer { r in
      a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
          for i in 0..<b.count {
            let factor = UInt64(b[i])
            if factor == 0 { continue }
            var carry: UInt64 = 0
            for j in 0..<a.count {
              let t = r[i + j] + factor * UInt64(a[j]) + carry
              r[i + j] = t % base
              carry = t / base
            }
            r[i + a.count] = carry
          }
        }
      }
    }
    return result.map { UInt32($0) }
  }

  static func add(_ a: ArraySlice<UInt32>, _ b: ArraySlice<UInt32>) -> [UInt32] {
    var result = [UInt32](repeating: 0, count: max(a.count, b.count) + 1)
    addShifted(&result, a, shift: 0)
    addShifted(&result, b, shift: 0)
    return result
  }

  /// result += value · 10^(9·shift); `result` must be long enough to hold the sum.
  static func addShifted(_ result: inout [UInt32], _ value: ArraySlice<UInt32>, shift: Int) {
    let addend = trimmed(value)
    var carry: UInt32 = 0
    var offset = 0
    // Add the limbs, then let the carry run on as far as it goes.
    while offset < addend.count || carry > 0 {
      let limb = offset < addend.count ? addend[addend.startIndex + offset] : 0
      var sum = result[shift + offset] &+ limb &+ carry
      carry = 0
      if sum >= UInt32(base) {
        sum -= UInt32(base)
        carry = 1
      }
      result[shift + offset] = sum
      offset += 1
    }
  }

  /// result -= value; requires result ≥ value.
  static func subtract(_ result: inout [UInt32], _ value: ArraySlice<UInt32>) {
    var borrow: UInt32 = 0
    var index = 0
    for limb in trimmed(value) {
      let subtrahend = limb &+ borrow
      if result[index] >= subtrahend {
        result[index] -= subtrahend
        borrow = 0
      } else {
        result[index] = result[index] &+ UInt32(base) &- subtrahend
        borrow = 1
      }
      index += 1
    }
    while borrow > 0 {
      if result[index] >= 1 {
        result[index] -= 1
        borrow = 0
      } else {
        result[index] = UInt32(base) - 1
      }
      index += 1
    }
  }

  static func trimmed(_ limbs: ArraySlice<UInt32>) -> ArraySlice<UInt32> {
    var end = limbs.endIndex
    while end > limbs.startIndex && limbs[end - 1] == 0 { end -= 1 }
    return limbs[limbs.startIndex..<end]
  }

  static func trim(_ limbs: inout [UInt32]) {
    while limbs.last == 0 { limbs.removeLast() }
  }
}
