import Foundation
import Glibc
import HTTPCore
import TestSupport
import XCTest

/// The balancer supervising its servers, and replicas managed over HTTP, with real processes.
final class ReplicasEndToEndTests: SystemTestCase {
  private func json(_ response: HTTPClientResponse) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
  }

  private func send(_ method: String, _ path: String, _ body: String) throws -> HTTPClientResponse {
    let client = try TestClient(port: balancerPort)
    try client.send(
      "\(method) \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
    return try client.readResponse()
  }

  private func replicas() throws -> [String] {
    let message = try json(get("/rep"))["message"] as! [String: Any]
    return message["replicas"] as! [String]
  }

  private func details() throws -> [String: [String: Any]] {
    let list = try json(get("/rep"))["details"] as! [[String: Any]]
    return Dictionary(uniqueKeysWithValues: list.map { ($0["name"] as! String, $0) })
  }

  /// The process id the balancer logged for the server on `port`.
  private func pid(of port: Int) -> Int32? {
    let lines = balancer.output.components(separatedBy: "\n").filter {
      $0.contains("] \(port): started process ")
    }
    return lines.last.flatMap { Int32($0.components(separatedBy: "started process ")[1]) }
  }

  private func isAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

  /// Whether `pid` runs: alive and not a zombie (an orphan that exited waits for whoever adopted
  /// it to reap it).
  private func isRunning(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return false }
    return !stat[close...].hasPrefix(") Z")
  }

  /// A burst of visits through the balancer; every one must end with a factorial. A client sent
  /// to a server that was killed a moment before goes back to the balancer once, as a person
  /// pressing reload would.
  private func burst(_ count: Int, file: StaticString = #filePath, line: UInt = #line) {
    let lock = NSLock()
    var failures: [String] = []
    DispatchQueue.concurrentPerform(iterations: count) { _ in
      var lastError: Error?
      for _ in 0..<2 {
        do {
          let (response, _) = try TestClient.follow(self.balancerURL)
          guard response.statusCode == 200, response.text.hasPrefix("Factorial of ") else {
            throw TestFailure("\(response.statusCode): \(response.text.prefix(60))")
          }
          return
        } catch {
          lastError = error
        }
      }
      lock.withLock { failures.append("\(lastError!)") }
    }
    XCTAssertEqual(failures, [], file: file, line: line)
  }

  private func waitUntilEveryServerIsFree(timeout: Double = 15) throws {
    try eventually("every server to be free", timeout: timeout) {
      let states = try serverStates()
      return !states.isEmpty && Set(states.values) == ["free"]
    }
  }

  /// Starts the balancer alone; it starts the servers.
  private func startSupervised(servers count: Int, arguments: [String] = []) throws {
    serverPorts = try freePorts(count)
    try writeConfig(serverPorts)
    try startBalancer(arguments)
    try waitUntilEveryServerIsFree()
  }

  func testTheBalancerStartsRestartsAndStopsItsServers() throws {
    try startSupervised(servers: 3)
    XCTAssertEqual(try replicas(), serverPorts.map(String.init))
    burst(12)

    // kill -9: the server is restarted and serves again; a burst meanwhile is all served.
    let victim = serverPorts[1]
    let first = try XCTUnwrap(pid(of: victim))
    XCTAssertEqual(kill(first, SIGKILL), 0)
    burst(12)
    try eventually("the restart", timeout: 10) {
      (try details()["\(victim)"]?["restarts"] as? Int) == 1 && pid(of: victim) != first
    }
    try waitUntilEveryServerIsFree()
    let second = try XCTUnwrap(pid(of: victim))
    XCTAssertTrue(isAlive(second))
    XCTAssertEqual(try TestClient(port: victim).get("/heartbeat").statusCode, 200)
    burst(12)

    // Stopping the balancer stops every server it started.
    let pids = serverPorts.compactMap(pid(of:))
    XCTAssertEqual(pids.count, 3)
    balancer.signal(SIGTERM)
    XCTAssertEqual(balancer.waitForExit(timeout: 8), 0)
    Thread.sleep(forTimeInterval: 0.2)
    XCTAssertEqual(pids.filter(isAlive), [], "servers left running")
    for port in serverPorts { XCTAssertTrue(Socket.isPortFree(port), "port \(port) still taken") }
  }

  func testARestartRightAfterAKillWaitsForTheOldServersToLetGoOfTheirPorts() throws {
    // A supervisor restarts a crashed balancer at once. Its old servers notice that their parent
    // is gone within half a second and exit; until then their ports are taken, and the new
    // balancer exited 1 ("port ... is already in use") instead of waiting for them.
    try startSupervised(servers: 2)
    let old = serverPorts.compactMap(pid(of:))
    XCTAssertEqual(old.count, 2)
    balancer.signal(SIGKILL)
    _ = balancer.waitForExit(timeout: 5)
    try startBalancer()
    try waitUntilEveryServerIsFree()
    XCTAssertEqual(old.filter(isRunning), [], "the old servers still run")
    burst(6)
  }

  func testAddAndRemoveReplicasOverHTTP() throws {
    try startSupervised(servers: 2)
    let base = serverPorts.max()!
    // Two new servers: one labelled, one on the next free port.
    let added = try send("POST", "/add", #"{"n": 2, "hostnames": ["S4"]}"#)
    XCTAssertEqual(added.statusCode, 200, added.text)
    let names = try replicas()
    XCTAssertEqual(names.count, 4)
    XCTAssertEqual(Array(names.prefix(3)), serverPorts.map(String.init) + ["S4"])
    let onDisk = try String(contentsOfFile: configPath, encoding: .utf8)
    XCTAssertTrue(onDisk.contains(#"{"name": "S4", "port": "#), onDisk)
    let file = try JSONSerialization.jsonObject(with: Data(onDisk.utf8)) as! [String: Any]
    XCTAssertEqual((file["available_servers"] as! [Any]).count, 4)
    try waitUntilEveryServerIsFree()
    let s4Port = Int(try XCTUnwrap(try details()["S4"]?["server"] as? String))!
    XCTAssertGreaterThan(s4Port, base)
    burst(16)
    XCTAssertGreaterThan(try details()["S4"]?["leases"] as? Int ?? 0, 0, "S4 never served")

    // Errors change nothing.
    let bad = try send("POST", "/add", #"{"n": 1, "hostnames": ["S4"]}"#)
    XCTAssertEqual(bad.statusCode, 400)
    XCTAssertEqual(try json(bad)["status"] as? String, "failure")
    XCTAssertEqual(try send("POST", "/add", "nonsense").statusCode, 400)
    XCTAssertEqual(try send("DELETE", "/rm", #"{"n": 9}"#).statusCode, 400)
    XCTAssertEqual(try replicas().count, 4)

    // Remove S4 and one of the balancer's choosing: their processes stop, the file follows.
    let s4Pid = try XCTUnwrap(pid(of: s4Port))
    let removed = try send("DELETE", "/rm", #"{"n": 2, "hostnames": ["S4"]}"#)
    XCTAssertEqual(removed.statusCode, 200, removed.text)
    XCTAssertEqual(try replicas(), serverPorts.map(String.init))
    let after =
      try JSONSerialization.jsonObject(
        with: Data(contentsOf: URL(fileURLWithPath: configPath))) as! [String: Any]
    XCTAssertEqual(after["available_servers"] as? [String], serverPorts.map(String.init))
    try eventually("S4's process to stop") { !isAlive(s4Pid) }
    burst(8)
    XCTAssertEqual(Set(try serverStates().keys), Set(serverPorts.map(String.init)))
  }

  /// A server that dies at start is restarted with back-off (0.5 s, 1 s, 2 s …), not in a loop.
  func testAServerThatDiesAtStartDoesNotSpin() throws {
    serverPorts = [try freePort()]
    try writeConfig(serverPorts)
    try startBalancer(["--server-binary", "/bin/false"])
    Thread.sleep(forTimeInterval: 3.2)
    let restarts = try details()["\(serverPorts[0])"]?["restarts"] as? Int ?? -1
    XCTAssertTrue((2...4).contains(restarts), "restarts after 3.2 s: \(restarts)")
    XCTAssertEqual(try serverStates()["\(serverPorts[0])"], "down")
    XCTAssertEqual(try get("/health").statusCode, 200)
  }

  /// A server whose process cannot be started at all (its binary gone since the balancer
  /// started) is `down`, not `starting` for good: a start that fails is told as an exit.
  func testAServerWhoseProcessCannotStartIsDown() throws {
    let binary = directory + "/server-binary"
    try FileManager.default.copyItem(atPath: "/bin/false", toPath: binary)
    serverPorts = [try freePort()]
    try writeConfig(serverPorts)
    try startBalancer(["--server-binary", binary])
    try FileManager.default.removeItem(atPath: binary)
    let added = try send("POST", "/add", #"{"n": 1}"#)
    XCTAssertEqual(added.statusCode, 200, added.text)
    let port = try XCTUnwrap(try replicas().last)
    XCTAssertNotEqual(port, String(serverPorts[0]))
    try eventually("its failed start to show", timeout: 5) {
      self.balancer.output.contains("\(port): cannot start")
    }
    XCTAssertEqual(try serverStates()[port], "down")
  }

  func testHeartbeatAndAdminRulesOnTheWire() throws {
    try startSupervised(servers: 1, arguments: ["--admin-token", "t0ken"])
    XCTAssertEqual(try get("/heartbeat").statusCode, 200)
    // Loopback may always manage replicas, token or not.
    XCTAssertEqual(try send("POST", "/add", #"{"n": 1}"#).statusCode, 200)
    XCTAssertEqual(try send("GET", "/add", "").statusCode, 405)
  }
}
