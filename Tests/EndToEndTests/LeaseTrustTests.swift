import Foundation
import Glibc
import HTTPCore
import TestSupport
import XCTest

/// Leases no one can forge, steal or squat: each way a new user broke the promise (a server is
/// never lost, double-booked or leaked), tried on real processes.
final class LeaseTrustTests: SystemTestCase {
  /// Sends `GET path` to the balancer from a chosen source address (127.0.0.2 is this machine
  /// too, but not the address a local server reports from).
  private func get(_ path: String, from source: String) throws -> HTTPClientResponse {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var local = sockaddr_in()
    local.sin_family = sa_family_t(AF_INET)
    inet_pton(AF_INET, source, &local.sin_addr)
    var remote = sockaddr_in()
    remote.sin_family = sa_family_t(AF_INET)
    remote.sin_port = in_port_t(UInt16(balancerPort).bigEndian)
    inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let bound = withUnsafePointer(to: &local) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard bound == 0 else { throw TestFailure("cannot bind \(source)") }
    let connected = withUnsafePointer(to: &remote) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard connected == 0 else { throw TestFailure("cannot connect from \(source)") }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if count <= 0 { break }
      bytes += chunk[0..<count]
    }
    var parser = HTTPResponseParser()
    guard case .complete(let response, _) = bytes.withUnsafeBytes({ parser.parse($0) }) else {
      throw TestFailure("no response from the balancer")
    }
    return response
  }

  /// The lease token and server port of a redirect.
  private func lease(_ response: HTTPClientResponse) throws -> (port: Int, token: String) {
    let location = try XCTUnwrap(response.headers["Location"], "\(response.statusCode)")
    let port = Int(location.components(separatedBy: ":").last!.prefix { $0.isNumber })!
    return (port, location.components(separatedBy: "lease=").last!)
  }

  private func totals() throws -> [String: Int] { try status()["totals"] as! [String: Int] }

  private func refusals() throws -> [String: Int] {
    try status()["refused_reports"] as? [String: Int] ?? [:]
  }

  /// One job through the balancer, so that the server has reported with a lease once.
  private func oneJob() throws {
    let (response, _) = try TestClient.follow(balancerURL)
    XCTAssertEqual(response.statusCode, 200)
    try eventually("the job's report") { try totals()["in_flight"] == 0 }
  }

  /// `curl host:8001/port_update/5001` (no token) from any client frees nothing.
  func testAReportWithoutALeaseCannotFreeALeasedServer() throws {
    try startSystem(servers: 1)
    try oneJob()
    let held = try lease(try get("/"))
    // From the server's own machine: it reports with leases, so one without is not its own.
    let local = try get("/port_update/\(held.port)")
    XCTAssertEqual(local.statusCode, 409, local.text)
    // From another address: refused whatever the server is.
    let foreign = try get("/port_update/\(held.port)", from: "127.0.0.2")
    XCTAssertEqual(foreign.statusCode, 403, foreign.text)
    XCTAssertEqual(try serverStates()["\(held.port)"], "leased")
    XCTAssertEqual(try refusals(), ["lease_required": 1, "foreign_source": 1])
    XCTAssertEqual(try health().free, 0, "the busy server was not handed out again")
    XCTAssertEqual(try get("/port_update/\(held.port)?lease=\(held.token)").statusCode, 200)
  }

  /// Visiting a server directly (the README's own example) sends no report.
  func testAVisitWithoutALeaseSendsNoReport() throws {
    try startSystem(servers: 1)
    let held = try lease(try get("/"))
    let direct = try TestClient(port: held.port).get("/\(held.port)?n=20")
    XCTAssertEqual(direct.statusCode, 200)
    XCTAssertTrue(direct.text.hasPrefix("Factorial of 20 = 2432902008176640000"))
    Thread.sleep(forTimeInterval: 0.5)
    XCTAssertEqual(try serverStates()["\(held.port)"], "leased")
    XCTAssertEqual(try totals()["reported"], 0)
    XCTAssertEqual(try refusals(), [:], "no report was even sent")
  }

  /// Aliases of one server, and the balancer's own address, are refused at start.
  func testAliasesOfOneServerAndTheBalancersOwnPortAreRefused() throws {
    let port = try freePort()
    for entries in [
      "\"\(port)\", \"localhost:\(port)\"", "\"127.0.0.1:\(port)\", \"[::1]:\(port)\"",
      "\(port), \"0.0.0.0:\(port)\"",
    ] {
      try writeConfig("{\"available_servers\": [\(entries)]}")
      let refused = try ManagedProcess(
        "balancer", ["--port", "0", "--no-spawn"], directory: directory)
      XCTAssertEqual(refused.waitForExit(), 2, entries)
      XCTAssertTrue(refused.output.contains("are the same server"), refused.output)
    }
    try writeConfig("{\"available_servers\": [\"\(port)\"]}")
    let itself = try ManagedProcess(
      "balancer", ["--port", "\(port)", "--no-spawn"], directory: directory)
    XCTAssertEqual(itself.waitForExit(), 2)
    XCTAssertTrue(itself.output.contains("is the balancer's own address"), itself.output)
  }

  /// A live reload or /add that would alias a server changes nothing; while such an edit of
  /// servers.json is pending, /add is refused (409) rather than rewrite the file over it.
  func testAliasesAreRefusedByReloadAndAdd() throws {
    try startSystem(servers: 2)
    let first = serverPorts[0]
    try writeConfig(
      "{\"available_servers\": [\"\(first)\", \"\(serverPorts[1])\", \"localhost:\(first)\"]}")
    try balancer.waitForOutput("same server")
    XCTAssertEqual(try health().servers, 2)
    let client = try TestClient(port: balancerPort)
    let body = "{\"n\": 1, \"hostnames\": [\"127.0.0.1:\(serverPorts[1])\"]}"
    let add = "POST /add HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    try client.send(add)
    let pending = try client.readResponse()
    XCTAssertEqual(pending.statusCode, 409, pending.text)
    XCTAssertTrue(pending.text.contains("could not be loaded"), pending.text)
    XCTAssertTrue(pending.text.contains("same server"), pending.text)
    XCTAssertEqual(try health().servers, 2)

    try writeConfig("{\"available_servers\": [\"\(first)\", \"\(serverPorts[1])\"]}")
    try client.send(add)
    let added = try client.readResponse()
    XCTAssertEqual(added.statusCode, 400)
    XCTAssertTrue(added.text.contains("same server"), added.text)
    XCTAssertEqual(try health().servers, 2)
  }

  /// Two servers on one port at different addresses: each report ends its own server's lease.
  func testReportsAreMatchedByLeaseNotByPort() throws {
    let port = try freePort()
    try writeConfig("{\"available_servers\": [\"127.0.0.1:\(port)\", \"127.0.0.2:\(port)\"]}")
    try startBalancer(["--no-spawn"])
    for address in ["127.0.0.1", "127.0.0.2"] {
      let server = try ManagedProcess(
        "factorial-server",
        ["--port", "\(port)", "--bind", address, "--balancer", "127.0.0.1:\(balancerPort)"])
      processes.append(server)
      try server.waitForOutput("listening on port \(port)")
    }
    let first = try TestClient(port: balancerPort).get("/?n=5")
    let second = try TestClient(port: balancerPort).get("/?n=6")
    let secondURL = try XCTUnwrap(second.headers["Location"])
    XCTAssertTrue(secondURL.hasPrefix("http://127.0.0.2:\(port)/"), secondURL)
    let (answer, _) = try TestClient.follow(secondURL)
    XCTAssertEqual(answer.text, "Factorial of 6 = 720\n")
    try eventually("the second server's report") {
      try serverStates() == ["127.0.0.1:\(port)": "leased", "127.0.0.2:\(port)": "free"]
    }
    XCTAssertNotNil(first.headers["Location"])
  }

  /// Clients that take leases and never use them hold servers only for the claim timeout; a
  /// late client with a revoked lease is sent back to the balancer, and gets no job.
  func testUnusedLeasesAreRevokedAtTheClaimTimeout() throws {
    try startSystem(servers: 2, balancerArguments: ["--claim-timeout", "0.5"])
    let squatted = try (0..<2).map { _ in try lease(try get("/")) }
    let started = Date()
    let waiting = try TestClient(port: balancerPort, timeout: 10).get("/")
    XCTAssertEqual(waiting.statusCode, 302)
    XCTAssertLessThan(Date().timeIntervalSince(started), 3, "served long before the lease timeout")
    try eventually("both leases reclaimed") { try totals()["reclaimed"] == 2 }
    // The squatter comes back with its old lease: no job, no report; back to the balancer.
    let late = try TestClient(port: squatted[0].port).get(
      "/\(squatted[0].port)?lease=\(squatted[0].token)")
    XCTAssertEqual(late.statusCode, 302)
    XCTAssertEqual(late.headers["Location"], "http://127.0.0.1:\(balancerPort)/")
    // A lease used in time is not revoked, however long its job runs.
    let (answer, _) = try TestClient.follow(waiting.headers["Location"]!)
    XCTAssertEqual(answer.statusCode, 200)
    try eventually("the used lease's report") { try totals()["reported"] == 1 }
    XCTAssertEqual(try totals()["reclaimed"], 2)
  }

  /// With --max-leases-per-client, a client hoarding unused leases gets 429.
  func testAClientHoldingTooManyUnusedLeasesGets429() throws {
    try startSystem(servers: 3, balancerArguments: ["--max-leases-per-client", "2"])
    _ = try lease(try get("/"))
    _ = try lease(try get("/"))
    let refused = try get("/")
    XCTAssertEqual(refused.statusCode, 429)
    XCTAssertNotNil(refused.headers["Retry-After"])
    XCTAssertEqual(try health().free, 1, "the third server stays free for others")
    XCTAssertEqual(try get("/", from: "127.0.0.2").statusCode, 302, "another client is served")
    XCTAssertEqual(try status()["refused_clients"] as? Int, 1)
  }

  /// A server removed while leased, then killed, is neither restarted nor queued again.
  func testARemovedServerNeverReturnsWhateverHappensToItsProcess() throws {
    serverPorts = try freePorts(2)
    try writeConfig(serverPorts)
    try startBalancer()
    try eventually("both servers free", timeout: 15) {
      let states = try serverStates()
      return Set(states.values) == ["free"] && states.count == 2
    }
    let held = try lease(try get("/"))
    let client = try TestClient(port: balancerPort)
    let body = "{\"n\": 1, \"hostnames\": [\"\(held.port)\"]}"
    try client.send(
      "DELETE /rm HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    XCTAssertEqual(try client.readResponse().statusCode, 200)
    let line = try XCTUnwrap(
      balancer.output.components(separatedBy: "\n").last {
        $0.contains("] \(held.port): started process ")
      })
    let pid = try XCTUnwrap(Int32(line.components(separatedBy: "started process ")[1]))
    XCTAssertEqual(kill(pid, SIGKILL), 0)
    Thread.sleep(forTimeInterval: 2)
    XCTAssertNil(try serverStates()["\(held.port)"], "the removed server is back in the pool")
    XCTAssertFalse(balancer.output.contains("\(held.port): restarting"), balancer.output)
    XCTAssertTrue(Socket.isPortFree(held.port), "its process was started again")
    XCTAssertEqual(try health().servers, 1)
  }

  /// A server written for the original (token-less, reports every job) is still served: its
  /// reports from its own address are accepted, and claim checks it cannot answer leave its
  /// leases to the plain lease timeout.
  func testAServerWrittenForTheOriginalIsStillServed() throws {
    let port = try freePort()
    try writeConfig([port])
    try startBalancer(["--no-spawn", "--claim-timeout", "0.3"])
    let script = directory + "/original_server.py"
    try Self.originalServer.write(toFile: script, atomically: true, encoding: .utf8)
    let server = try ManagedProcess(
      "/usr/bin/env", ["python3", script, "\(port)", "\(balancerPort)"])
    processes.append(server)
    try server.waitForOutput("listening")
    for _ in 0..<5 {
      let (answer, urls) = try TestClient.follow(balancerURL)
      XCTAssertEqual(answer.statusCode, 200)
      XCTAssertTrue(answer.text.hasPrefix("Factorial of "), answer.text)
      XCTAssertTrue(urls[1].hasPrefix("http://127.0.0.1:\(port)/\(port)?lease="))
      try eventually("its report") { try totals()["in_flight"] == 0 }
    }
    // A lease left unused: the claim check gets no answer it understands, so the lease stays.
    _ = try lease(try get("/"))
    Thread.sleep(forTimeInterval: 1)
    XCTAssertEqual(try serverStates()["\(port)"], "leased")
    XCTAssertEqual(try totals()["reported"], 5)
    XCTAssertEqual(try totals()["reclaimed"], 0)
  }

  /// The first document's server, as its users wrote it with Flask: `GET /<port>` answers the
  /// factorial, then reports `GET /port_update/<port>` without any lease.
  static let originalServer = #"""
    import http.server, math, random, sys, threading, urllib.request
    port, balancer = int(sys.argv[1]), int(sys.argv[2])
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] != f"/{port}":
                self.send_response(404); self.end_headers(); return
            n = random.randint(100, 1000)
            body = f"Factorial of {n} = {math.factorial(n)}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            urllib.request.urlopen(f"http://127.0.0.1:{balancer}/port_update/{port}").read()
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("listening", flush=True)
    server.serve_forever()
    """#
}
