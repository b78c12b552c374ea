/// A client's place in the line for a server; numbers grow in arrival order.
public struct WaitTicket: Hashable, Sendable, CustomStringConvertible {
  public let number: UInt64
  public init(_ number: UInt64) { self.number = number }
  public var description: String { "#\(number)" }
}
