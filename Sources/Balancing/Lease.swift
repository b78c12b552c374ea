import HTTPCore

/// One client's one-time right to a server: issued with the redirect, ended by the server's
/// report, by expiry, by a claim check that found it unused, or by the server going down.
public struct Lease: Sendable, Equatable {
  /// Whether the client has been seen to use the lease.
  public enum Claim: Sendable, Equatable {
    /// Not known to be used yet; checked with the server at `claimDeadline`.
    case unclaimed
    /// The server is being asked whether the lease's job started.
    case checking
    /// The server started the lease's job: it runs on until its report or `deadline`.
    case started
    /// The server cannot tell (written for the original): only `deadline` applies.
    case unknown
  }

  /// The secret the redirect carries (`?lease=`) and the report brings back.
  public let token: String
  /// Its server; another entry for the same process only through `moved(to:)`.
  public private(set) var server: ServerAddress
  /// When it was issued (monotonic nanoseconds).
  public let issued: UInt64
  /// The address of the client it was issued to.
  public var client = ""
  public var claim = Claim.unclaimed
  /// When an unclaimed lease is checked with its server.
  public var claimDeadline = UInt64.max
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

  /// How long it has run at `now` (nanoseconds), or 0 if `now` is not later: a lease read from
  /// shared books may have been issued ahead of this clock.
  public func age(at now: UInt64) -> UInt64 { MonotonicClock.elapsed(from: issued, to: now) }

  /// The same lease held by `server`, another entry for the same process (a stranded lease of
  /// an entry that left the pool, moved to the one that joined it: see
  /// `LeaseStore.moveStranded(from:to:)`).
  public func moved(to server: ServerAddress) -> Lease {
    var lease = self
    lease.server = server
    return lease
  }
}

/// Lease counts since start; they always add up:
/// `issued = reported + expired + reclaimed + inFlight`.
public struct LeaseCounts: Equatable, Sendable {
  public var issued = 0
  public var reported = 0
  /// Ended unreported: past the deadline with an idle server, or the server went down or left.
  public var expired = 0
  /// Ended by a claim check: the client never used it, and the server revoked it.
  public var reclaimed = 0
  public var inFlight = 0

  public init() {}
}

/// What a report did.
public enum ReportOutcome: Equatable, Sendable {
  /// The lease ended.
  case released(Lease)
  /// No server of the pool has that port (and, for a report without a lease, that address).
  case notInPool(port: Int)
  /// The server holds no lease (it is free or down), or its lease was reported already.
  case notLeased(ServerAddress)
  /// The token names no outstanding lease of a server with that port.
  case wrongToken(port: Int)
  /// A report without a lease, refused: the server has reported with leases before, so a
  /// report without one is not its own.
  case leaseRequired(ServerAddress)
  /// A report without a lease from an address that is not the server's own.
  case foreignSource(port: Int, source: String)
  /// The lease store could not be reached (a shared store): nothing changed; try again later.
  case storeUnavailable(String)

  /// The reason a refused report is counted under, or nil if it was accepted.
  public var refusal: String? {
    switch self {
    case .released: return nil
    case .notInPool: return "not_in_pool"
    case .notLeased: return "not_leased"
    case .wrongToken: return "unknown_lease"
    case .leaseRequired: return "lease_required"
    case .foreignSource: return "foreign_source"
    case .storeUnavailable: return "store_unavailable"
    }
  }
}
