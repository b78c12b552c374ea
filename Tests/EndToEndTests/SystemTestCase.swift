import Documents
import Factorial
import Foundation
import HTTPCore
import TestSupport
import XCTest

/// A test case that runs the real programs on real sockets: a balancer and factorial servers
/// started as processes on free ports, in a scratch directory, and stopped whatever the outcome.
class SystemTestCase: XCTestCase {
  var processes: [ManagedProcess] = []
  var directory = ""
  var balancer: ManagedProcess!
  var balancerPort = 0
  var serverPorts: [Int] = []
  /// The running server process of each port.
  var servers: [Int: ManagedProcess] = [:]

  override func setUpWithError() throws {
    directory = NSTemporaryDirectory() + "lb-e2e-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  }

  override func tearDown() {
    for process in processes { process.stop() }
    processes.removeAll()
    servers.removeAll()
    try? FileManager.default.removeItem(atPath: directory)
  }

  var configPath: String { directory + "/servers.json" }

  func writeConfig(_ ports: [Int]) throws {
    let json = "{\"available_servers\": [\(ports.map(String.init).joined(separator: ", "))]}"
    try writeConfig(json)
  }

  func writeConfig(_ json: String) throws {
    // Write then rename, as an editor would, so the balancer never reads half a file.
    let temporary = configPath + ".tmp"
    try json.write(toFile: temporary, atomically: false, encoding: .utf8)
    _ = rename(temporary, configPath)
  }

  /// Starts the balancer with `count` servers (ports as numbers in servers.json) and the servers,
  /// each its own process as in the original deployment (`--no-spawn`).
  func startSystem(servers count: Int, balancerArguments: [String] = []) throws {
    serverPorts = try freePorts(count)
    try writeConfig(serverPorts)
    try startBalancer(["--no-spawn"] + balancerArguments)
    for port in serverPorts { try startServer(port) }
  }

  func startBalancer(_ arguments: [String] = []) throws {
    // A free port that is none of the servers': with `--port 0` the kernel may hand the balancer
    // a server's port, free again since it was chosen, and the balancer refuses to start
    // ("is the balancer's own address"); seen once in CI.
    var port = try freePort()
    while serverPorts.contains(port) { port = try freePort() }
    balancer = try ManagedProcess(
      "balancer", ["--port", "\(port)"] + arguments, directory: directory)
    processes.append(balancer)
    // Its children print to the same output: read the balancer's own line.
    try balancer.waitForOutput("[balancer] listening on port ")
    let line = balancer.output.components(separatedBy: "[balancer] listening on port ")[1]
    balancerPort = Int(line.prefix { $0.isNumber })!
  }

  func startServer(_ port: Int) throws {
    let server = try ManagedProcess(
      "factorial-server", ["--port", "\(port)", "--balancer", "127.0.0.1:\(balancerPort)"])
    processes.append(server)
    servers[port] = server
    try server.waitForOutput("listening on port \(port)")
  }

  /// kill -9, as a crash would.
  func crashServer(_ port: Int) {
    servers[port]?.signal(SIGKILL)
    _ = servers[port]?.waitForExit(timeout: 5)
  }

  var balancerURL: String { "http://127.0.0.1:\(balancerPort)/" }

  func get(_ path: String) throws -> HTTPClientResponse {
    try TestClient(port: balancerPort).get(path)
  }

  /// The balancer's /health, decoded; at `host`, one of its addresses, if given.
  func health(at host: String? = nil) throws -> BalancerHealth {
    let response =
      try host.map { try TestClient(host: $0, port: balancerPort).get("/health") }
      ?? get("/health")
    do {
      return try BalancerHealth.decode(response.body)
    } catch {
      throw TestFailure(
        "/health\(host.map { " on \($0)" } ?? "") answered \(response.statusCode): "
          + response.text)
    }
  }

  /// The balancer's /status, decoded.
  func status() throws -> [String: Any] {
    let response = try get("/status")
    guard
      let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
    else { throw TestFailure("/status answered \(response.statusCode): \(response.text)") }
    return object
  }

  /// The state of each server in /status, by its name.
  func serverStates() throws -> [String: String] {
    let servers = try status()["servers"] as! [[String: Any]]
    return Dictionary(
      uniqueKeysWithValues: servers.map { ($0["server"] as! String, $0["state"] as! String) })
  }

  /// Polls until `condition` holds, failing the test after `timeout` seconds.
  func eventually(
    _ what: String, timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line,
    _ condition: () throws -> Bool
  ) rethrows {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while Date() < deadline {
      if try condition() { return }
      Thread.sleep(forTimeInterval: 0.02)
    }
    XCTFail("timed out waiting for \(what)", file: file, line: line)
  }

  /// Polls /health until it shows `free` free servers and `waiting` waiting clients (either
  /// left out: any number).
  func waitForHealth(
    free: Int? = nil, waiting: Int? = nil, timeout: Double = 10, file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    var last: BalancerHealth?
    try eventually(
      "health free \(free.map(String.init) ?? "any"), waiting \(waiting.map(String.init) ?? "any")",
      timeout: timeout, file: file, line: line
    ) {
      let current = try health()
      last = current
      return (free == nil || current.free == free) && (waiting == nil || current.waiting == waiting)
    }
    if let last, (free != nil && last.free != free) || (waiting != nil && last.waiting != waiting) {
      XCTFail("last health: \(last)", file: file, line: line)
    }
  }

  /// Checks `Factorial of N = digits` against an independent computation of N!.
  func assertCorrectFactorial(_ body: String, file: StaticString = #filePath, line: UInt = #line) {
    let parts = body.trimmingCharacters(in: .newlines).components(separatedBy: " = ")
    guard parts.count == 2, parts[0].hasPrefix("Factorial of "),
      let n = Int(parts[0].dropFirst("Factorial of ".count))
    else { return XCTFail("unexpected body: \(body.prefix(80))", file: file, line: line) }
    var expected = DecimalBigInt(1)
    if n > 1 { for factor in 2...n { expected.multiply(bySmall: UInt32(factor)) } }
    XCTAssertEqual(parts[1], expected.description, "\(n)!", file: file, line: line)
  }

  /// Reads a response on a client whose short read timeout may expire first.
  func readWithin(_ client: TestClient, seconds: Double) throws -> HTTPClientResponse {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while true {
      do {
        return try client.readResponse()
      } catch  where Date() < deadline {
        continue
      }
    }
  }
}

extension String {
  /// A redirect Location without its `?lease=…`.
  var withoutLease: String { components(separatedBy: "?lease=")[0] }
}
