import HTTPCore
import Metrics

/// The balancer's Prometheus metrics (`GET /metrics`): how long clients waited for a server, how
/// long jobs held their servers, what every server is doing now, and the lease and answer
/// totals. Totals are read from the broker when rendered, so they always agree with `/status`;
/// the histograms and answer counts are observed as things happen. Call from the loop's thread.
public final class BalancerMetrics {
  public let registry = MetricsRegistry()
  private let waits: Histogram
  private let jobs: MetricFamily<Histogram>
  private let answers: MetricFamily<Counter>
  /// Children cached by label, so that observing costs no lookup in the family.
  private var jobsByServer: [ServerAddress: Histogram] = [:]
  /// By status code (100…599: every code HTTP has), so that counting an answer costs no lookup.
  private var answersByCode = [Counter?](repeating: nil, count: 600)

  /// Registers every metric of `broker`. `version` goes into `lb_build_info`.
  public init(broker: ServerBroker, version: String = BalancerMetrics.version) {
    waits = registry.histogram(
      "lb_client_wait_seconds",
      help: "Time from a client's GET / to its redirect: how long it waited for a free server.")
    jobs = registry.histogram(
      "lb_job_seconds", help: "Time from a lease's redirect to its server's report, per server.",
      labelNames: ["server"])
    registry.gauge("lb_clients_waiting", help: "Clients waiting for a server now.") {
      [unowned broker] in Double(broker.dispatcher.waitingCount)
    }
    registry.gauge("lb_servers_free", help: "Servers that would take a client now.") {
      [unowned broker] in Double(broker.dispatcher.freeServers.count)
    }
    registry.gauge(
      "lb_server_state", help: "Each server's state now: 1 for the state it is in, 0 for others.",
      labelNames: ["server", "state"]
    ) { [unowned broker] in
      broker.pool.servers.flatMap { server -> [(labels: [String], value: Double)] in
        let current = broker.stateName(server)
        return ["free", "leased", "down", "starting", "checking"].map { state in
          ([server.description, state], current == state ? 1 : 0)
        }
      }
    }
    registry.gauge("lb_leases_in_flight", help: "Leases outstanding now.") {
      [unowned broker] in Double(broker.store.counts.inFlight)
    }
    let counts: [(String, String, (LeaseCounts) -> Int)] = [
      ("lb_leases_issued_total", "Leases handed out with a redirect.", \.issued),
      ("lb_leases_reported_total", "Leases ended by their server's report.", \.reported),
      (
        "lb_leases_expired_total",
        "Leases ended unreported: idle past the lease timeout, or the server went down or left.",
        \.expired
      ),
      (
        "lb_leases_reclaimed_total",
        "Leases revoked by a claim check: their clients never used them.", \.reclaimed
      ),
    ]
    for (name, help, read) in counts {
      registry.counter(name, help: help) { [unowned broker] in Double(read(broker.store.counts)) }
    }
    registry.counter(
      "lb_reports_refused_total", help: "Reports refused, by reason.", labelNames: ["reason"]
    ) { [unowned broker] in
      broker.refusedReports.sorted { $0.key < $1.key }.map { ([$0.key], Double($0.value)) }
    }
    registry.counter(
      "lb_clients_refused_total",
      help: "Requests for a server refused with 429: the client held too many unused leases."
    ) { [unowned broker] in Double(broker.refusedClients) }
    answers = registry.counter(
      "lb_http_responses_total", help: "Answers sent, by status code.", labelNames: ["code"])
    registry.info(
      "lb_build_info", help: "The balancer's version and the policy it runs.",
      labels: ["version": version, "policy": broker.dispatcher.name])
  }

  /// The program's version, as `lb_build_info` shows it.
  public static let version = "0.4.0"

  /// A client got its redirect after waiting `nanoseconds`.
  public func observeWait(nanoseconds: UInt64) { waits.observe(nanoseconds: nanoseconds) }

  /// A lease of `server` was reported `nanoseconds` after it was issued.
  public func observeJob(_ server: ServerAddress, nanoseconds: UInt64) {
    if let histogram = jobsByServer[server] { return histogram.observe(nanoseconds: nanoseconds) }
    let histogram = jobs.labels(server.description)
    jobsByServer[server] = histogram
    histogram.observe(nanoseconds: nanoseconds)
  }

  /// An answer with `status` was sent.
  public func countAnswer(_ status: Int) {
    guard answersByCode.indices.contains(status) else {
      return answers.labels(String(status)).increment()  // not a status code: never cached
    }
    if let counter = answersByCode[status] { return counter.increment() }
    let counter = answers.labels(String(status))
    answersByCode[status] = counter
    counter.increment()
  }

  /// The text exposition, version 0.0.4.
  public func render() -> [UInt8] { Array(registry.render().utf8) }
}
