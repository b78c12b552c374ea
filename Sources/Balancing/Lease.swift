/// One client's one-time right to a server: issued with the redirect, ended by the server's
/// report, by expiry, or by the server going down.
public struct Lease: Sendable, Equatable {
  /// The secret the redirect carries (`?lease=`) and the report brings back.
  public let token: String
  public let server: ServerAddress
  /// When it was issued (monotonic nanoseconds).
  public let issued: UInt64
  /// When the balancer stops trusting it: the server is then asked whether it is still busy
  /// (availability queue), or the lease simply ends (the other policies).
  public var deadline: UInt64
  /// How many times a busy server had its lease extended.
  public var extensions = 0
  /// Whether a health check for this lease is under way.
  public var isBeingChecked = false

  public init(token: String, server: ServerAddress, issued: UInt64, deadline: UInt64) {
    self.token = token
    self.server = server
    self.issued = issued
    self.deadline = deadline
  }
}

/// Lease counts since start; they always add up: `issued = reported + expired + inFlight`.
public struct LeaseCounts: Equatable, Sendable {
  public var issued = 0
  public var reported = 0
  public var expired = 0
  public var inFlight = 0

  public init() {}
}

/// What a report did.
public enum ReportOutcome: Equatable, Sendable {
  /// The lease ended.
  case released(Lease)
  /// No server of the pool has that port.
  case notInPool(port: Int)
  /// The server holds no lease (it is free or down), or its lease was reported already.
  case notLeased(ServerAddress)
  /// The token names no lease the server holds.
  case wrongToken(ServerAddress)
}
