import Foundation
import Glibc
import HTTPCore
import TestSupport
import XCTest

/// `loadtest URL1,URL2`: one load spread over several balancers, as round-robin DNS would, and
/// carried on by the others when one is gone. The balancers here are ordinary ones, each with its
/// own servers (no shared queue is needed to spread and to retry).
final class LoadtestSeveralBalancersTests: SystemTestCase {
  /// A balancer and the servers it hands out, each its own process (`--no-spawn`).
  private struct System {
    let balancer: ManagedProcess
    let port: Int
    let servers: [Int]
    var url: String { "http://127.0.0.1:\(port)/" }
    var name: String { "127.0.0.1:\(port)" }
  }

  /// Starts a balancer in its own directory with `servers` (free ports) in its servers.json.
  private func startSystem(named name: String, servers: [Int]) throws -> System {
    let folder = directory + "/" + name
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try "{\"available_servers\": [\(servers.map(String.init).joined(separator: ", "))]}".write(
      toFile: folder + "/servers.json", atomically: true, encoding: .utf8)
    // Not `--port 0`: the kernel may hand the balancer a server's port (see SystemTestCase).
    var chosen = try freePort()
    while servers.contains(chosen) { chosen = try freePort() }
    let balancer = try ManagedProcess(
      "balancer", ["--port", "\(chosen)", "--no-spawn", "--quiet"], directory: folder)
    processes.append(balancer)
    try balancer.waitForOutput("[balancer] listening on port ")
    let line = balancer.output.components(separatedBy: "[balancer] listening on port ")[1]
    let port = Int(line.prefix { $0.isNumber })!
    for server in servers {
      let process = try ManagedProcess(
        "factorial-server", ["--port", "\(server)", "--balancer", "127.0.0.1:\(port)"])
      processes.append(process)
      try process.waitForOutput("listening on port \(server)")
    }
    return System(balancer: balancer, port: port, servers: servers)
  }

  /// Runs loadtest to its end (at most `timeout` seconds: then it is killed) and reads its JSON.
  private func runLoadtest(_ arguments: [String], timeout: Double = 90) throws -> (
    status: Int32?, output: String, summary: [String: Any]
  ) {
    let json = directory + "/run-\(UUID().uuidString).json"
    let process = try ManagedProcess("loadtest", arguments + ["--json", json, "--quiet"])
    processes.append(process)
    let status = process.waitForExit(timeout: timeout)
    if status == nil { process.stop() }
    let summary =
      (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))))
      as? [String: Any] ?? [:]
    return (status, process.output, summary)
  }

  /// Leases the balancer on `port` saw reported by its servers.
  private func reported(_ port: Int) throws -> Int? {
    let response = try TestClient(port: port).get("/status")
    let status = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
    return (status?["totals"] as? [String: Int])?["reported"]
  }

  func testVisitsAreSpreadOverTwoBalancers() throws {
    let ports = try freePorts(4)
    let a = try startSystem(named: "a", servers: Array(ports[0..<2]))
    let b = try startSystem(named: "b", servers: Array(ports[2..<4]))
    let (status, output, summary) = try runLoadtest([
      "\(a.url),\(b.url)", "--requests", "200", "--concurrency", "8",
    ])
    XCTAssertEqual(status, 0, output)
    XCTAssertEqual(summary["succeeded"] as? Int, 200, output)
    XCTAssertEqual(summary["retries"] as? Int, 0, output)
    // Visit i started at balancer i mod 2, and each answered every visit it got.
    XCTAssertEqual(
      summary["answered_per_balancer"] as? [String: Int], [a.name: 100, b.name: 100], output)
    let perServer = summary["jobs_per_server"] as? [String: Int] ?? [:]
    XCTAssertEqual(Set(perServer.keys), Set(ports.map(String.init)), output)
    XCTAssertEqual(perServer.values.reduce(0, +), 200)
    XCTAssertEqual(summary["url"] as? String, "\(a.url),\(b.url)")
    XCTAssertTrue(output.contains("visits answered per balancer"), output)
    // Each balancer saw its own half of the jobs reported.
    try eventually("both balancers to see 100 jobs reported", timeout: 10) {
      try reported(a.port) == 100 && reported(b.port) == 100
    }
  }

  func testADeadBalancerIsPassedOverByRetries() throws {
    let a = try startSystem(named: "a", servers: try freePorts(2))
    let deadPort = try freePort()  // bound and closed: nothing listens there
    let dead = "127.0.0.1:\(deadPort)"
    let (status, output, summary) = try runLoadtest([
      "\(a.url),http://\(dead)/", "--requests", "200", "--concurrency", "8",
    ])
    XCTAssertEqual(status, 0, output)
    XCTAssertEqual(summary["succeeded"] as? Int, 200, output)
    // Every odd visit started at the dead one and went on to the live one: one retry each.
    XCTAssertEqual(summary["retries"] as? Int, 100, output)
    XCTAssertEqual(summary["balancer_retries"] as? Int, 100, output)
    XCTAssertEqual(summary["answered_per_balancer"] as? [String: Int], [a.name: 200, dead: 0])
    XCTAssertEqual((summary["outcomes"] as? [String: Int])?["balancer_unreachable"], 0)
    try eventually("the live balancer to see every job reported", timeout: 10) {
      try reported(a.port) == 200
    }
  }

  /// kill -9 one balancer mid-run, while clients wait in its line (one server for many clients):
  /// those clients and every later visit that starts there go on to the other one.
  func testABalancerKilledMidRunLosesNoVisit() throws {
    let ports = try freePorts(3)
    let a = try startSystem(named: "a", servers: Array(ports[0..<2]))
    let b = try startSystem(named: "b", servers: [ports[2]])
    let victim = b.balancer.process.processIdentifier
    let (status, output, summary) = try runLoadtest([
      "\(a.url),\(b.url)", "--requests", "400", "--concurrency", "16", "--retries", "10",
      "--run-at", "100:kill -9 \(victim)",
    ])
    XCTAssertEqual(status, 0, output)
    XCTAssertTrue(output.contains("ran: kill -9 \(victim)"), output)
    XCTAssertFalse(b.balancer.process.isRunning, "the kill did not happen")
    XCTAssertEqual(summary["succeeded"] as? Int, 400, output)
    let answered = summary["answered_per_balancer"] as? [String: Int] ?? [:]
    XCTAssertGreaterThan(answered[b.name] ?? 0, 0, output)
    XCTAssertLessThan(answered[b.name] ?? 200, 200, "b answered after it was killed? \(output)")
    XCTAssertEqual(answered.values.reduce(0, +), 400, output)
    XCTAssertGreaterThan(summary["balancer_retries"] as? Int ?? 0, 0, output)
  }
}
