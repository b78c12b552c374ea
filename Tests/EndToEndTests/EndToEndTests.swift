import Documents
import Factorial
import Foundation
import HTTPCore
import TestSupport
import XCTest

/// The first system, end to end: redirect, exact answer, report, waiting in line.
final class EndToEndTests: SystemTestCase {
  func testFollowingTheRedirectGivesAnExactFactorialAndTheServerComesBack() throws {
    try startSystem(servers: 2)
    for round in 0..<6 {
      let (response, urls) = try TestClient.follow(balancerURL)
      XCTAssertEqual(response.statusCode, 200)
      XCTAssertEqual(urls.count, 2)
      // FIFO: the servers take turns, each back at the end of the queue after it reports.
      XCTAssertEqual(
        urls[1].withoutLease, "http://127.0.0.1:\(serverPorts[round % 2])/\(serverPorts[round % 2])"
      )
      XCTAssertTrue(urls[1].contains("?lease="))
      assertCorrectFactorial(response.text)
      try waitForHealth(free: 2)
    }
    // ?n= on a server chooses N.
    let chosen = try TestClient(port: serverPorts[0]).get("/?n=100")
    XCTAssertEqual(
      chosen.text,
      "Factorial of 100 = \(Factorial.of(100))\n")
    XCTAssertEqual(try TestClient(port: serverPorts[0]).get("/?n=100001").statusCode, 400)
  }

  func testLocationUsesTheHostTheClientUsed() throws {
    try startSystem(servers: 1)
    let client = try TestClient(port: balancerPort)
    let response = try client.get("/", hostHeader: "balancer.example.org:\(balancerPort)")
    XCTAssertEqual(response.statusCode, 302)
    XCTAssertEqual(
      response.headers["Location"]?.withoutLease,
      "http://balancer.example.org:\(serverPorts[0])/\(serverPorts[0])")
  }

  /// Five servers busy: a sixth client waits (no answer), and is sent to the first server that
  /// reports, as soon as it reports.
  func testSixthClientWaitsForTheFirstServerToReport() throws {
    try startSystem(servers: 5)
    // Five clients take the five servers but do not follow yet: all are leased.
    var locations: [String] = []
    for _ in 0..<5 {
      let response = try TestClient(port: balancerPort).get("/")
      XCTAssertEqual(response.statusCode, 302)
      locations.append(response.headers["Location"]!)
    }
    try waitForHealth(free: 0)
    let sixth = try TestClient(port: balancerPort, timeout: 0.5)
    try sixth.send("GET / HTTP/1.1\r\nHost: 127.0.0.1:\(balancerPort)\r\n\r\n")
    XCTAssertThrowsError(try sixth.readResponse(), "the sixth client must wait")
    try waitForHealth(waiting: 1)

    // The third client follows its redirect; that server answers and reports.
    let third = try TestURL(locations[2])
    let answer = try TestClient(port: third.port).get(third.path)
    assertCorrectFactorial(answer.text)
    let sixthAnswer = try readWithin(sixth, seconds: 10)
    XCTAssertEqual(sixthAnswer.statusCode, 302)
    XCTAssertEqual(sixthAnswer.headers["Location"]?.withoutLease, locations[2].withoutLease)
    try waitForHealth(waiting: 0)
  }

  /// A balancer started with `--no-spawn` while a server still runs jobs it took before (from a
  /// balancer that was restarted, or a client that came straight to it) gives it no other: the
  /// first client waits until the server is idle, then is sent there.
  func testABalancerStartedWhileItsServerIsBusyWaitsForItToBeIdle() throws {
    let serverHealth = try startBalancerBesideABusyServer(["--no-spawn"])
    let client = try TestClient(port: balancerPort, timeout: 0.5)
    try client.send("GET / HTTP/1.1\r\nHost: 127.0.0.1:\(balancerPort)\r\n\r\n")
    XCTAssertThrowsError(try client.readResponse(), "the server is busy: the client must wait")
    XCTAssertTrue(
      try serverHealth().busy, "the server was busy all along (else the test says nothing)")
    XCTAssertEqual(try serverStates(), ["\(serverPorts[0])": "checking"])
    let answer = try readWithin(client, seconds: 60)
    XCTAssertEqual(answer.statusCode, 302)
    XCTAssertEqual(try serverHealth().jobs, 0, "sent there only once it was idle")
  }

  /// The other policies give a server several jobs at once (it queues them): a busy server is
  /// handed out at once.
  func testWithAnotherPolicyABusyServerIsHandedOutAtOnce() throws {
    let serverHealth = try startBalancerBesideABusyServer(["--no-spawn", "--policy", "round-robin"])
    let answer = try TestClient(port: balancerPort, timeout: 5).get("/")
    XCTAssertEqual(answer.statusCode, 302)
    XCTAssertTrue(try serverHealth().busy)
  }

  /// One server, busy with two long jobs straight at it (queued one behind the other), then a
  /// balancer with `arguments` that lists it. Returns a reading of the server's /health.
  private func startBalancerBesideABusyServer(_ arguments: [String]) throws -> () throws ->
    ServerHealth
  {
    let port = try freePorts(1)[0]
    serverPorts = [port]
    try writeConfig(serverPorts)
    let server = try ManagedProcess(
      "factorial-server", ["--port", "\(port)", "--balancer", "127.0.0.1:9"])
    processes.append(server)
    servers[port] = server
    try server.waitForOutput("listening on port \(port)")
    for _ in 0..<2 {
      DispatchQueue.global().async {
        _ = try? TestClient(port: port, timeout: 120).get("/?n=100000")
      }
    }
    let serverHealth = { try ServerHealth.decode(TestClient(port: port).get("/health").body) }
    try eventually("the server busy with both jobs") { try serverHealth().jobs == 2 }
    try startBalancer(arguments)
    return serverHealth
  }

  func testManyConcurrentClientsAreAllServed() throws {
    try startSystem(servers: 3)
    let failures = NSLock()
    var problems: [String] = []
    DispatchQueue.concurrentPerform(iterations: 24) { index in
      do {
        let (response, _) = try TestClient.follow(self.balancerURL)
        if response.statusCode != 200 || !response.text.hasPrefix("Factorial of ") {
          throw TestFailure("status \(response.statusCode): \(response.text.prefix(60))")
        }
      } catch {
        failures.lock()
        problems.append("client \(index): \(error)")
        failures.unlock()
      }
    }
    XCTAssertEqual(problems, [])
    try waitForHealth(free: 3, waiting: 0)
  }

  func testBadFlagsAndBadConfigExitWithOneLine() throws {
    let badFlag = try ManagedProcess("balancer", ["--bogus"], directory: directory)
    XCTAssertEqual(badFlag.waitForExit(), 2)
    XCTAssertTrue(badFlag.output.contains("unknown option --bogus"), badFlag.output)

    try "{\"available_servers\": []}".write(
      toFile: directory + "/servers.json", atomically: true, encoding: .utf8)
    let badConfig = try ManagedProcess("balancer", ["--port", "0"], directory: directory)
    XCTAssertEqual(badConfig.waitForExit(), 2)
    XCTAssertEqual(
      badConfig.output, "balancer: servers.json: \"available_servers\" is empty\n")

    // A directory is executable (searchable), but no program to start.
    try writeConfig([47101])
    for binary in ["/tmp", directory + "/nothing-here"] {
      let badBinary = try ManagedProcess(
        "balancer", ["--port", "0", "--server-binary", binary], directory: directory)
      XCTAssertEqual(badBinary.waitForExit(timeout: 10), 2, binary)
      XCTAssertEqual(
        badBinary.output,
        "balancer: cannot run \(binary) (use --server-binary PATH, or --no-spawn)\n")
    }

    let badPort = try ManagedProcess("factorial-server", ["--port", "99999"])
    XCTAssertEqual(badPort.waitForExit(), 2)
    XCTAssertTrue(badPort.output.contains("not a port"), badPort.output)

    let help = try ManagedProcess("factorial-server", ["--help"])
    XCTAssertEqual(help.waitForExit(), 0)
    XCTAssertTrue(help.output.contains("--balancer HOST:PORT"))
  }

  /// `--check-config` says yes only to a file the balancer would start with.
  func testCheckConfigRefusesWhatAStartRefuses() throws {
    func check(_ json: String, _ extra: [String] = []) throws -> (Int32?, String) {
      try writeConfig(json)
      let process = try ManagedProcess(
        "balancer", ["--check-config"] + extra, directory: directory)
      // Generous: a name is looked up, and a machine without a resolver may take its time.
      return (process.waitForExit(timeout: 60), process.output)
    }
    XCTAssertEqual(try check("{\"available_servers\": [\"47101\", \"10.0.0.7:5003\"]}").0, 0)
    XCTAssertEqual(try check("{\"available_servers\": [\"47101\", 47102]}").1, "47101\n47102\n")
    for (json, extra, message) in [
      ("[\"47101\", \"localhost:47101\"]", [], "the same server"),
      ("[\"47101\"]", ["--port", "47101"], "balancer's own address"),
      ("[\"no-such-host.invalid:47101\"]", [], "does not resolve"),
      ("[47101.0]", [], "entry 1 (47101.0) is not a port"),
    ] {
      let (code, output) = try check("{\"available_servers\": \(json)}", extra)
      XCTAssertEqual(code, 2, json)
      XCTAssertTrue(output.contains(message), output)
    }
  }

  /// A program told its parent's PID exits once that parent is gone, even if the parent died
  /// before the program could read its own: a balancer killed in the first milliseconds left
  /// its servers running for good (found by helper-39's audit), and a restart then refused
  /// their ports.
  func testAProgramWhoseParentExitedBeforeItStartedExits() throws {
    let gone = Process()
    gone.executableURL = URL(fileURLWithPath: "/bin/true")
    try gone.run()
    gone.waitUntilExit()
    let parent = gone.processIdentifier
    let server = try ManagedProcess(
      "factorial-server", ["--port", "\(try freePort())", "--parent-pid", "\(parent)", "--quiet"])
    XCTAssertEqual(server.waitForExit(timeout: 5), 0, server.output)
    try writeConfig([try freePort()])
    let balancer = try ManagedProcess(
      "balancer", ["--port", "0", "--no-spawn", "--parent-pid", "\(parent)"], directory: directory)
    XCTAssertEqual(balancer.waitForExit(timeout: 5), 0, balancer.output)
    XCTAssertTrue(
      balancer.output.contains("the process that started this one exited"), balancer.output)
    let bad = try ManagedProcess("factorial-server", ["--parent-pid", "0"])
    XCTAssertEqual(bad.waitForExit(), 2)
    XCTAssertTrue(bad.output.contains("--parent-pid: '0' is not a whole number"), bad.output)
  }

  /// A SIGHUP (a reload) that comes while the balancer waits for its servers' ports, before it
  /// has read servers.json for good, is harmless: it killed the balancer (found by helper-39's
  /// audit), as SIGHUP's default action does.
  func testASighupWhileTheBalancerStartsIsHarmless() throws {
    let taken = try Socket.listen(host: "0.0.0.0", port: 0)
    var open = true
    defer { if open { close(taken) } }
    try writeConfig([Socket.localPort(taken)])
    let balancer = try ManagedProcess(
      "balancer", ["--port", "\(try freePort())", "--quiet"], directory: directory)
    processes.append(balancer)
    Thread.sleep(forTimeInterval: 0.5)  // in the wait for the server's port (up to 2 s)
    balancer.signal(SIGHUP)
    Thread.sleep(forTimeInterval: 0.3)
    close(taken)
    open = false
    try balancer.waitForOutput("listening on port")
    balancer.signal(SIGHUP)  // and once it runs, a reload as ever
    balancer.signal(SIGTERM)
    XCTAssertEqual(balancer.waitForExit(), 0, balancer.output)
  }

  func testAPortInUseIsReportedByNumber() throws {
    let taken = try Socket.listen(host: "0.0.0.0", port: 0)
    defer { close(taken) }
    let port = Socket.localPort(taken)
    let server = try ManagedProcess("factorial-server", ["--port", "\(port)"])
    XCTAssertEqual(server.waitForExit(), 1)
    XCTAssertTrue(server.output.contains("port \(port) is already in use"), server.output)
  }
}

/// A balancer listening on one address, not all: the servers it starts must reach it there.
final class BindAddressEndToEndTests: SystemTestCase {
  /// Skips a test on a machine whose loopback has no IPv6 address.
  private func requireIPv6Loopback() throws {
    guard let probe = try? Socket.listen(host: "::1", port: 0) else {
      throw XCTSkip("no IPv6 loopback (::1) on this machine")
    }
    close(probe)
  }

  /// Starts a balancer on `bind` that starts one server itself, and waits until that server is
  /// free (asking the balancer at `host`).
  private func startOnAddress(_ bind: String, host: String) throws -> Int {
    serverPorts = try freePorts(1)
    try writeConfig(serverPorts)
    // A lease timeout far past the test's waits: only the report can free the server in time.
    try startBalancer(["--bind", bind, "--lease-timeout", "120", "--quiet"])
    try eventually("the started server is free") { try self.health(at: host).free == 1 }
    return serverPorts[0]
  }

  /// One job through the balancer at `host` (written `urlHost` in URLs), by hand as curl -L
  /// does it; returns the factorial server's answer.
  private func job(host: String, urlHost: String) throws -> HTTPClientResponse {
    let redirect = try TestClient(host: host, port: balancerPort).get(
      "/?n=20", hostHeader: "\(urlHost):\(balancerPort)")
    XCTAssertEqual(redirect.statusCode, 302)
    let location = try XCTUnwrap(redirect.headers["Location"])
    let prefix = "http://\(urlHost):\(serverPorts[0])"
    XCTAssertTrue(location.hasPrefix(prefix + "/"), location)
    return try TestClient(host: host, port: serverPorts[0]).get(
      String(location.dropFirst(prefix.count)), hostHeader: "\(urlHost):\(serverPorts[0])")
  }

  func testServersItStartsReportToTheIPv4AddressItListensOn() throws {
    _ = try startOnAddress("127.0.0.2", host: "127.0.0.2")
    for _ in 0..<2 {
      let answer = try job(host: "127.0.0.2", urlHost: "127.0.0.2")
      XCTAssertEqual(answer.text, "Factorial of 20 = 2432902008176640000\n")
      // The report reached the balancer: the server is free again long before any timeout.
      try eventually("the report frees the server", timeout: 5) {
        try self.health(at: "127.0.0.2").free == 1
      }
    }
  }

  /// A server listed by its IPv6 address is probed, served and reports: every client of ours
  /// writes such an address in brackets in its Host field, as a server's parser requires.
  func testAServerListedByItsIPv6AddressIsProbedAndServed() throws {
    try requireIPv6Loopback()
    serverPorts = try freePorts(1)
    try writeConfig("{\"available_servers\": [\"[::1]:\(serverPorts[0])\"]}")
    try startBalancer(["--no-spawn", "--lease-timeout", "120", "--heartbeat-interval", "0.2"])
    let server = try ManagedProcess(
      "factorial-server",
      ["--port", "\(serverPorts[0])", "--bind", "::", "--balancer", "127.0.0.1:\(balancerPort)"])
    processes.append(server)
    try server.waitForOutput("listening on port \(serverPorts[0])")
    try waitForHealth(free: 1)
    let redirect = try get("/?n=20")
    let location = try XCTUnwrap(redirect.headers["Location"])
    let prefix = "http://[::1]:\(serverPorts[0])"
    XCTAssertTrue(location.hasPrefix(prefix + "/"), location)
    let answer = try TestClient(host: "::1", port: serverPorts[0]).get(
      String(location.dropFirst(prefix.count)))
    XCTAssertEqual(answer.text, "Factorial of 20 = 2432902008176640000\n")
    try waitForHealth(free: 1, timeout: 5)
    // Heartbeats went on meanwhile: still up.
    Thread.sleep(forTimeInterval: 0.6)
    XCTAssertEqual(try serverStates()["[::1]:\(serverPorts[0])"], "free")
  }

  func testServersItStartsAnswerAndReportOverIPv6WhenItListensOnIPv6() throws {
    try requireIPv6Loopback()
    _ = try startOnAddress("::1", host: "::1")
    let answer = try job(host: "::1", urlHost: "[::1]")
    XCTAssertEqual(answer.text, "Factorial of 20 = 2432902008176640000\n")
    try eventually("the report frees the server", timeout: 5) {
      try self.health(at: "::1").free == 1
    }
  }

  /// `--bind` a host name that resolves to `::1` only (`ip6-localhost`): the balancer listens on
  /// IPv6, so the servers it starts must too, or a redirect naming `[::1]` reaches nobody. The
  /// name is given its address in a private /etc/hosts (a mount namespace of the balancer's
  /// own, which its servers inherit), whatever the machine's file says.
  func testServersItStartsListenOnIPv6WhenItsBindNameResolvesToIPv6() throws {
    try requireIPv6Loopback()
    let hosts = directory + "/hosts"
    try "127.0.0.1 localhost\n::1 ip6-localhost\n".write(
      toFile: hosts, atomically: true, encoding: .utf8)
    // unshare then sh exec in turn, so the process the test stops is the balancer itself.
    let wrapper = ["--mount", "sh", "-c", "mount --bind \"$0\" /etc/hosts && exec \"$@\"", hosts]
    let check = try ManagedProcess(
      "/usr/bin/unshare", wrapper + ["getent", "ahosts", "ip6-localhost"])
    guard check.waitForExit() == 0, check.output.hasPrefix("::1 ") else {
      throw XCTSkip("cannot give ip6-localhost a private address here: \(check.output)")
    }
    serverPorts = try freePorts(1)
    try writeConfig(serverPorts)
    var port = try freePort()
    while serverPorts.contains(port) { port = try freePort() }
    let binary = ManagedProcess.productsDirectory.appendingPathComponent("balancer").path
    balancer = try ManagedProcess(
      "/usr/bin/unshare",
      wrapper + [
        binary, "--port", "\(port)", "--bind", "ip6-localhost", "--lease-timeout", "120",
        "--quiet",
      ], directory: directory)
    processes.append(balancer)
    try balancer.waitForOutput("[balancer] listening on port \(port)")
    balancerPort = port
    try eventually("the started server is free") { try self.health(at: "::1").free == 1 }
    let answer = try job(host: "::1", urlHost: "[::1]")
    XCTAssertEqual(answer.text, "Factorial of 20 = 2432902008176640000\n")
    try eventually("the report frees the server", timeout: 5) {
      try self.health(at: "::1").free == 1
    }
  }
}
