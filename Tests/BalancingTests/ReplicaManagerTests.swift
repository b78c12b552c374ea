import Foundation
import HTTPCore
import XCTest

@testable import Balancing

/// Records what the manager asks of processes.
final class RecordingLauncher: ServerLauncher {
  var started: [Int] = []
  var stopped: [Int] = []
  var killed: [Int] = []
  var stoppedAll = false
  var onExit: ((ServerAddress) -> Void)?
  var onStart: ((ServerAddress) -> Void)?
  /// The ports it keeps a process on: those it was told to start and not to stop since.
  var running: Set<Int> = []
  func start(_ server: ServerAddress) {
    started.append(server.port)
    running.insert(server.port)
  }
  func stop(_ server: ServerAddress) {
    stopped.append(server.port)
    running.remove(server.port)
  }
  func isSupervising(_ server: ServerAddress) -> Bool { running.contains(server.port) }
  func restartCount(_ server: ServerAddress) -> Int { server.port % 2 }
  func killUnresponsive(_ server: ServerAddress, grace: Double) { killed.append(server.port) }
  func stopRestarting() {}
  func stopAll(timeout: Double) { stoppedAll = true }
}

final class ReplicaManagerTests: XCTestCase {
  private let clock = FakeClock()
  private var balancer: Balancer!
  private var launcher = RecordingLauncher()
  private var path = ""
  private var busyPorts: Set<Int> = []

  override func setUpWithError() throws {
    path = NSTemporaryDirectory() + "servers-\(UUID().uuidString).json"
    let file = ServersFile(servers: [5001, 5002, 5003].map { ServerAddress(port: $0) })
    try file.write(to: path)
    balancer = makeBalancer(servers: file.servers, clock: clock)
    try balancer.replicas.apply(file)
    balancer.replicas.clock = { [clock] in clock.now }
    balancer.replicas.configPath = path
    balancer.replicas.launcher = launcher
    launcher.running = [5001, 5002, 5003]  // as if it had started them
    balancer.replicas.isPortFree = { [unowned self] in !self.busyPorts.contains($0) }
  }

  override func tearDown() {
    try? FileManager.default.removeItem(atPath: path)
  }

  private func call(
    _ method: String, _ target: String, _ body: String = "", from: String = "127.0.0.1"
  )
    -> (status: Int, json: [String: Any])
  {
    let client = FakeClient()
    client.request(balancer, target, method: method, body: body, from: from)
    let json = (try? JSONSerialization.jsonObject(with: Data(client.last!.body))) as? [String: Any]
    return (client.status!, json ?? [:])
  }

  private func replicas(_ json: [String: Any]) -> [String] {
    (json["message"] as? [String: Any])?["replicas"] as? [String] ?? []
  }

  private func fileOnDisk() throws -> ServersFile { try ServersFile.load(path: path) }

  func testRepHasTheSecondDocumentsShape() {
    let (status, json) = call("GET", "/rep")
    XCTAssertEqual(status, 200)
    XCTAssertEqual(json["status"] as? String, "successful")
    XCTAssertEqual((json["message"] as? [String: Any])?["N"] as? Int, 3)
    XCTAssertEqual(replicas(json), ["5001", "5002", "5003"])
    let details = json["details"] as! [[String: Any]]
    XCTAssertEqual(details[0]["state"] as? String, "free")
    XCTAssertEqual(details[0]["restarts"] as? Int, 1)
    XCTAssertEqual(details[0]["leases"] as? Int, 0)
    XCTAssertEqual(details[0]["server"] as? String, "5001", "the same name as /status uses")
  }

  func testAddStartsServersNamedByPortOrLabelAndRewritesTheFile() throws {
    let (status, json) = call("POST", "/add", #"{"n": 3, "hostnames": ["5010", "S4"]}"#)
    XCTAssertEqual(status, 200, "\(json)")
    XCTAssertEqual(replicas(json), ["5001", "5002", "5003", "5010", "S4", "5012"])
    XCTAssertEqual(launcher.started, [5010, 5011, 5012])
    let file = try fileOnDisk()
    XCTAssertEqual(
      file.entries.last(where: { $0.name == "S4" })?.address, ServerAddress(port: 5011))
    XCTAssertTrue(file.json.contains(#"{"name": "S4", "port": 5011}"#))
    // New servers wait for their first probe before they are handed out.
    XCTAssertEqual(balancer.free, [5001, 5002, 5003])
    guard case .down = balancer.pool.health(of: ServerAddress(port: 5011)) else {
      return XCTFail("should be starting")
    }
  }

  func testAddSkipsPortsThatAreTaken() {
    busyPorts = [5004, 5005]
    XCTAssertEqual(call("POST", "/add", #"{"n": 1}"#).status, 200)
    XCTAssertEqual(launcher.started, [5006])
    XCTAssertEqual(call("POST", "/add", #"{"n": 1, "hostnames": ["5005"]}"#).status, 400)
  }

  func testAddRefusesBadRequestsAndChangesNothing() throws {
    let before = try fileOnDisk()
    let cases: [(String, String)] = [
      ("not json", "JSON object"),
      (#"[1]"#, "JSON object"),
      (#"{"n": 0}"#, "positive whole number"),
      (#"{"n": -1}"#, "positive whole number"),
      (#"{"n": 1.5}"#, "positive whole number"),
      (#"{"n": 1.0}"#, "positive whole number"),
      (#"{"n": 1e0}"#, "positive whole number"),
      (#"{"n": "2"}"#, "positive whole number"),
      (#"{"n": true}"#, "positive whole number"),
      (#"{"hostnames": []}"#, "positive whole number"),
      (
        #"{"n": 1, "hostnames": ["S4", "S5"]}"#,
        "Length of hostname list is more than newly added instances"
      ),
      (#"{"n": 2, "hostnames": ["5001"]}"#, "5001 is already in the pool"),
      (#"{"n": 2, "hostnames": ["S4", "S4"]}"#, "twice"),
      (#"{"n": 1, "hostnames": "S4"}"#, "list of non-empty strings"),
      (#"{"n": 1, "hostnames": [""]}"#, "list of non-empty strings"),
      (#"{"n": 1, "extra": 1}"#, "unknown field extra"),
      (#"{"n": 1000}"#, "at most"),
      // Addresses with a port out of range, not labels of a server on the next free port.
      (#"{"n": 1, "hostnames": ["70000"]}"#, "'70000' is not a port from 1 to 65535 or host:port"),
      (#"{"n": 1, "hostnames": ["0"]}"#, "'0' is not a port"),
      (#"{"n": 1, "hostnames": ["050010"]}"#, "'050010' is not a port"),
      (#"{"n": 1, "hostnames": ["10.0.0.7:0"]}"#, "'10.0.0.7:0' is not a port"),
    ]
    for (body, expected) in cases {
      let (status, json) = call("POST", "/add", body)
      XCTAssertEqual(status, 400, body)
      XCTAssertEqual(json["status"] as? String, "failure", body)
      XCTAssertTrue((json["message"] as? String ?? "").hasPrefix("<Error> "), body)
      XCTAssertTrue((json["message"] as? String ?? "").contains(expected), "\(body): \(json)")
    }
    XCTAssertEqual(try fileOnDisk(), before)
    XCTAssertEqual(launcher.started, [])
    XCTAssertEqual(balancer.pool.servers.count, 3)
  }

  func testRemoveNamedFirstThenTheNewestAndStopsThemAfterTheirJob() throws {
    _ = call("POST", "/add", #"{"n": 1, "hostnames": ["S4"]}"#)  // S4 on 5004, starting
    balancer.pool.finishProbe(of: ServerAddress(port: 5004), result: .idle, now: clock.now)
    let leased = FakeClient()
    leased.request(balancer, "/")  // 5001 is leased
    let (status, json) = call("DELETE", "/rm", #"{"n": 2, "hostnames": ["5001"]}"#)
    XCTAssertEqual(status, 200, "\(json)")
    XCTAssertEqual(replicas(json), ["5002", "5003"])
    XCTAssertEqual(try fileOnDisk().servers.map(\.port), [5002, 5003])
    // S4 was free: stopped at once. 5001 finishes its job first.
    XCTAssertEqual(launcher.stopped, [5004])
    let report = FakeClient()
    report.request(balancer, "/port_update/5001?lease=\(leased.lease!)")
    XCTAssertEqual(report.status, 200)
    XCTAssertEqual(launcher.stopped, [5004, 5001])
    // Never handed out again.
    XCTAssertEqual(balancer.free, [5002, 5003])
  }

  func testRemoveRefusesBadRequestsAndChangesNothing() throws {
    for (body, expected) in [
      (#"{"n": 3}"#, "at least one must remain"),
      (#"{"n": 5}"#, "at least one must remain"),
      (#"{"n": 1, "hostnames": ["S9"]}"#, "S9 is not in the pool"),
      (#"{"n": 1, "hostnames": ["5001", "5002"]}"#, "more than removable"),
      (#"{"n": 0}"#, "positive whole number"),
      ("{", "JSON object"),
    ] {
      let (status, json) = call("DELETE", "/rm", body)
      XCTAssertEqual(status, 400, body)
      XCTAssertTrue((json["message"] as? String ?? "").contains(expected), "\(body): \(json)")
    }
    XCTAssertEqual(try fileOnDisk().servers.count, 3)
    XCTAssertEqual(launcher.stopped, [])
  }

  /// A label and an address of one server are one server: naming both removes one, so it is
  /// refused rather than answered as if two went.
  func testRemoveRefusesOneServerNamedTwoWays() throws {
    _ = call("POST", "/add", #"{"n": 1, "hostnames": ["S4"]}"#)  // S4 on 5004
    let (status, json) = call("DELETE", "/rm", #"{"n": 2, "hostnames": ["S4", "5004"]}"#)
    XCTAssertEqual(status, 400, "\(json)")
    XCTAssertTrue((json["message"] as? String ?? "").contains("twice"), "\(json)")
    XCTAssertEqual(try fileOnDisk().servers.map(\.port), [5001, 5002, 5003, 5004])
    XCTAssertEqual(launcher.stopped, [])
  }

  func testRemoveFindsAServerByTheAddressItWasAddedAs() throws {
    // A port with a leading zero is the same port: /add stored it as a.b:7001, and /rm must
    // find it by the text it was added with (found by bench/fuzz.sh admin-body).
    XCTAssertEqual(call("POST", "/add", #"{"n": 1, "hostnames": ["a.b:07001"]}"#).status, 200)
    let (status, json) = call("DELETE", "/rm", #"{"n": 1, "hostnames": ["a.b:07001"]}"#)
    XCTAssertEqual(status, 200, "\(json)")
    XCTAssertEqual(try fileOnDisk().servers.map(\.description), ["5001", "5002", "5003"])
    XCTAssertEqual(call("DELETE", "/rm", #"{"n": 1, "hostnames": ["05002"]}"#).status, 200)
    XCTAssertEqual(try fileOnDisk().servers.map(\.port), [5001, 5003])
    // The same server on this machine by another address, as /add refuses it ("127.0.0.1:5003
    // and 5003 are the same server"): /rm finds it too (found in review).
    XCTAssertEqual(call("DELETE", "/rm", #"{"n": 1, "hostnames": ["127.0.0.1:5003"]}"#).status, 200)
    XCTAssertEqual(try fileOnDisk().servers.map(\.port), [5001])
  }

  func testOnlyLoopbackOrTheAdminTokenMayChangeReplicas() {
    XCTAssertEqual(call("POST", "/add", #"{"n": 1}"#, from: "10.0.0.5").status, 403)
    XCTAssertEqual(call("DELETE", "/rm", #"{"n": 1}"#, from: "192.168.1.9").status, 403)
    XCTAssertEqual(call("GET", "/rep", from: "10.0.0.5").status, 200)
    balancer.adminToken = "s3cret"
    let client = FakeClient()
    client.request(
      balancer, "/add", method: "POST", body: #"{"n": 1}"#, from: "10.0.0.5",
      headers: [("Authorization", "Bearer wrong")])
    XCTAssertEqual(client.status, 403)
    for refused in ["Bearer s3cre", "Bearer s3cretx", "Basic s3cret", "Bearers3cret", "s3cret"] {
      client.request(
        balancer, "/add", method: "POST", body: #"{"n": 1}"#, from: "10.0.0.5",
        headers: [("Authorization", refused)])
      XCTAssertEqual(client.status, 403, refused)
    }
    client.request(
      balancer, "/add", method: "POST", body: #"{"n": 1}"#, from: "10.0.0.5",
      headers: [("Authorization", "Bearer s3cret")])
    XCTAssertEqual(client.status, 200)
    // The scheme's name is case-insensitive (RFC 9110 §11.1), and more than one space may follow.
    client.request(
      balancer, "/add", method: "POST", body: #"{"n": 1}"#, from: "10.0.0.5",
      headers: [("Authorization", "bearer  s3cret")])
    XCTAssertEqual(client.status, 200)
    XCTAssertEqual(call("POST", "/add", #"{"n": 1}"#, from: "::1").status, 200)
    XCTAssertEqual(launcher.started.count, 3)
  }

  func testWrongMethodsAndHeartbeat() {
    XCTAssertEqual(call("GET", "/add").status, 405)
    XCTAssertEqual(call("POST", "/rm").status, 405)
    XCTAssertEqual(call("GET", "/heartbeat").status, 200)
  }

  func testHandEditsOfServersJsonStartAndStopLocalServers() throws {
    let file = ServersFile(servers: [5002, 5003, 5009].map { ServerAddress(port: $0) })
    try balancer.replicas.apply(file)
    XCTAssertEqual(launcher.started, [5009])
    XCTAssertEqual(launcher.stopped, [5001])
  }

  /// `5002` respelled `127.0.0.1:5002` (the README's own example) is the same process: it keeps
  /// running, supervised, until no entry names it (found by a user's audit: it was stopped, and
  /// nothing started it again).
  func testAServerRespelledByHandKeepsItsProcessUntilNoEntryNamesIt() throws {
    let respelled = try XCTUnwrap(ServerAddress(parsing: "127.0.0.1:5002"))
    try balancer.replicas.apply(
      ServersFile(servers: [ServerAddress(port: 5001), respelled, ServerAddress(port: 5003)]))
    XCTAssertEqual(launcher.stopped, [])
    XCTAssertEqual(launcher.started, [], "the entry with a host is not started")
    // Back to the bare port: the process it has is the server's, not started twice.
    try balancer.replicas.apply(
      ServersFile(servers: [5001, 5002, 5003].map { ServerAddress(port: $0) }))
    XCTAssertEqual(launcher.stopped, [])
    XCTAssertEqual(launcher.started, [])
    try balancer.replicas.apply(
      ServersFile(servers: [ServerAddress(port: 5001), respelled, ServerAddress(port: 5003)]))
    // No entry names it any more: its process stops.
    try balancer.replicas.apply(ServersFile(servers: [5001, 5003].map { ServerAddress(port: $0) }))
    XCTAssertEqual(launcher.stopped, [5002])
  }

  /// A hand edit that lists a port another program uses is refused, as the same file is at
  /// start: the server the balancer would start there could never listen, and clients would be
  /// sent to the other program (found by a user's audit).
  func testAHandEditListingAPortInUseIsRefusedAndChangesNothing() throws {
    busyPorts = [5009]
    let edit = ServersFile(servers: [5001, 5002, 5003, 5009].map { ServerAddress(port: $0) })
    XCTAssertThrowsError(try balancer.replicas.apply(edit)) { error in
      XCTAssertEqual(
        (error as? ServersFile.Invalid)?.message,
        "port 5009 is already in use: the balancer cannot start a server there")
    }
    XCTAssertEqual(balancer.replicas.entries.map(\.address.port), [5001, 5002, 5003])
    XCTAssertEqual(launcher.started, [])
    // Listed by a host, it is a server someone else runs: taken as it is.
    let named = ServersFile(
      servers: [5001, 5002, 5003].map { ServerAddress(port: $0) } + [
        ServerAddress(host: "10.0.0.9", port: 5009)
      ])
    XCTAssertNoThrow(try balancer.replicas.apply(named))
  }

  /// With `--no-spawn` a server joins by `/add` once it runs: its port is in use, as it should
  /// be (found by a user's audit: `/add` answered "port … is already taken").
  func testWithoutALauncherARunningServerIsAddedByItsPort() throws {
    balancer.replicas.launcher = nil
    busyPorts = [5010]
    let (status, json) = call("POST", "/add", #"{"n": 1, "hostnames": ["5010"]}"#)
    XCTAssertEqual(status, 200, "\(json)")
    XCTAssertEqual(try fileOnDisk().servers.map(\.port), [5001, 5002, 5003, 5010])
  }

  /// The process the balancer keeps for a respelled entry listens on every address: a second
  /// entry on this machine at its port would hand it to two clients, by hand or by `/add`
  /// (helper-41's review of the respelling fix).
  func testAKeptProcessIsNotListedTwiceUnderTwoLoopbackAddresses() throws {
    let first = try XCTUnwrap(ServerAddress(parsing: "127.0.0.1:5002"))
    let second = try XCTUnwrap(ServerAddress(parsing: "127.0.0.2:5002"))
    XCTAssertThrowsError(
      try balancer.replicas.apply(
        ServersFile(servers: [ServerAddress(port: 5001), first, second, ServerAddress(port: 5003)]))
    ) { error in
      XCTAssertEqual(
        (error as? ServersFile.Invalid)?.message,
        "127.0.0.1:5002 and 127.0.0.2:5002 are the same server (the process this balancer runs on"
          + " port 5002 listens on every address)")
    }
    try balancer.replicas.apply(
      ServersFile(servers: [ServerAddress(port: 5001), first, ServerAddress(port: 5003)]))
    XCTAssertTrue(launcher.isSupervising(ServerAddress(port: 5002)), "kept")
    let (status, json) = call("POST", "/add", #"{"n": 1, "hostnames": ["127.0.0.2:5002"]}"#)
    XCTAssertEqual(status, 400, "\(json)")
    XCTAssertEqual(
      balancer.replicas.entries.map(\.address.description), ["5001", "127.0.0.1:5002", "5003"])
    XCTAssertEqual(try fileOnDisk().servers.map(\.description), ["5001", "5002", "5003"])
  }

  /// `/rm` of a leased server (its job runs on), then `/add` of it again: its process is this
  /// balancer's, as a hand edit already allowed (helper-41's review).
  func testAServerRemovedWhileLeasedCanBeAddedBack() throws {
    balancer.replicas.isPortFree = { [unowned self] in !self.launcher.running.contains($0) }
    let leased = FakeClient()
    leased.request(balancer, "/")
    XCTAssertEqual(call("DELETE", "/rm", #"{"n": 1, "hostnames": ["5001"]}"#).status, 200)
    XCTAssertEqual(launcher.stopped, [], "retired: its job runs on")
    let (status, json) = call("POST", "/add", #"{"n": 1, "hostnames": ["5001"]}"#)
    XCTAssertEqual(status, 200, "\(json)")
    XCTAssertEqual(launcher.started, [], "its process runs already")
  }

  /// A server someone else runs (listed by a host), added where the balancer starts servers,
  /// has no process starting here: while it does not answer it is `down` with a `down_since`
  /// (it showed as `starting` for good: it has no process here to exit).
  func testARemoteServerAddedWhereTheBalancerStartsServersIsNotStarting() throws {
    let remote = ServerAddress(host: "10.0.0.9", port: 5009)
    let file = ServersFile(servers: [5001, 5002, 5003].map { ServerAddress(port: $0) } + [remote])
    try balancer.replicas.apply(file)
    XCTAssertEqual(launcher.started, [], "no process started for it")
    clock.advance(600)  // ten minutes without an answer
    XCTAssertEqual(balancer.broker.stateName(remote), "down", "no process of it is starting")
    let entry = balancer.broker.status(now: clock.now).servers.first {
      $0.server == "10.0.0.9:5009"
    }
    XCTAssertNotNil(entry?.downSince)
  }

  /// The process of 5001, kept for its retired entry (it holds a lease), listed again as
  /// 127.0.0.1:5001: no process is started for the new entry (the one running is kept), and it
  /// is not shown as `starting`.
  func testARespelledEntryOfARunningProcessIsNotStarting() throws {
    let leased = FakeClient()
    leased.request(balancer, "/")  // 5001 is leased
    let respelled = ServerAddress(host: "127.0.0.1", port: 5001)
    let file = ServersFile(servers: [respelled] + [5002, 5003].map { ServerAddress(port: $0) })
    try balancer.replicas.apply(file)
    XCTAssertEqual(launcher.started, [], "its process runs already")
    XCTAssertTrue(balancer.pool.isRetired(ServerAddress(port: 5001)))
    XCTAssertNotEqual(balancer.broker.stateName(respelled), "starting")
  }
}
