/// Exact factorials.
public enum Factorial {
  /// The largest N the servers accept; 100000! has 456,574 digits.
  public static let maximumN = 100_000

  /// n!, exactly, by a balanced product tree so that the big multiplications are few and even.
  public static func of(_ n: Int) -> DecimalBigInt {
    precondition(n >= 0, "factorial of a negative number")
    // Pack consecutive factors into leaves below 10^9, so the tree starts with one-limb numbers.
    var leaves: [UInt32] = []
    var leaf: UInt64 = 1
    if n >= 2 {
      for factor in 2...n {
        if leaf * UInt64(factor) >= DecimalBigInt.base {
          leaves.append(UInt32(leaf))
          leaf = 1
        }
        leaf *= UInt64(factor)
      }
    }
    leaves.append(UInt32(leaf))
    return product(leaves[...])
  }

  private static func product(_ leaves: ArraySlice<UInt32>) -> DecimalBigInt {
    if leaves.count <= 16 {
      var result = DecimalBigInt(1)
      for leaf in leaves { result.multiply(bySmall: leaf) }
      return result
    }
    let middle = leaves.startIndex + leaves.count / 2
    return product(leaves[..<middle]) * product(leaves[middle...])
  }
}
