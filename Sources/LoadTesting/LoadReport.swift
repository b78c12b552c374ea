import Charts
import Foundation

/// What a load test saw: every visit, and the summaries, tables and charts drawn from them.
public struct LoadReport: Sendable {
  public var visits: [Visit]
  /// Seconds from the first visit's start to the last visit's end.
  public var duration: Double
  public var concurrency: Int
  /// What the visits were sent to: the balancer's URL, or several, comma-separated.
  public var url: String
  /// The balancers (host:port) the visits were spread over, in the order given.
  public var balancers: [String]

  public init(
    visits: [Visit], duration: Double, concurrency: Int, url: String, balancers: [String] = []
  ) {
    self.visits = visits.sorted { $0.index < $1.index }
    self.duration = duration
    self.concurrency = concurrency
    self.url = url
    self.balancers = balancers
  }

  public var succeeded: Int { visits.filter { $0.outcome == .ok }.count }
  /// Successful visits per second over the whole run.
  public var throughput: Double { duration > 0 ? Double(succeeded) / duration : 0 }
  public var retries: Int { visits.reduce(0) { $0 + $1.retries } }
  /// Of `retries`, those at the next balancer after one refused or dropped the connection.
  public var balancerRetries: Int { visits.reduce(0) { $0 + $1.balancerRetries } }

  /// With several balancers, the visits each one answered first (`Visit.balancer`), every
  /// balancer listed in the order given; empty with one.
  public var answeredPerBalancer: [(String, Int)] {
    var named = Set<String>()
    let distinct = balancers.filter { named.insert($0).inserted }
    guard distinct.count > 1 else { return [] }
    var counts: [String: Int] = [:]
    for visit in visits { if let balancer = visit.balancer { counts[balancer, default: 0] += 1 } }
    return distinct.map { ($0, counts[$0] ?? 0) }
  }

  /// Visits per outcome, every outcome listed.
  public var outcomes: [(Visit.Outcome, Int)] {
    Visit.Outcome.allCases.map { outcome in (outcome, visits.filter { $0.outcome == outcome }.count)
    }
  }

  /// Visits per final HTTP status (0: no answer).
  public var statusCounts: [(Int, Int)] {
    Dictionary(grouping: visits, by: \.status).map { ($0.key, $0.value.count) }.sorted {
      $0.0 < $1.0
    }
  }

  /// Successful jobs per server, in port order.
  public var jobsPerServer: [(String, Int)] {
    let ok = visits.filter { $0.outcome == .ok }
    return Dictionary(grouping: ok, by: { $0.server ?? "-" }).map { ($0.key, $0.value.count) }
      .sorted { Self.serverOrder($0.0, $1.0) }
  }

  public var total: LatencySummary {
    LatencySummary(visits.filter { $0.outcome == .ok }.map(\.totalMilliseconds))
  }
  public var atBalancer: LatencySummary {
    LatencySummary(visits.filter { $0.outcome == .ok }.compactMap(\.balancerMilliseconds))
  }
  public var atServer: LatencySummary {
    LatencySummary(visits.filter { $0.outcome == .ok }.compactMap(\.serverMilliseconds))
  }

  /// The summary a person reads.
  public var text: String {
    var lines = [
      "\(visits.count) visits to \(url) with \(concurrency) at a time, in \(String(format: "%.2f", duration)) s",
      "succeeded: \(succeeded), throughput: \(String(format: "%.1f", throughput)) req/s, "
        + (answeredPerBalancer.isEmpty
          ? "retries after a lost server: \(retries)"
          : "retries: \(retries) (after a lost server \(retries - balancerRetries), at the next balancer \(balancerRetries))"),
      "outcomes: " + outcomes.map { "\($0.0.rawValue) \($0.1)" }.joined(separator: ", "),
      "status codes: "
        + statusCounts.map { "\($0.0 == 0 ? "none" : String($0.0)) \($0.1)" }.joined(
          separator: ", "),
      "",
      "jobs per server:",
    ]
    let jobs = jobsPerServer
    let width = jobs.map(\.0.count).max() ?? 6
    for (server, count) in jobs {
      let share = succeeded > 0 ? 100 * Double(count) / Double(succeeded) : 0
      lines.append(
        "  " + server.padding(toLength: width, withPad: " ", startingAt: 0)
          + String(format: " %7d  %5.1f%%", count, share))
    }
    let answered = answeredPerBalancer
    if !answered.isEmpty {
      lines.append("")
      lines.append("visits answered per balancer (the first to answer each):")
      let width = answered.map(\.0.count).max() ?? 6
      for (balancer, count) in answered {
        let share = visits.isEmpty ? 0 : 100 * Double(count) / Double(visits.count)
        lines.append(
          "  " + balancer.padding(toLength: width, withPad: " ", startingAt: 0)
            + String(format: " %7d  %5.1f%%", count, share))
      }
    }
    lines.append("")
    lines.append("latency (ms)        mean      p50      p90      p99      max")
    for (name, summary) in [
      ("total", total), ("at the balancer", atBalancer), ("at the server", atServer),
    ] {
      lines.append(
        name.padding(toLength: 16, withPad: " ", startingAt: 0)
          + String(
            format: " %8.2f %8.2f %8.2f %8.2f %8.2f", summary.mean, summary.p50, summary.p90,
            summary.p99,
            summary.max))
    }
    return lines.joined(separator: "\n")
  }

  /// The summary as JSON.
  public var json: String {
    func latency(_ summary: LatencySummary) -> [String: Any] {
      [
        "mean": summary.mean, "p50": summary.p50, "p90": summary.p90, "p99": summary.p99,
        "max": summary.max,
      ]
    }
    var object: [String: Any] = [
      "url": url, "visits": visits.count, "concurrency": concurrency, "duration_s": duration,
      "succeeded": succeeded, "throughput_rps": throughput, "retries": retries,
      "outcomes": Dictionary(uniqueKeysWithValues: outcomes.map { ($0.0.rawValue, $0.1) }),
      "status_codes": Dictionary(uniqueKeysWithValues: statusCounts.map { (String($0.0), $0.1) }),
      "jobs_per_server": Dictionary(uniqueKeysWithValues: jobsPerServer),
      "latency_ms": [
        "total": latency(total), "at_balancer": latency(atBalancer), "at_server": latency(atServer),
      ],
    ]
    let answered = answeredPerBalancer
    if !answered.isEmpty {
      object["answered_per_balancer"] = Dictionary(uniqueKeysWithValues: answered)
      object["balancer_retries"] = balancerRetries
    }
    let data = try? JSONSerialization.data(
      withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    return (data.map { String(decoding: $0, as: UTF8.self) } ?? "{}") + "\n"
  }

  /// The columns of `csv`, in order.
  public static let csvColumns = [
    "index", "start_s", "end_s", "outcome", "status", "server", "balancer_ms", "server_ms",
    "total_ms", "retries", "job_size", "detail",
  ]

  /// One row per visit, under a header naming `csvColumns`; `job_size` is empty unless the run
  /// mixes job sizes, `detail` is always quoted.
  public var csv: String {
    var rows = [Self.csvColumns.joined(separator: ",")]
    for visit in visits {
      let fields: [String] = [
        String(visit.index), String(format: "%.6f", visit.start), String(format: "%.6f", visit.end),
        visit.outcome.rawValue, String(visit.status), visit.server ?? "",
        visit.balancerMilliseconds.map { String(format: "%.3f", $0) } ?? "",
        visit.serverMilliseconds.map { String(format: "%.3f", $0) } ?? "",
        String(format: "%.3f", visit.totalMilliseconds), String(visit.retries),
        visit.jobSize.map(String.init) ?? "",
        "\"" + visit.detail.replacingOccurrences(of: "\"", with: "\"\"") + "\"",
      ]
      rows.append(fields.joined(separator: ","))
    }
    return rows.joined(separator: "\n") + "\n"
  }

  /// A bar chart of jobs per server.
  public func serverChart(title: String? = nil) -> String {
    SVGChart(
      title: title
        ?? "Requests per server: \(succeeded) served of \(visits.count) sent, \(concurrency) at a time",
      xLabel: "server", yLabel: "requests served"
    ).bars(jobsPerServer.map { ($0.0, Double($0.1)) })
  }

  /// Jobs finished per second by each server (in `jobsPerServer` order), in consecutive slices
  /// of `bucket` seconds from the start; each point is at its slice's start. Only whole slices
  /// are counted: a last, shorter slice would show a fraction of a slice's jobs as a drop of
  /// every line at the end, so it is left out (a run shorter than `bucket` is one slice as
  /// long as the run).
  public func timeline(bucket: Double) -> [(server: String, points: [(x: Double, y: Double)])] {
    let wholeSlices = Int((duration / bucket * (1 + 1e-9)).rounded(.down))
    let (slices, width) = wholeSlices >= 1 ? (wholeSlices, bucket) : (1, max(duration, 1e-9))
    let end = Double(slices) * width * (1 + 1e-9)
    let servers = jobsPerServer.map(\.0)
    var counts: [String: [Int]] = Dictionary(
      uniqueKeysWithValues: servers.map { ($0, Array(repeating: 0, count: slices)) })
    for visit in visits where visit.outcome == .ok && visit.end <= end {
      guard let server = visit.server else { continue }
      counts[server]?[min(slices - 1, Int(visit.end / width))] += 1
    }
    return servers.map { server in
      (
        server,
        counts[server]!.enumerated().map { (Double($0.offset) * width, Double($0.element) / width) }
      )
    }
  }

  /// A line chart of `timeline(bucket:)`: jobs finished per second by each server over the run.
  public func timelineChart(bucket: Double, title: String? = nil) -> String {
    let series = timeline(bucket: bucket).map {
      SVGChart.Series(name: $0.server, points: $0.points)
    }
    return SVGChart(
      title: title ?? "Requests served per second, per server", xLabel: "seconds since the start",
      yLabel: "requests per second"
    ).lines(series)
  }

  /// Ports in numeric order, then other names.
  static func serverOrder(_ a: String, _ b: String) -> Bool {
    switch (Int(a), Int(b)) {
    case (let x?, let y?): return x < y
    case (.some, nil): return true
    case (nil, .some): return false
    default: return a < b
    }
  }
}
