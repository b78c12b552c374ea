import Foundation
import Glibc
import HTTPCore
import TestSupport
import XCTest

/// The load tester against the real system.
final class LoadtestEndToEndTests: SystemTestCase {
  /// Runs loadtest with `arguments` (or /bin/sh with them, `shell`) and waits for it to exit.
  private func runLoadtest(_ arguments: [String], timeout: Double = 60, shell: Bool = false)
    throws -> (status: Int32?, output: String)
  {
    let process = try ManagedProcess(shell ? "/bin/sh" : "loadtest", arguments)
    processes.append(process)
    let status = process.waitForExit(timeout: timeout)
    return (status, process.output)
  }

  private func readJSON(_ path: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
      as! [String: Any]
  }

  func testLoadtestCountsEveryVisitAndWritesItsFiles() throws {
    try startSystem(servers: 3)
    let json = directory + "/run.json"
    let csv = directory + "/run.csv"
    let chart = directory + "/run.svg"
    let (exitStatus, output) = try runLoadtest([
      balancerURL, "--requests", "300", "--concurrency", "8", "--json", json, "--csv", csv,
      "--chart", chart,
    ])
    XCTAssertEqual(exitStatus, 0, output)
    XCTAssertTrue(output.contains("progress: "), "plain progress lines when not on a terminal")
    XCTAssertTrue(output.contains("succeeded: 300"), output)
    let summary = try readJSON(json)
    XCTAssertEqual(summary["succeeded"] as? Int, 300)
    let perServer = summary["jobs_per_server"] as! [String: Int]
    XCTAssertEqual(Set(perServer.keys), Set(serverPorts.map(String.init)))
    XCTAssertEqual(perServer.values.reduce(0, +), 300)
    let latency = (summary["latency_ms"] as! [String: [String: Double]])
    XCTAssertGreaterThan(latency["total"]!["p50"]!, 0)
    XCTAssertLessThanOrEqual(latency["at_server"]!["p50"]!, latency["total"]!["p50"]!)
    let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(rows.count, 301)
    let svg = try String(contentsOfFile: chart, encoding: .utf8)
    XCTAssertTrue(svg.contains("<svg"))
    for port in serverPorts { XCTAssertTrue(svg.contains(">\(port)<"), "no bar for \(port)") }
    // The balancer saw the same number of reported leases.
    let totals = try status()["totals"] as! [String: Int]
    XCTAssertEqual(totals["reported"], 300)
  }

  func testQuietPrintsNoProgress() throws {
    try startSystem(servers: 2)
    let (exitStatus, output) = try runLoadtest([
      balancerURL, "--requests", "50", "--concurrency", "4", "--quiet",
    ])
    XCTAssertEqual(exitStatus, 0, output)
    XCTAssertTrue(output.contains("succeeded: 50"), output)
    XCTAssertFalse(output.contains("progress: "), output)
  }

  /// kill -9 one server halfway: the run completes with no failed visit, the server is restarted.
  func testFailoverRunHasNoFailedVisit() throws {
    serverPorts = try freePorts(3)
    try writeConfig(serverPorts)
    try startBalancer()
    try eventually("the servers to start", timeout: 15) {
      let states = try serverStates()
      return Set(states.values) == ["free"] && states.count == 3
    }
    let victim = serverPorts[0]
    let json = directory + "/failover.json"
    let (status, output) = try runLoadtest([
      balancerURL, "--requests", "2000", "--concurrency", "16", "--json", json,
      // [f]: the pattern does not match pkill itself.
      "--run-at", "1000:pkill -9 -f -- '[f]actorial-server --port \(victim) '",
    ])
    XCTAssertEqual(status, 0, output)
    XCTAssertTrue(output.contains("ran: pkill"), output)
    let summary = try readJSON(json)
    XCTAssertEqual(summary["succeeded"] as? Int, 2000, output)
    XCTAssertTrue(balancer.output.contains("\(victim): process"), "the kill did not happen")
    try eventually("the victim to be restarted and free", timeout: 15) {
      try serverStates()["\(victim)"] == "free"
    }
  }

  /// `--help` of each command prints one usage line, the right one, and exits 0.
  func testHelpPrintsOneUsageLine() throws {
    for (arguments, usage) in [
      (["--help"], "usage: loadtest URL [options]"),
      (["http://127.0.0.1:8001/", "--help"], "usage: loadtest URL [options]"),
      (["scale", "--help"], "usage: loadtest scale [options]"),
      (["policies", "--help"], "usage: loadtest policies [options]"),
    ] {
      let (status, output) = try runLoadtest(arguments, timeout: 10)
      XCTAssertEqual(status, 0, "\(arguments): \(output)")
      let usageLines = output.split(separator: "\n").filter { $0.contains("usage:") }
      XCTAssertEqual(usageLines, [Substring(usage)], "\(arguments): \(output)")
      XCTAssertTrue(output.contains("--requests N"), "\(arguments): no options listed")
    }
    // Errors still name the program plainly.
    let (status, output) = try runLoadtest(["--bogus"], timeout: 10)
    XCTAssertEqual(status, 2, output)
    XCTAssertTrue(output.hasPrefix("loadtest: unknown option --bogus"), output)
  }

  /// A server that sends a visit back to the balancer (its lease was revoked, as a claim check
  /// does) is followed there, as a browser would, and the visit asks again for its own job.
  func testAVisitSentBackByItsServerAsksTheBalancerAgain() throws {
    let ports = try freePorts(2)
    let script = directory + "/sendback.py"
    try """
    import http.server, sys, threading
    balancer, server = int(sys.argv[1]), int(sys.argv[2])
    seen = set()
    class Balancer(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def reply(self, status, location=None, body=b""):
            self.send_response(status)
            if location: self.send_header("Location", location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def do_GET(self):
            query = self.path.split("?", 1)[1]
            self.reply(302, "http://127.0.0.1:%d/x?%s&lease=t" % (server, query))
        def log_message(self, *args): pass
    class Server(Balancer):
        def do_GET(self):
            query = dict(p.split("=") for p in self.path.split("?", 1)[1].split("&"))
            if query["n"] not in seen:  # the first time, the lease is revoked: back you go
                seen.add(query["n"])
                return self.reply(302, "http://127.0.0.1:%d/?n=%s" % (balancer, query["n"]))
            self.reply(200, body=("Factorial of %s = 1\\n" % query["n"]).encode())
    for port, handler in ((balancer, Balancer), (server, Server)):
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
    """.write(toFile: script, atomically: true, encoding: .utf8)
    let fake = try ManagedProcess(
      "/usr/bin/env", ["python3", script, "\(ports[0])", "\(ports[1])"])
    processes.append(fake)
    try fake.waitForOutput("ready")
    let json = directory + "/sendback.json"
    let (status, output) = try runLoadtest([
      "http://127.0.0.1:\(ports[0])/", "--requests", "10", "--concurrency", "1",
      "--mix", "7:1,9:1", "--json", json, "--quiet",
    ])
    XCTAssertEqual(status, 0, output)
    let summary = try readJSON(json)
    XCTAssertEqual(summary["succeeded"] as? Int, 10, output)
    XCTAssertEqual(summary["retries"] as? Int, 2, "sent back once for each job size")
  }

  func testARefusedBalancerIsCountedNotFatal() throws {
    let port = try freePort()
    let json = directory + "/refused.json"
    let (status, output) = try runLoadtest([
      "http://127.0.0.1:\(port)/", "--requests", "20", "--concurrency", "4", "--json", json,
      "--quiet",
    ])
    XCTAssertEqual(status, 3, output)
    let outcomes = try readJSON(json)["outcomes"] as! [String: Int]
    XCTAssertEqual(outcomes["balancer_unreachable"], 20)
    let (badStatus, badOutput) = try runLoadtest(["--requests", "x"])
    XCTAssertEqual(badStatus, 2, badOutput)
  }

  /// A count is a whole number: `--requests 2.5` is refused (exit 2), not run as 2 visits, and so
  /// are fractions of every other count of `loadtest`, `loadtest scale` and `loadtest policies`.
  func testAFractionalCountIsRefused() throws {
    let url = "http://127.0.0.1:\(try freePort())/"
    for arguments in [
      [url, "--requests", "2.5"], [url, "--requests", "1e1"],
      [url, "--requests", "3", "--concurrency", "1.5"],
      [url, "--requests", "3", "--retries", "0.5"], [url, "--requests", "3", "--keys", "2.5"],
      // A balancer that cannot start: an unfixed loadtest fails there rather than run a system.
      ["scale", "--from", "1.5", "--balancer-binary", "/nonexistent"],
      ["scale", "--to", "2.5", "--balancer-binary", "/nonexistent"],
      [
        "scale", "--from", "1", "--to", "1", "--requests", "2.5", "--balancer-binary",
        "/nonexistent",
      ],
      ["policies", "--servers", "2.5", "--balancer-binary", "/nonexistent"],
      ["policies", "--requests", "2.5", "--balancer-binary", "/nonexistent"],
    ] {
      let (status, output) = try runLoadtest(arguments + ["--quiet"], timeout: 10)
      XCTAssertEqual(status, 2, "\(arguments): \(output)")
      XCTAssertTrue(output.contains("is not a whole number"), "\(arguments): \(output)")
      XCTAssertFalse(output.contains("visits to"), "\(arguments) ran: \(output)")
    }
  }

  /// `loadtest scale` told to stop (SIGTERM, as `timeout` or a test's clean-up sends, or SIGINT)
  /// stops the balancer it started, which stops its servers: none outlives it. Before, the
  /// balancer and its server ran on, children of init, until someone killed them by hand.
  /// Killed outright (SIGKILL: no clean-up of its own), it leaves none behind either: the
  /// balancer runs with `--exit-with-parent`, and stops once loadtest is gone.
  func testScaleStoppedLeavesNoBalancerBehind() throws {
    /// The processes whose parent is `pid`.
    func children(of pid: Int32) -> [Int32] {
      let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
      return tasks.flatMap { task -> [Int32] in
        let text =
          (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap {
          Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
      }
    }
    func alive(_ pid: Int32) -> Bool {
      // A zombie has exited: only its parent has not waited for it yet.
      guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else {
        return false
      }
      return !stat.contains(") Z ")
    }
    for signal in [SIGTERM, SIGINT, SIGKILL] {
      let loadtest = try ManagedProcess(
        "loadtest",
        [
          "scale", "--from", "1", "--to", "1", "--requests", "10000000", "--concurrency", "1",
          "--quiet",
        ])
      processes.append(loadtest)
      var started: [Int32] = []
      defer { for pid in started { kill(pid, SIGKILL) } }  // whatever happens, none is left
      try eventually("loadtest \(signal): its balancer and server", timeout: 20) {
        let balancers = children(of: loadtest.process.processIdentifier)
        started = balancers + balancers.flatMap(children(of:))
        return started.count == 2
      }
      Thread.sleep(forTimeInterval: 0.5)  // the visits under way
      loadtest.signal(signal)
      XCTAssertNotNil(loadtest.waitForExit(timeout: 10), "loadtest did not exit on \(signal)")
      try eventually("loadtest \(signal): its balancer and server gone", timeout: 8) {
        started.allSatisfy { !alive($0) }
      }
    }
  }

  /// loadtest raises its soft open-file limit to the hard one, as the balancer and the servers
  /// do: each of its threads keeps a connection to the balancer and one to every server, so 40
  /// at a time with 3 servers hold 160 descriptors. Under a soft limit of 100 (or the usual 1024,
  /// which --concurrency 256 with 3 servers passes, and bench/policies.sh's 512 with 5 servers)
  /// its connections failed ("connect failed: Bad file descriptor") and the balancer's leases
  /// went unused.
  func testLoadtestRaisesItsOpenFileLimit() throws {
    var limit = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    guard limit.rlim_max >= 1024 else { throw XCTSkip("a hard open-file limit below 1024") }
    try startSystem(servers: 3, balancerArguments: ["--wait-timeout", "2", "--quiet"])
    let csv = directory + "/limit.csv"
    let loadtest = ManagedProcess.productsDirectory.appendingPathComponent("loadtest").path
    let (status, output) = try runLoadtest(
      [
        "-c", "ulimit -S -n 100 && exec \"$0\" \"$@\"", loadtest, balancerURL, "--requests",
        "400", "--concurrency", "40", "--csv", csv, "--quiet",
      ], shell: true)
    XCTAssertEqual(status, 0, output)
    XCTAssertTrue(output.contains("succeeded: 400"), output)
  }

  /// A connection that cannot be made for want of a descriptor says so ("Too many open files"),
  /// rather than "connect failed: Bad file descriptor" from connecting a socket that was never
  /// made.
  func testNoDescriptorLeftIsSaidPlainly() throws {
    try startSystem(servers: 1, balancerArguments: ["--wait-timeout", "2", "--quiet"])
    let csv = directory + "/emfile.csv"
    let loadtest = ManagedProcess.productsDirectory.appendingPathComponent("loadtest").path
    let (status, output) = try runLoadtest(
      [
        "-c", "ulimit -n 30 && exec \"$0\" \"$@\"", loadtest, balancerURL, "--requests", "100",
        "--concurrency", "40", "--csv", csv, "--quiet",
      ], shell: true)
    XCTAssertEqual(status, 3, output)
    let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").dropFirst()
    // (Others wait out --wait-timeout: a lease whose server could not be reached holds it.)
    let failed = rows.filter { $0.contains("_unreachable,") }
    XCTAssertFalse(failed.isEmpty, "40 connections at once fit in 30 descriptors?")
    for row in failed {
      XCTAssertTrue(row.contains(String(cString: strerror(EMFILE))), String(row))
    }
  }

  /// A balancer that cannot be started leaves no scratch directory behind (its servers.json in
  /// a loadtest-UUID directory of $TMPDIR, one per attempt).
  func testAFailedStartLeavesNoScratchDirectory() throws {
    let scratch = directory + "/tmp"
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    for command in ["scale", "policies"] {
      let process = try ManagedProcess(
        "loadtest", [command, "--balancer-binary", "/nonexistent", "--quiet"],
        environment: ["TMPDIR": scratch + "/"])
      processes.append(process)
      XCTAssertEqual(process.waitForExit(timeout: 10), 2, process.output)
      XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch), [], command)
    }
  }

  /// A `--mix` weight must be a finite number above 0: `inf` (or `1e999`) would take every
  /// pick and `nan` none, and weights whose sum is too large for a number break the picks as
  /// well. Refused (exit 2) before any visit, as every other bad flag; and so are non-finite
  /// values of the other number-valued flags of `loadtest`, `scale` and `policies`.
  func testNonFiniteAndNegativeNumbersAreRefused() throws {
    let url = "http://127.0.0.1:\(try freePort())/"
    let load = [url, "--requests", "3"]
    for (arguments, message) in [
      (load + ["--mix", "100:inf"], "--mix: '100:inf' is not N:WEIGHT"),
      (load + ["--mix", "100:1,200:Infinity"], "--mix: '200:Infinity' is not N:WEIGHT"),
      (load + ["--mix", "100:nan"], "--mix: '100:nan' is not N:WEIGHT"),
      (load + ["--mix", "100:1e999"], "--mix: '100:1e999' is not N:WEIGHT"),
      (load + ["--mix", "100:-1"], "--mix: '100:-1' is not N:WEIGHT"),
      (load + ["--mix", "100:1e308,200:1e308"], "--mix: the weights add up to more"),
      (load + ["--rate", "inf"], "--rate: 'inf' is not a number"),
      (load + ["--timeout", "nan"], "--timeout: 'nan' is not a number"),
      (
        [
          "scale", "--from", "1", "--to", "1", "--mix", "5:inf", "--balancer-binary",
          "/nonexistent",
        ],
        "--mix: '5:inf' is not N:WEIGHT"
      ),
      (
        ["policies", "--loads", "0.5,inf", "--balancer-binary", "/nonexistent"],
        "--loads: 'inf' is not a fraction"
      ),
      // An empty item was skipped, and hexadecimal read (helper-39's audit).
      (
        ["policies", "--loads", "0.5,,0.8", "--balancer-binary", "/nonexistent"],
        "--loads: an empty item in '0.5,,0.8'"
      ),
      (
        ["policies", "--loads", "0x1p-1", "--balancer-binary", "/nonexistent"],
        "--loads: '0x1p-1' is not a fraction"
      ),
      (load + ["--mix", "100:1,,200:1"], "--mix: an empty item in '100:1,,200:1'"),
      (load + ["--mix", "100:0x10"], "--mix: '100:0x10' is not N:WEIGHT"),
      (
        ["policies", "--capacity", "inf", "--balancer-binary", "/nonexistent"],
        "--capacity: 'inf' is not a number"
      ),
    ] {
      let (status, output) = try runLoadtest(arguments + ["--quiet"], timeout: 10)
      XCTAssertEqual(status, 2, "\(arguments): \(output)")
      XCTAssertTrue(output.contains(message), "\(arguments): \(output)")
      XCTAssertFalse(output.contains("visits to"), "\(arguments) ran: \(output)")
    }
  }

  /// A list flag given nothing (`--mix ""`, as an unset shell variable gives it, or only commas)
  /// is refused (exit 2) before any visit: `--mix` ran the default job sizes as if asked for,
  /// `--run-at` ran no command, and `policies --loads` measured the capacity (a whole run) for a
  /// comparison of no load.
  func testAnEmptyListIsRefused() throws {
    let url = "http://127.0.0.1:\(try freePort())/"
    let load = [url, "--requests", "3"]
    for (arguments, message) in [
      (load + ["--mix", ""], "--mix: no N:WEIGHT given in ''"),
      (load + ["--mix", ",,"], "--mix: no N:WEIGHT given in ',,'"),
      (load + ["--run-at", ";"], "--run-at: no N:COMMAND given in ';'"),
      (
        ["policies", "--loads", ",", "--balancer-binary", "/nonexistent"], "--loads: no load given"
      ),
    ] {
      let (status, output) = try runLoadtest(arguments + ["--quiet"], timeout: 10)
      XCTAssertEqual(status, 2, "\(arguments): \(output)")
      XCTAssertTrue(output.contains(message), "\(arguments): \(output)")
      XCTAssertFalse(output.contains("visits to"), "\(arguments) ran: \(output)")
    }
  }

  /// `loadtest policies --capacity` that is not a positive number is refused, not ignored in
  /// favour of a capacity measurement the user asked to skip.
  func testPoliciesRefusesABadCapacity() throws {
    for value in ["abc", "0", "-5"] {
      let (status, output) = try runLoadtest(
        ["policies", "--capacity", value, "--balancer-binary", "/nonexistent", "--quiet"],
        timeout: 10)
      XCTAssertEqual(status, 2, "\(value): \(output)")
      XCTAssertTrue(output.contains("--capacity: '\(value)' is not a number"), output)
    }
  }

  /// `--run-at N:COMMAND` with N above --requests would never run its command (a failover
  /// experiment without its failure): refused, exit 2, before any visit.
  func testARunAtBeyondTheLastVisitIsRefused() throws {
    let url = "http://127.0.0.1:\(try freePort())/"
    let marker = directory + "/ran"
    let (status, output) = try runLoadtest(
      [url, "--requests", "5", "--run-at", "3:touch \(marker);6:touch \(marker)", "--quiet"],
      timeout: 10)
    XCTAssertEqual(status, 2, output)
    XCTAssertTrue(output.contains("--run-at: '6:touch"), output)
    XCTAssertFalse(output.contains("visits to"), output)
    // At the last visit it runs.
    let (lastStatus, lastOutput) = try runLoadtest(
      [url, "--requests", "5", "--run-at", "5:touch \(marker)", "--quiet"], timeout: 10)
    XCTAssertEqual(lastStatus, 3, lastOutput)
    XCTAssertTrue(lastOutput.contains("ran: touch"), lastOutput)
  }

  /// loadtest ignores SIGPIPE, but a `--run-at` command is started as a shell would start it:
  /// with SIGPIPE's default disposition (an ignored one is inherited across exec and no shell can
  /// undo it, so `yes | head` and the like behave otherwise). The command reads its own
  /// disposition, and that of a program it runs, from /proc.
  func testARunAtCommandDoesNotInheritAnIgnoredSIGPIPE() throws {
    let url = "http://127.0.0.1:\(try freePort())/"
    let shell = directory + "/shell-status"
    let child = directory + "/child-status"
    // `$$` is the shell; grep reads its own status. (No `;`: it separates --run-at commands.)
    let command =
      "cat /proc/$$/status > \(shell).tmp && mv \(shell).tmp \(shell)"
      + " && grep SigIgn /proc/self/status > \(child).tmp && mv \(child).tmp \(child)"
    let (status, output) = try runLoadtest(
      [url, "--requests", "1", "--run-at", "1:\(command)", "--quiet"], timeout: 10)
    XCTAssertEqual(status, 3, output)
    XCTAssertTrue(output.contains("ran: cat /proc/"), output)
    let deadline = Date(timeIntervalSinceNow: 5)
    while !FileManager.default.fileExists(atPath: child) && Date() < deadline {
      Thread.sleep(forTimeInterval: 0.02)
    }
    for path in [shell, child] {
      let text = try String(contentsOfFile: path, encoding: .utf8)
      guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("SigIgn:") }),
        let ignored = UInt64(
          line.dropFirst("SigIgn:".count).trimmingCharacters(in: .whitespaces), radix: 16)
      else { return XCTFail("no SigIgn line in \(path): \(text)") }
      XCTAssertEqual(
        ignored & (1 << (UInt64(SIGPIPE) - 1)), 0, "SIGPIPE ignored in \(path): \(line)")
    }
  }

  /// An output file that cannot be written (its directory is missing, or it is a directory) is
  /// refused before any visit, exit 2 with the reason in one line, rather than reported after the
  /// whole run with exit 0 and the results lost.
  func testAnUnwritableOutputIsRefusedBeforeTheRun() throws {
    let url = "http://127.0.0.1:\(try freePort())/"
    let missing = directory + "/missing/out"
    for arguments in [
      [url, "--json", missing + ".json"], [url, "--csv", missing + ".csv"],
      [url, "--chart", missing + ".svg"], [url, "--timeline-chart", directory],
      // An empty name (found by helper-39's audit: the run went ahead, then exit 2).
      [url, "--csv", ""], ["scale", "--json", "", "--balancer-binary", "/nonexistent"],
      ["scale", "--json", missing + ".json", "--balancer-binary", "/nonexistent"],
      ["scale", "--chart", missing + ".svg", "--balancer-binary", "/nonexistent"],
      ["scale", "--throughput-chart", missing + ".svg", "--balancer-binary", "/nonexistent"],
      ["policies", "--json", missing + ".json", "--balancer-binary", "/nonexistent"],
      ["policies", "--chart-prefix", missing, "--balancer-binary", "/nonexistent"],
    ] {
      let (status, output) = try runLoadtest(
        arguments + ["--requests", "2", "--quiet"], timeout: 10)
      XCTAssertEqual(status, 2, "\(arguments): \(output)")
      XCTAssertTrue(output.hasPrefix("loadtest"), "\(arguments): \(output)")
      XCTAssertTrue(output.contains(": cannot write "), "\(arguments): \(output)")
      XCTAssertFalse(output.contains("visits to"), "\(arguments) ran: \(output)")
      XCTAssertEqual(output.split(separator: "\n").count, 1, "\(arguments): \(output)")
    }
    // A writable one is written, of course.
    let json = directory + "/out.json"
    let (status, output) = try runLoadtest([url, "--requests", "2", "--quiet", "--json", json])
    XCTAssertEqual(status, 3, output)
    XCTAssertTrue(FileManager.default.fileExists(atPath: json), output)
  }

  /// `loadtest scale` writes no file per visit: `--csv` is refused (exit 2) rather than accepted
  /// and never written, as `loadtest policies` refuses it.
  func testScaleRefusesCSV() throws {
    let csv = directory + "/scale.csv"
    for command in ["scale", "policies"] {
      let (status, output) = try runLoadtest(
        [command, "--csv", csv, "--balancer-binary", "/nonexistent", "--quiet"], timeout: 10)
      XCTAssertEqual(status, 2, "\(command): \(output)")
      XCTAssertTrue(output.contains("unknown option --csv"), "\(command): \(output)")
    }
  }
}

/// The routing policies with real processes: each redirects at once, servers take jobs
/// concurrently, and the client's job size reaches the server.
final class PolicyEndToEndTests: SystemTestCase {
  func testEveryPolicyServesAMixOfJobSizes() throws {
    for policy in ["round-robin", "random", "least-connections", "consistent-hash", "queue"] {
      serverPorts = try freePorts(3)
      try writeConfig(serverPorts)
      try startBalancer(["--policy", policy, "--server-workers", "2", "--quiet"])
      try eventually("\(policy): servers up", timeout: 15) {
        let states = try serverStates()
        return states.count == 3 && Set(states.values) == ["free"]
      }
      let json = directory + "/\(policy).json"
      let process = try ManagedProcess(
        "loadtest",
        [
          balancerURL, "--requests", "150", "--concurrency", "12", "--mix", "10:8,500:2", "--json",
          json, "--quiet",
        ])
      processes.append(process)
      XCTAssertEqual(process.waitForExit(timeout: 60), 0, "\(policy): \(process.output)")
      let summary =
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json)))
        as! [String: Any]
      // Every answer was the factorial of the n the client asked for (else: wrong_body).
      XCTAssertEqual(summary["succeeded"] as? Int, 150, "\(policy)")
      let perServer = summary["jobs_per_server"] as! [String: Int]
      if policy == "round-robin" {
        XCTAssertEqual(perServer.values.sorted(), [50, 50, 50])
      }
      if policy == "consistent-hash" {
        XCTAssertEqual(perServer.count, 1, "one client address maps to one server")
      }
      try eventually("\(policy): every job reported", timeout: 10) {
        (try status()["totals"] as! [String: Int])["in_flight"] == 0
      }
      balancer.stop()
    }
  }
}
