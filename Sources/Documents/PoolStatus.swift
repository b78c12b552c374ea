/// The balancer's `GET /status`: every server with its state and leases, the free queue, the
/// waiting line's length, and lease totals that always add up
/// (`leased = reported + expired + in_flight`).
public struct PoolStatus: JSONDocument, Equatable {
  /// One server of the pool.
  public struct Server: Codable, Sendable, Equatable {
    /// The address as servers.json lists it.
    public var server: String
    /// `free` (up, no lease), `leased` (up, holding at least one lease) or `down`.
    public var state: String
    /// Leases it holds now.
    public var inFlight: Int
    /// Leases it was handed since it joined (by every balancer sharing the books, if shared).
    public var leases: Int
    /// Seconds since its oldest outstanding lease was issued.
    public var leaseAge: Double?
    /// How many times that lease was extended because the server was still busy.
    public var leaseExtensions: Int?
    /// When it went down (ISO 8601), and for how many seconds.
    public var downSince: String?
    public var downFor: Double?
    /// Removed from the configuration; it leaves when its last lease ends.
    public var removed: Bool?

    public init(server: String, state: String, inFlight: Int, leases: Int) {
      self.server = server
      self.state = state
      self.inFlight = inFlight
      self.leases = leases
    }

    enum CodingKeys: String, CodingKey {
      case server, state, leases, removed
      case inFlight = "in_flight"
      case leaseAge = "lease_age"
      case leaseExtensions = "lease_extensions"
      case downSince = "down_since"
      case downFor = "down_for"
    }
  }

  /// Lease counts since the balancer started (the shared books', if shared): `leased =
  /// reported + expired + reclaimed + in_flight`.
  public struct Totals: Codable, Sendable, Equatable {
    public var leased: Int
    public var reported: Int
    /// Ended unreported: idle past the lease timeout, or the server went down or left.
    public var expired: Int
    /// Ended by a claim check: never used by its client, revoked by its server.
    public var reclaimed: Int
    public var inFlight: Int

    public init(leased: Int, reported: Int, expired: Int, reclaimed: Int, inFlight: Int) {
      self.leased = leased
      self.reported = reported
      self.expired = expired
      self.reclaimed = reclaimed
      self.inFlight = inFlight
    }

    enum CodingKeys: String, CodingKey {
      case leased, reported, expired, reclaimed
      case inFlight = "in_flight"
    }
  }

  public var servers: [Server]
  /// The free servers in the order they will be handed out.
  public var queue: [String]
  public var free: Int
  public var waiting: Int
  /// How servers are chosen (`queue`, `round-robin`, ...).
  public var policy: String
  public var totals: Totals
  /// Reports refused, by reason: `unknown_lease` (no such outstanding lease on that port),
  /// `lease_required` (a report without a lease from a server that uses leases),
  /// `foreign_source` (a report without a lease from another address), `not_leased`,
  /// `not_in_pool`.
  public var refusedReports: [String: Int] = [:]
  /// Requests for a server refused with 429: the client held too many unused leases.
  public var refusedClients = 0

  enum CodingKeys: String, CodingKey {
    case servers, queue, free, waiting, policy, totals
    case refusedReports = "refused_reports"
    case refusedClients = "refused_clients"
  }

  public init(
    servers: [Server], queue: [String], waiting: Int, policy: String, totals: Totals
  ) {
    self.servers = servers
    self.queue = queue
    self.free = queue.count
    self.waiting = waiting
    self.policy = policy
    self.totals = totals
  }
}
