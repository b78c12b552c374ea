import Charts
import Foundation
import HTTPCore
import LoadTesting
import ProgramSupport

/// `loadtest policies`: measures the pool's capacity, then runs every routing policy at the same
/// offered loads (open loop, Poisson arrivals, the same job mix and seed) and compares latency and
/// the spread of jobs across servers.
func runPolicies(_ arguments: [String]) {
  var options = CommandLineOptions(
    program: "loadtest policies",
    summary: """
      Starts the balancer with --servers servers for each policy (queue, round-robin, random,
      least-connections, consistent-hash). First measures capacity (the queue policy saturated,
      closed loop); then, for each policy and each load in --loads, sends --requests visits at
      load × capacity per second and reports mean, p50 and p99 latency and the spread of jobs.
      """,
    options: [
      .value("servers", "N", "servers in the pool (default 5)"),
      .value(
        "loads", "LIST",
        "offered loads as fractions of capacity, each above 0 and at most 2 (default 0.5,0.8,0.95)"),
      .value("balancer-binary", "PATH", "the balancer to run (default: beside this program)"),
      .value("chart-prefix", "PATH", "write PATH-mean.svg, PATH-p99.svg and PATH-spread.svg"),
      .value("capacity", "PER_SECOND", "skip the measurement and use this capacity"),
    ]
      + LoadOptions.common.filter {
        !["timeline-chart", "run-at", "chart", "csv", "rate"].contains($0.name)
      })
  CommandLineOptions.parseOrExit(&options, arguments)
  let servers: Int
  var loads: [Double] = []
  do {
    servers = try options.integer("servers", in: 1...64, default: 5)
  } catch {
    LoadOptions.fail(error.description)
  }
  for item in LoadOptions.items(of: options["loads"] ?? "0.5,0.8,0.95", flag: "loads") {
    guard let load = CommandLineOptions.decimal(item), load > 0, load <= 2 else {
      LoadOptions.fail("--loads: '\(item)' is not a fraction between 0 and 2")
    }
    loads.append(load)
  }
  // Else the capacity would be measured for a comparison of nothing.
  guard !loads.isEmpty else { LoadOptions.fail("--loads: no load given") }
  // The load's flags are checked now, before any system starts (each run reads them again).
  _ = LoadOptions.configuration(url: "http://127.0.0.1:1/", options)
  LoadOptions.checkWritable(
    [options["json"]]
      + ["-mean.svg", "-p99.svg", "-spread.svg"].map { suffix in
        options["chart-prefix"].map { $0 + suffix }
      })
  let binary =
    options["balancer-binary"]
    ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    .appendingPathComponent("balancer").path
  func note(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

  // 1. Capacity: the queue policy kept saturated by a closed loop.
  var capacity = 0.0
  if options["capacity"] != nil {
    do {
      capacity = try options.number("capacity", in: 0.001...1_000_000, default: 1)
    } catch {
      LoadOptions.fail(error.description)
    }
  } else {
    do {
      let system = try RunningSystem(balancer: binary, servers: servers)
      defer { system.stop() }
      var configuration = LoadOptions.configuration(url: system.url, options)
      configuration.rate = nil
      configuration.concurrency = max(4 * servers, 32)
      configuration.requests = min(configuration.requests, 3000)
      let report = LoadOptions.run(configuration, quiet: true)
      capacity = report.throughput
    } catch {
      LoadOptions.fail("measuring capacity: \(error)")
    }
  }
  print(String(format: "capacity (queue policy, saturated, closed loop): %.1f req/s", capacity))

  // 2. Every policy at every load.
  struct Row {
    let policy: String
    let load: Double
    let servers: Int
    let report: LoadReport
    /// (most − least) / mean jobs per server; a server that got none counts as 0.
    var spread: Double {
      let counts = report.jobsPerServer.map { Double($0.1) }
      let padded = counts + Array(repeating: 0, count: max(0, servers - counts.count))
      guard let most = padded.max(), let least = padded.min(), report.succeeded > 0 else {
        return 0
      }
      return (most - least) / (Double(report.succeeded) / Double(servers))
    }
  }
  var rows: [Row] = []
  for policy in ["queue", "round-robin", "random", "least-connections", "consistent-hash"] {
    for load in loads {
      note(
        "== \(policy) at " + String(format: "%.0f%% (%.1f req/s) ==", load * 100, load * capacity))
      do {
        let system = try RunningSystem(
          balancer: binary, servers: servers, arguments: ["--policy", policy])
        defer { system.stop() }
        var configuration = LoadOptions.configuration(url: system.url, options)
        configuration.rate = load * capacity
        let report = LoadOptions.run(configuration, quiet: options.isSet("quiet"))
        rows.append(Row(policy: policy, load: load, servers: servers, report: report))
      } catch {
        LoadOptions.fail("\(policy) at \(load): \(error)")
      }
    }
  }

  print("policy             load   mean ms    p50 ms    p99 ms   spread  throughput  failed")
  for row in rows {
    let total = row.report.total
    print(
      row.policy.padding(toLength: 17, withPad: " ", startingAt: 0)
        + String(
          format: " %4.0f%%  %8.1f  %8.1f  %8.1f  %7.2f  %10.1f  %6d", row.load * 100,
          total.mean, total.p50, total.p99, row.spread, row.report.throughput,
          row.report.visits.count - row.report.succeeded))
  }
  let json = { () -> String in
    let items = rows.map { row -> String in
      let total = row.report.total
      let perServer = row.report.jobsPerServer.map { "\"\($0.0)\": \($0.1)" }.joined(
        separator: ", ")
      return "{\"policy\": \"\(row.policy)\", "
        + String(
          format:
            "\"load\": %.2f, \"rate_rps\": %.1f, \"mean_ms\": %.2f, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f, \"spread\": %.3f, \"throughput_rps\": %.1f, \"failed\": %d, ",
          row.load, row.load * capacity, total.mean, total.p50, total.p99, total.max, row.spread,
          row.report.throughput, row.report.visits.count - row.report.succeeded)
        + "\"jobs_per_server\": {\(perServer)}}"
    }
    return String(format: "{\"capacity_rps\": %.1f, \"runs\": [\n  ", capacity)
      + items.joined(separator: ",\n  ") + "\n]}\n"
  }
  let policies = ["queue", "round-robin", "random", "least-connections", "consistent-hash"]
  let ticks = loads.map { $0 * 100 }
  func chart(_ title: String, _ yLabel: String, _ value: @escaping (Row) -> Double) -> () -> String
  {
    {
      let series = policies.map { policy in
        SVGChart.Series(
          name: policy,
          points: rows.filter { $0.policy == policy }.map { ($0.load * 100, value($0)) })
      }
      return SVGChart(title: title, xLabel: "offered load (% of capacity)", yLabel: yLabel)
        .lines(series, xTicks: ticks)
    }
  }
  let prefix = options["chart-prefix"]
  let written = LoadOptions.save([
    (options["json"], json),
    (
      prefix.map { $0 + "-mean.svg" },
      chart("Mean latency by policy", "mean latency (ms)") { $0.report.total.mean }
    ),
    (
      prefix.map { $0 + "-p99.svg" },
      chart("99th percentile latency by policy", "p99 latency (ms)") { $0.report.total.p99 }
    ),
    (
      prefix.map { $0 + "-spread.svg" },
      chart("Spread of jobs across servers by policy", "(most − least) / mean") { $0.spread }
    ),
  ])
  if !written { exit(2) }
}
