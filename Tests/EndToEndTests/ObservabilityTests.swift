import Foundation
import HTTPCore
import Synchronization
import TestSupport
import XCTest

/// What people watching the balancer see, on real processes: Prometheus metrics that promtool
/// accepts and that agree with /status, and the live dashboard as headless Chromium renders it.
final class ObservabilityTests: SystemTestCase {
  /// Runs `tool` with `arguments`, feeding `input`; fails the test if it is missing (in CI) or
  /// skips (elsewhere). Bounded to `timeout` seconds.
  private func run(
    _ tool: String, _ arguments: [String], input: String = "", timeout: Double = 60
  ) throws -> (status: Int32, output: String) {
    guard
      let path = ["/usr/bin/", "/usr/local/bin/", "/bin/"].map({ $0 + tool }).first(where: {
        FileManager.default.isExecutableFile(atPath: $0)
      })
    else {
      let message =
        "\(tool) is not installed (apt-get install -y \(tool == "promtool" ? "prometheus" : tool))"
      if ProcessInfo.processInfo.environment["CI"] != nil { throw TestFailure(message) }
      throw XCTSkip(message)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stdout
    try process.run()
    stdin.fileHandleForWriting.write(Data(input.utf8))
    try stdin.fileHandleForWriting.close()
    let deadline = Date(timeIntervalSinceNow: timeout)
    let output = Mutex(Data())  // (read below even if the reader is still at it)
    let reader = stdout.fileHandleForReading
    let done = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
      let data = reader.readDataToEndOfFile()
      output.withLock { $0 = data }
      done.signal()
    }
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    if process.isRunning {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      throw TestFailure("\(tool) did not finish within \(timeout) s")
    }
    process.waitUntilExit()
    _ = done.wait(timeout: .now() + 5)
    return (process.terminationStatus, String(decoding: output.withLock { $0 }, as: UTF8.self))
  }

  /// The value of a sample line `name{labels} value` in a text exposition.
  private func sample(_ text: String, _ prefix: String) -> Double? {
    text.split(separator: "\n").first { $0.hasPrefix(prefix + " ") }
      .flatMap { Double($0.split(separator: " ").last!) }
  }

  func testMetricsAreValidAndAgreeWithStatus() throws {
    try startSystem(servers: 2)
    for _ in 0..<6 { _ = try TestClient.follow(balancerURL) }
    _ = try get("/")  // a lease left in flight
    _ = try get("/port_update/\(serverPorts[0])?lease=forged")
    try eventually("the reports") { try (status()["totals"] as! [String: Int])["reported"] == 6 }
    let response = try get("/metrics")
    XCTAssertEqual(response.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
    let text = response.text
    let checked = try run("promtool", ["check", "metrics"], input: text)
    XCTAssertEqual(checked.status, 0, checked.output)
    XCTAssertEqual(checked.output.trimmingCharacters(in: .whitespacesAndNewlines), "")
    for line in text.split(separator: "\n") where line.hasPrefix("lb_") {
      XCTAssertFalse(line.isEmpty)
    }
    let totals = try status()["totals"] as! [String: Int]
    XCTAssertEqual(sample(text, "lb_leases_issued_total"), Double(totals["leased"]!))
    XCTAssertEqual(sample(text, "lb_leases_reported_total"), Double(totals["reported"]!))
    XCTAssertEqual(sample(text, "lb_leases_in_flight"), 1)
    XCTAssertEqual(sample(text, "lb_reports_refused_total{reason=\"unknown_lease\"}"), 1)
    XCTAssertEqual(sample(text, "lb_client_wait_seconds_count"), 7)
    XCTAssertEqual(sample(text, "lb_http_responses_total{code=\"302\"}"), 7)
    // One server holds the lease in flight, the other is free.
    for state in ["free", "leased"] {
      let servers = serverPorts.compactMap {
        sample(text, "lb_server_state{server=\"\($0)\",state=\"\(state)\"}")
      }
      XCTAssertEqual(servers.reduce(0, +), 1, state)
    }
    XCTAssertNotNil(sample(text, "lb_job_seconds_count{server=\"\(serverPorts[0])\"}"))
    // The factorial server has its own.
    let server = try TestClient(port: serverPorts[0]).get("/metrics").text
    XCTAssertEqual(try run("promtool", ["check", "metrics"], input: server).status, 0, server)
    XCTAssertNotNil(sample(server, "factorial_jobs_total"))
    XCTAssertNotNil(sample(server, "factorial_queue_length"))
  }

  func testTheDashboardShowsWhatStatusSays() throws {
    // No claim checks: the lease left unused below must outlast the page's rendering (it was
    // revoked after 3 s once, on a loaded machine, between the page and /status).
    try startSystem(servers: 3, balancerArguments: ["--claim-timeout", "0"])
    for _ in 0..<4 { _ = try TestClient.follow(balancerURL) }
    crashServer(serverPorts[2])
    try eventually("the crashed server to be down", timeout: 15) {
      try serverStates()["\(serverPorts[2])"] == "down"
    }
    _ = try get("/")  // one server stays leased
    try eventually("quiet") { try (status()["totals"] as! [String: Int])["in_flight"] == 1 }
    // The page fetches its data over the network, which a loaded machine may delay past the
    // virtual-time budget: render again (at most three times) until it has drawn data.
    var dom = ""
    for budget in [4000, 8000, 15000] where !dom.contains("data-updated=") {
      dom = try run(
        "chromium",
        [
          "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=\(budget)",
          "--dump-dom", balancerURL + "dashboard",
        ], timeout: 90
      ).output
    }
    let current = try status()
    let servers = current["servers"] as! [[String: Any]]
    XCTAssertTrue(dom.contains("data-updated="), "the page never rendered data: \(dom.prefix(400))")
    for server in servers {
      let name = server["server"] as! String
      let state = server["state"] as! String
      XCTAssertTrue(
        dom.contains("data-server=\"\(name)\" data-state=\"\(state)\"")
          || dom.contains("data-state=\"\(state)\" data-server=\"\(name)\""),
        "tile of \(name) should say \(state)")
      // Its count is of leases handed out (one is unused, another ended with its server's
      // crash): not of jobs served.
      let leases = server["leases"] as! Int
      XCTAssertTrue(
        dom.contains(">\(state) · \(leases) lease\(leases == 1 ? "" : "s")<"),
        "tile of \(name) should count \(leases) leases")
    }
    let totals = current["totals"] as! [String: Int]
    for (id, value) in [
      ("free", current["free"] as! Int), ("waiting", current["waiting"] as! Int),
      ("leased", totals["leased"]!), ("reported", totals["reported"]!),
      ("in_flight", totals["in_flight"]!),
    ] {
      XCTAssertTrue(dom.contains("id=\"\(id)\">\(value)<"), "#\(id) should show \(value)")
    }
    XCTAssertTrue(dom.contains("\(serverPorts[2]): down"), "the change list shows the crash")
    // The page loads nothing from elsewhere.
    let page = try get("/dashboard").text
    XCTAssertFalse(page.contains("http://") || page.contains("https://"), "external asset")
  }

  /// A second copy started while one runs says so, instead of naming a server's port.
  func testASecondCopySaysABalancerAlreadyRuns() throws {
    // Chosen together, so that the server's port is never the balancer's.
    let ports = try freePorts(2)
    let port = ports[0]
    serverPorts = [ports[1]]
    try writeConfig(serverPorts)
    balancer = try ManagedProcess(
      "balancer", ["--port", "\(port)", "--no-spawn"], directory: directory)
    processes.append(balancer)
    try balancer.waitForOutput("listening on port \(port)")
    let second = try ManagedProcess("balancer", ["--port", "\(port)"], directory: directory)
    XCTAssertEqual(second.waitForExit(), 1)
    XCTAssertEqual(
      second.output,
      "balancer: a balancer already runs on port \(port): stop it first, or use --port\n")
  }

  func testLogsCanBeJSONAndSayWhatHappened() throws {
    let ports = try freePorts(2)
    serverPorts = [ports[1]]
    try writeConfig(serverPorts)
    balancerPort = ports[0]
    balancer = try ManagedProcess(
      "balancer", ["--port", "\(balancerPort)", "--no-spawn", "--log-format", "json"],
      directory: directory)
    processes.append(balancer)
    try balancer.waitForOutput("listening on port \(balancerPort)")
    _ = try get("/?n=3")
    try balancer.waitForOutput("\"message\":\"GET /?n=3 302 -> \(serverPorts[0]) lease ")
    for line in balancer.output.split(separator: "\n") {
      let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
      XCTAssertEqual(object?["program"], "balancer", String(line))
    }
  }
}
