/// One client's one-time right to a server: issued with the redirect, ended by the server's
/// report, by expiry, or by the server going down.
public struct Lease: Sendable, Equatable {
  /// The secret the redirect carries (`?lease=`) and the report must bring back.
  public let token: String
  public let server: ServerAddress
  /// When it was issued (monotonic nanoseconds).
  public let issued: UInt64
  /// When the balancer starts asking the server whether it is still busy.
  public var deadline: UInt64
  /// How many times a busy server had its lease extended.
  public var extensions = 0
  /// Whether a health check for this lease is under way.
  public var isBeingChecked = false

  /// A fresh unguessable token: 128 random bits in hex.
  public static func newToken() -> String {
    var generator = SystemRandomNumberGenerator()
    let high = generator.next() as UInt64
    let low = generator.next() as UInt64
    return hex(high) + hex(low)
  }

  private static func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
  }
}
