import Foundation
import HTTPCore
import TestSupport
import XCTest

/// Leases, expiry, crashes, reloads and stopping, with the real programs.
final class PoolEndToEndTests: SystemTestCase {
  /// curl without -L: the client takes a server and never goes there. The lease expires, the
  /// idle server answers its health check, and it is back in the queue.
  func testALeaseNobodyUsesExpiresAndTheServerComesBack() throws {
    try startSystem(servers: 1, balancerArguments: ["--lease-timeout", "0.5"])
    let response = try get("/")
    XCTAssertEqual(response.statusCode, 302)
    XCTAssertEqual(try serverStates(), ["\(serverPorts[0])": "leased"])
    try eventually("the server to be free again") {
      try serverStates()["\(serverPorts[0])"] == "free"
    }
    let totals = try status()["totals"] as! [String: Int]
    XCTAssertEqual(
      totals, ["leased": 1, "reported": 0, "expired": 1, "reclaimed": 0, "in_flight": 0])
    // The stale lease cannot be reported any more.
    let token = response.headers["Location"]!.components(separatedBy: "?lease=")[1]
    XCTAssertEqual(try get("/port_update/\(serverPorts[0])?lease=\(token)").statusCode, 409)
    XCTAssertEqual(try get("/port_update/22").statusCode, 404)
  }

  /// A server killed with -9 while leased is marked down, never handed out, and comes back in
  /// the queue once it is restarted.
  func testACrashedServerIsMarkedDownAndReturnsWhenRestarted() throws {
    try startSystem(servers: 2, balancerArguments: ["--lease-timeout", "0.5"])
    let crashed = serverPorts[0]
    let survivor = serverPorts[1]
    XCTAssertEqual(
      try get("/").headers["Location"]?.withoutLease, "http://127.0.0.1:\(crashed)/\(crashed)")
    crashServer(crashed)
    try eventually("the crashed server to be down") { try serverStates()["\(crashed)"] == "down" }
    // Only the survivor is handed out meanwhile.
    for _ in 0..<3 {
      let (response, urls) = try TestClient.follow(balancerURL)
      XCTAssertEqual(response.statusCode, 200)
      XCTAssertEqual(urls[1].withoutLease, "http://127.0.0.1:\(survivor)/\(survivor)")
      try eventually("the survivor to report") { try serverStates()["\(survivor)"] == "free" }
    }
    let downSince = (try status()["servers"] as! [[String: Any]])[0]["down_since"] as? String
    XCTAssertNotNil(downSince)
    try startServer(crashed)
    try eventually("the restarted server to be free", timeout: 15) {
      try serverStates() == ["\(crashed)": "free", "\(survivor)": "free"]
    }
    XCTAssertTrue(balancer.output.contains("\(crashed): leased server does not answer: down"))
    XCTAssertTrue(balancer.output.contains("\(crashed): answers again after"))
  }

  func testEditsToServersJsonAreAppliedLiveAndBadEditsAreIgnored() throws {
    try startSystem(servers: 2)
    let added = try freePort()
    try writeConfig([serverPorts[1], added])
    try eventually("the edit to be picked up within 2 seconds", timeout: 2.5) {
      Set(try serverStates().keys) == ["\(serverPorts[1])", "\(added)"]
    }
    try startServer(added)
    for _ in 0..<4 {
      let (response, urls) = try TestClient.follow(balancerURL)
      XCTAssertEqual(response.statusCode, 200)
      XCTAssertFalse(urls[1].contains(":\(serverPorts[0])/"), "a removed server was handed out")
      try waitForHealth(free: 2)
    }

    try writeConfig("{\"available_servers\": [\"5001\", 5001]}")
    eventually("the bad edit to be logged", timeout: 2.5) {
      balancer.output.contains("config not reloaded, keeping the last good pool")
    }
    XCTAssertTrue(balancer.output.contains("is listed twice"))
    XCTAssertEqual(Set(try serverStates().keys), ["\(serverPorts[1])", "\(added)"])
    XCTAssertEqual(try TestClient.follow(balancerURL).response.statusCode, 200)
  }

  func testSighupReloadsAtOnce() throws {
    try startSystem(servers: 1)
    let added = try freePort()
    try writeConfig([serverPorts[0], added])
    balancer.signal(SIGHUP)
    try eventually("SIGHUP to reload", timeout: 0.9) { try serverStates().count == 2 }
  }

  func testSigtermAnswersWaitingClientsAndExitsCleanly() throws {
    try startSystem(servers: 1)
    XCTAssertEqual(try get("/").statusCode, 302)  // the only server is now leased
    let waiting = try TestClient(port: balancerPort, timeout: 5)
    try waiting.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try waitForHealth(waiting: 1)
    let start = Date()
    balancer.signal(SIGTERM)
    let response = try waiting.readResponse()
    XCTAssertEqual(response.statusCode, 503)
    XCTAssertNotNil(response.headers["Retry-After"])
    // The connection closes after it (RFC 9112 §9.6): the answer says so.
    XCTAssertEqual(response.headers["Connection"], "close")
    XCTAssertEqual(balancer.waitForExit(timeout: 5), 0)
    XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    XCTAssertThrowsError(try TestClient(port: balancerPort), "the port should be closed")
  }

  func testWaitTimeoutAndMaxWaiting() throws {
    try startSystem(servers: 1, balancerArguments: ["--wait-timeout", "0.5", "--max-waiting", "1"])
    XCTAssertEqual(try get("/").statusCode, 302)
    let waiting = try TestClient(port: balancerPort, timeout: 5)
    try waiting.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try waitForHealth(waiting: 1)
    XCTAssertEqual(try get("/").statusCode, 503)  // the line is full
    let start = Date()
    XCTAssertEqual(try waiting.readResponse().statusCode, 503)
    XCTAssertLessThan(Date().timeIntervalSince(start), 2)
  }

  /// Garbage, oversized and endless heads, slow trickles and truncated requests get a 4xx or a
  /// closed connection, while an ordinary client keeps being served at once.
  func testBadHTTPNeverStallsTheBalancer() throws {
    try startSystem(servers: 1)
    let attacks: [[UInt8]] = [
      Array("\u{0}\u{1}\u{2}garbage\r\n\r\n".utf8),
      Array(("GET /" + String(repeating: "a", count: 100_000) + " HTTP/1.1\r\n").utf8),
      Array(("GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-A: b\r\n", count: 5000)).utf8),
      Array("GET /port_update/abc HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
      Array("GET /port_update/99999 HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
      Array("GET /port_update/-1 HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
      Array("GET /port_update/0 HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
      Array("POST /port_update/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n".utf8),
      (0..<4096).map { _ in UInt8.random(in: 0...255) },
    ]
    var slow: [TestClient] = []
    for _ in 0..<20 {  // slowloris: heads that never finish
      let client = try TestClient(port: balancerPort)
      try client.send("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
      slow.append(client)
    }
    let truncated = try TestClient(port: balancerPort)
    try truncated.send("GET / HT")
    for attack in attacks {
      // Some attacks are only a prefix: those wait for the request timeout, so don't wait here.
      let client = try TestClient(port: balancerPort, timeout: 1)
      try? client.send(attack)
      if let response = try? client.readResponse() {
        XCTAssertTrue((400..<500).contains(response.statusCode), "\(response.statusCode)")
      }
      // Whatever happened, an ordinary request is answered at once.
      let start = Date()
      XCTAssertEqual(try get("/health").statusCode, 200)
      XCTAssertLessThan(Date().timeIntervalSince(start), 0.5)
    }
    XCTAssertTrue(balancer.process.isRunning)
    XCTAssertEqual(try TestClient.follow(balancerURL).response.statusCode, 200)
    _ = slow
  }
}
