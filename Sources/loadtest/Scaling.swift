import Documents
import Foundation
import HTTPCore
import LoadTesting
import ProgramSupport
import Synchronization

/// `loadtest scale --from 2 --to 6`: runs the whole system with N servers for each N, the same
/// load each time, and charts mean (and least and most) requests per server and throughput.
func runScaling(_ arguments: [String]) {
  var options = CommandLineOptions(
    program: "loadtest scale",
    summary: """
      Starts the balancer (which starts N factorial servers) on free ports for each N from --from
      to --to, runs the same load through it, stops it, and reports per N the mean, least and most
      requests per server and the throughput.
      """,
    options: [
      .value("from", "N", "fewest servers (default 2)"),
      .value("to", "N", "most servers (default 6)"),
      .value("balancer-binary", "PATH", "the balancer to run (default: beside this program)"),
      .value("throughput-chart", "FILE.svg", "draw throughput against N"),
    ] + LoadOptions.common.filter { !["timeline-chart", "run-at", "csv"].contains($0.name) })
  CommandLineOptions.parseOrExit(&options, arguments)
  let from: Int
  let to: Int
  do {
    from = try options.integer("from", in: 1...64, default: 2)
    to = try options.integer("to", in: 1...64, default: 6)
  } catch {
    LoadOptions.fail(error.description)
  }
  guard from <= to else { LoadOptions.fail("--from must not be above --to") }
  // The load's flags are checked now, before any system starts (each run reads them again).
  _ = LoadOptions.configuration(url: "http://127.0.0.1:1/", options)
  LoadOptions.checkWritable(["json", "chart", "throughput-chart"].map { options[$0] })
  let binary =
    options["balancer-binary"]
    ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    .appendingPathComponent("balancer").path

  var rows: [ScalingRun] = []
  for n in from...to {
    FileHandle.standardError.write(Data("== \(n) servers ==\n".utf8))
    do {
      let system = try RunningSystem(balancer: binary, servers: n)
      defer { system.stop() }
      let configuration = LoadOptions.configuration(url: system.url, options)
      let report = LoadOptions.run(configuration, quiet: options.isSet("quiet"))
      print("-- \(n) servers --")
      print(report.text)
      print("")
      rows.append(ScalingRun(servers: n, report: report))
    } catch {
      LoadOptions.fail("with \(n) servers: \(error)")
    }
  }

  print("servers  mean/server  least  most  throughput (req/s)  failed")
  for row in rows {
    let spread = row.perServer
    print(
      String(
        format: "%7d  %11.1f  %5.0f  %4.0f  %18.1f  %6d", row.servers, spread.mean, spread.least,
        spread.most,
        row.report.throughput, row.report.visits.count - row.report.succeeded))
  }
  let json = { () -> String in
    let items = rows.map { row -> String in
      let spread = row.perServer
      return String(
        format:
          "{\"servers\": %d, \"mean_per_server\": %.2f, \"least\": %.0f, \"most\": %.0f, \"throughput_rps\": %.2f, \"failed\": %d}",
        row.servers, spread.mean, spread.least, spread.most, row.report.throughput,
        row.report.visits.count - row.report.succeeded)
    }
    return "[\n  " + items.joined(separator: ",\n  ") + "\n]\n"
  }
  let written = LoadOptions.save([
    (options["chart"], { ScalingCharts.perServer(rows) }),
    (options["throughput-chart"], { ScalingCharts.throughput(rows) }),
    (options["json"], json),
  ])
  if !written { exit(2) }
}

/// A balancer with N servers it supervises, on free ports, in a scratch directory.
final class RunningSystem {
  let process = Process()
  let directory: String
  let port: Int
  var url: String { "http://127.0.0.1:\(port)/" }

  init(balancer: String, servers: Int, arguments: [String] = []) throws {
    let ports = try Socket.freePorts(servers + 1)
    port = ports[0]
    directory = NSTemporaryDirectory() + "loadtest-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    do {
      let list = ports.dropFirst().map { "\"\($0)\"" }.joined(separator: ", ")
      try "{\"available_servers\": [\(list)]}".write(
        toFile: directory + "/servers.json", atomically: true, encoding: .utf8)
      process.executableURL = URL(fileURLWithPath: balancer)
      process.arguments =
        [
          "--port", "\(port)", "--config", directory + "/servers.json", "--quiet",
          "--parent-pid", "\(getpid())",
        ]
        + arguments
      process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
      _ = Self.stopAllOnSignal
      try process.run()
    } catch {
      try? FileManager.default.removeItem(atPath: directory)  // a balancer never started
      throw error
    }
    Self.running.withLock { $0[ObjectIdentifier(self)] = self }
    // Ready once every server has joined the queue.
    let deadline = Date(timeIntervalSinceNow: 20)
    while Date() < deadline {
      if let client = try? BlockingHTTPClient(port: port, timeout: 2),
        let response = try? client.get("/health"),
        let health = try? BalancerHealth.decode(response.body), health.free == servers
      {
        return
      }
      Thread.sleep(forTimeInterval: 0.05)
    }
    stop()
    throw HTTPClient.Failure.unreachable(
      "the balancer did not get \(servers) servers ready in 20 s")
  }

  func stop() {
    Self.running.withLock { $0[ObjectIdentifier(self)] = nil }
    if process.isRunning {
      process.terminate()
      process.waitUntilExit()
    }
    try? FileManager.default.removeItem(atPath: directory)
  }

  /// The systems running now.
  private static let running = Mutex<[ObjectIdentifier: RunningSystem]>([:])
  /// SIGINT or SIGTERM to loadtest stops every running system before it exits (128 + the
  /// signal's number), so that no balancer (and none of its servers) outlives it.
  private static let stopAllOnSignal: Void = {
    for number in [SIGINT, SIGTERM] {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler {
        for system in running.withLock({ Array($0.values) }) { system.stop() }
        exit(128 + number)
      }
      source.resume()
      signalSources.append(source)
    }
  }()
  private nonisolated(unsafe) static var signalSources: [DispatchSourceSignal] = []

}
