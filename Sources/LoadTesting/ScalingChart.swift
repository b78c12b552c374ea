import Charts

/// One step of `loadtest scale`: the same load run through the system with `servers` servers.
public struct ScalingRun: Sendable {
  public var servers: Int
  public var report: LoadReport

  public init(servers: Int, report: LoadReport) {
    self.servers = servers
    self.report = report
  }

  /// Jobs served per server: the mean over all `servers`, and the least and the most one server
  /// served (a server that served none counts as 0).
  public var perServer: (mean: Double, least: Double, most: Double) {
    let counts = report.jobsPerServer.map { Double($0.1) }
    let padded = counts + Array(repeating: 0, count: max(0, servers - counts.count))
    return (
      Double(report.succeeded) / Double(max(servers, 1)), padded.min() ?? 0, padded.max() ?? 0
    )
  }
}

/// The charts of `loadtest scale`.
public enum ScalingCharts {
  /// Mean, least and most requests per server against N. Least and most are wide, pale bands
  /// drawn first; the mean is a solid line drawn last, over them, so it stays visible where the
  /// three meet (an even spread puts all three on the same points).
  public static func perServer(_ runs: [ScalingRun]) -> String {
    func points(_ value: (ScalingRun) -> Double) -> [(x: Double, y: Double)] {
      runs.map { (Double($0.servers), value($0)) }
    }
    let series = [
      SVGChart.Series(
        name: "least", points: points { $0.perServer.least }, width: 8, opacity: 0.35),
      SVGChart.Series(name: "most", points: points { $0.perServer.most }, width: 8, opacity: 0.35),
      SVGChart.Series(name: "mean", points: points { $0.perServer.mean }, width: 2.5),
    ]
    return SVGChart(
      title: "Requests per server against the number of servers",
      xLabel: "servers (N)", yLabel: "requests served per server"
    ).lines(series, xTicks: runs.map { Double($0.servers) })
  }

  /// Throughput against N.
  public static func throughput(_ runs: [ScalingRun]) -> String {
    SVGChart(
      title: "Throughput against the number of servers", xLabel: "servers (N)",
      yLabel: "requests per second"
    ).lines(
      [
        SVGChart.Series(
          name: "throughput", points: runs.map { (Double($0.servers), $0.report.throughput) })
      ], xTicks: runs.map { Double($0.servers) })
  }
}
