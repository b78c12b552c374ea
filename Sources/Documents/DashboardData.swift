/// What the live dashboard polls once a second (`GET /dashboard/data`): the pool as `/status`
/// shows it, the last minute second by second, and the recent changes of servers and leases.
public struct DashboardData: JSONDocument, Equatable {
  /// One second of the last minute.
  public struct Second: Codable, Sendable, Equatable {
    /// Leases reported in that second.
    public var jobs: Int
    /// Median and 99th percentile of the waits of clients served in that second (seconds), if any.
    public var waitP50: Double?
    public var waitP99: Double?

    public init(jobs: Int, waitP50: Double?, waitP99: Double?) {
      self.jobs = jobs
      self.waitP50 = waitP50
      self.waitP99 = waitP99
    }

    enum CodingKeys: String, CodingKey {
      case jobs
      case waitP50 = "wait_p50"
      case waitP99 = "wait_p99"
    }
  }

  /// One change worth showing: a server down or back, added or removed, a lease expired.
  public struct Event: Codable, Sendable, Equatable {
    /// Wall-clock time, `HH:MM:SS` (UTC).
    public var at: String
    public var text: String

    public init(at: String, text: String) {
      self.at = at
      self.text = text
    }
  }

  public var status: PoolStatus
  /// The last 60 complete seconds, oldest first.
  public var seconds: [Second]
  /// Over those 60 seconds: jobs per second, and wait percentiles (seconds; nil with no waits).
  public var jobsPerSecond: Double
  public var waitP50: Double?
  public var waitP90: Double?
  public var waitP99: Double?
  /// The most recent changes, newest first.
  public var events: [Event]

  public init(
    status: PoolStatus, seconds: [Second], jobsPerSecond: Double, waitP50: Double?,
    waitP90: Double?, waitP99: Double?, events: [Event]
  ) {
    self.status = status
    self.seconds = seconds
    self.jobsPerSecond = jobsPerSecond
    self.waitP50 = waitP50
    self.waitP90 = waitP90
    self.waitP99 = waitP99
    self.events = events
  }

  enum CodingKeys: String, CodingKey {
    case status, seconds, events
    case jobsPerSecond = "jobs_per_second"
    case waitP50 = "wait_p50"
    case waitP90 = "wait_p90"
    case waitP99 = "wait_p99"
  }
}
