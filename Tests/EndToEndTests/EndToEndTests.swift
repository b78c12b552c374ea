import Factorial
import Foundation
import HTTPCore
import TestSupport
import XCTest

/// The real programs on real sockets: a balancer and factorial servers started as processes on
/// free ports, in a scratch directory, and stopped whatever the outcome.
final class EndToEndTests: XCTestCase {
  private var processes: [ManagedProcess] = []
  private var directory = ""
  private var balancerPort = 0
  private var serverPorts: [Int] = []

  override func setUpWithError() throws {
    directory = NSTemporaryDirectory() + "lb-e2e-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  }

  override func tearDown() {
    for process in processes { process.stop() }
    processes.removeAll()
    try? FileManager.default.removeItem(atPath: directory)
  }

  /// Starts the balancer with `count` servers (ports as numbers in servers.json) and the servers.
  private func startSystem(servers count: Int) throws {
    serverPorts = try (0..<count).map { _ in try freePort() }
    let json = "{\"available_servers\": [\(serverPorts.map(String.init).joined(separator: ", "))]}"
    try json.write(toFile: directory + "/servers.json", atomically: true, encoding: .utf8)
    let balancer = try ManagedProcess("balancer", ["--port", "0"], directory: directory)
    processes.append(balancer)
    try balancer.waitForOutput("listening on port ")
    let line = balancer.output.components(separatedBy: "listening on port ")[1]
    balancerPort = Int(line.prefix { $0.isNumber })!
    for port in serverPorts {
      let server = try ManagedProcess(
        "factorial-server", ["--port", "\(port)", "--balancer", "127.0.0.1:\(balancerPort)"])
      processes.append(server)
      try server.waitForOutput("listening on port \(port)")
    }
  }

  private var balancerURL: String { "http://127.0.0.1:\(balancerPort)/" }

  private func health() throws -> String {
    try TestClient(port: balancerPort).get("/health").text
  }

  private func waitForHealth(_ expected: String, timeout: Double = 10) throws {
    let deadline = Date(timeIntervalSinceNow: timeout)
    var last = ""
    while Date() < deadline {
      last = try health()
      if last.contains(expected) { return }
      Thread.sleep(forTimeInterval: 0.02)
    }
    XCTFail("health never showed \(expected); last: \(last)")
  }

  /// Checks `Factorial of N = digits` against an independent computation of N!.
  private func assertCorrectFactorial(
    _ body: String, file: StaticString = #filePath, line: UInt = #line
  ) {
    let parts = body.trimmingCharacters(in: .newlines).components(separatedBy: " = ")
    guard parts.count == 2, parts[0].hasPrefix("Factorial of "),
      let n = Int(parts[0].dropFirst("Factorial of ".count))
    else { return XCTFail("unexpected body: \(body.prefix(80))", file: file, line: line) }
    var expected = DecimalBigInt(1)
    if n > 1 { for factor in 2...n { expected.multiply(bySmall: UInt32(factor)) } }
    XCTAssertEqual(parts[1], expected.description, "\(n)!", file: file, line: line)
  }

  func testFollowingTheRedirectGivesAnExactFactorialAndTheServerComesBack() throws {
    try startSystem(servers: 2)
    for round in 0..<6 {
      let (response, urls) = try TestClient.follow(balancerURL)
      XCTAssertEqual(response.statusCode, 200)
      XCTAssertEqual(urls.count, 2)
      // FIFO: the servers take turns, each back at the end of the queue after it reports.
      XCTAssertEqual(
        urls[1], "http://127.0.0.1:\(serverPorts[round % 2])/\(serverPorts[round % 2])")
      assertCorrectFactorial(response.text)
      try waitForHealth("\"free\": 2")
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
      response.headers["Location"],
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
    try waitForHealth("\"free\": 0")
    let sixth = try TestClient(port: balancerPort, timeout: 0.5)
    try sixth.send("GET / HTTP/1.1\r\nHost: 127.0.0.1:\(balancerPort)\r\n\r\n")
    XCTAssertThrowsError(try sixth.readResponse(), "the sixth client must wait")
    try waitForHealth("\"waiting\": 1")

    // The third client follows its redirect; that server answers and reports.
    let third = try TestURL(locations[2])
    let answer = try TestClient(port: third.port).get(third.path)
    assertCorrectFactorial(answer.text)
    let sixthAnswer = try readWithin(sixth, seconds: 10)
    XCTAssertEqual(sixthAnswer.statusCode, 302)
    XCTAssertEqual(sixthAnswer.headers["Location"], locations[2])
    try waitForHealth("\"waiting\": 0")
  }

  /// The blocking test client timed out once; keep reading until `seconds` pass.
  private func readWithin(_ client: TestClient, seconds: Double) throws -> HTTPClientResponse {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while true {
      do {
        return try client.readResponse()
      } catch  where Date() < deadline {
        continue
      }
    }
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
    try waitForHealth("\"free\": 3, \"waiting\": 0")
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

    let badPort = try ManagedProcess("factorial-server", ["--port", "99999"])
    XCTAssertEqual(badPort.waitForExit(), 2)
    XCTAssertTrue(badPort.output.contains("not a port"), badPort.output)

    let help = try ManagedProcess("factorial-server", ["--help"])
    XCTAssertEqual(help.waitForExit(), 0)
    XCTAssertTrue(help.output.contains("--balancer HOST:PORT"))
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
