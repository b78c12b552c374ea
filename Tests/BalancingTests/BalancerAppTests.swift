import Documents
import Foundation
import HTTPCore
import ProgramSupport
import XCTest

@testable import BalancerApp
@testable import Balancing

final class BalancerConfigurationTests: XCTestCase {
  private func configuration(_ arguments: [String], environment: [String: String] = [:]) throws
    -> BalancerConfiguration
  {
    var options = BalancerConfiguration.commandLine
    try options.parse(arguments)
    return try BalancerConfiguration(options, environment: environment)
  }

  func testDefaultsAreTheDocumentedOnes() throws {
    let defaults = try configuration([])
    XCTAssertEqual(defaults.port, 8001)
    XCTAssertEqual(defaults.configPath, "servers.json")
    XCTAssertEqual(defaults.policy, .queue)
    XCTAssertEqual(defaults.leaseTimeout, 60)
    XCTAssertEqual(defaults.waitTimeout, 30)
    XCTAssertEqual(defaults.maxWaiting, 10_000)
    XCTAssertEqual(defaults.heartbeatInterval, 5)
    XCTAssertTrue(defaults.spawnsServers)
    XCTAssertNil(defaults.makeRoutingPolicy())
    XCTAssertEqual(try configuration([], environment: ["LB_PORT": "9100"]).port, 9100)
  }

  func testFlagsAreRead() throws {
    let parsed = try configuration([
      "--port", "0", "--policy", "consistent-hash", "--slots", "64", "--heartbeat-interval", "0",
      "--no-spawn", "--quiet", "--max-waiting", "3", "--admin-token", "s3cret",
    ])
    XCTAssertEqual(parsed.port, 0)
    XCTAssertEqual(parsed.policy, .consistentHash)
    XCTAssertTrue(parsed.makeRoutingPolicy() is ConsistentHashPolicy)
    XCTAssertEqual(parsed.slots, 64)
    XCTAssertEqual(parsed.heartbeatInterval, .infinity, "0 turns heartbeats off")
    XCTAssertFalse(parsed.spawnsServers)
    XCTAssertTrue(parsed.quiet)
    XCTAssertEqual(parsed.maxWaiting, 3)
    XCTAssertEqual(parsed.adminToken, "s3cret")
  }

  /// The parent to exit with is read with the flags, not once the balancer has started (its
  /// port checks may wait 2 s, and a parent that exits meanwhile was missed: helper-41's review).
  func testTheParentIsTheOneFoundWhenTheFlagsAreRead() throws {
    XCTAssertNil(try configuration([]).parentPID)
    XCTAssertEqual(try configuration(["--exit-with-parent"]).parentPID, getppid())
    XCTAssertEqual(try configuration(["--parent-pid", "4242"]).parentPID, 4242)
    XCTAssertEqual(
      try configuration(["--exit-with-parent", "--parent-pid", "4242"]).parentPID, 4242)
  }

  /// The servers a balancer starts report to the numeric address its listener took (a
  /// `--bind` name resolved once, by the listener), and listen on the same family.
  func testTheServersItStartsReportToTheAddressItListensOn() throws {
    for (address, reportHost, serverBind) in [
      ("0.0.0.0", "127.0.0.1", "0.0.0.0"), ("127.0.0.2", "127.0.0.2", "0.0.0.0"),
      ("::", "[::1]", "::"), ("::1", "[::1]", "::"),
    ] {
      XCTAssertEqual(BalancerConfiguration.reportHost(listeningOn: address), reportHost, address)
      XCTAssertEqual(
        BalancerConfiguration.serverBindAddress(listeningOn: address), serverBind, address)
    }
    let loop = try EventLoop()
    func listener(_ host: String) throws -> HTTPServer {
      try HTTPServer(
        loop: loop, configuration: HTTPServer.Configuration(host: host, port: 0),
        handler: NothingHandler())
    }
    let named = try listener("localhost")
    XCTAssertTrue(["127.0.0.1", "::1"].contains(named.address), named.address)
    named.stopAccepting()
    if let literal = try? listener("[::1]") {  // where IPv6 is available
      XCTAssertEqual(literal.address, "::1")
      literal.stopAccepting()
    }
  }

  /// A lease timeout within the claim timeout is allowed (tests of expiry use one) but said at
  /// start: an unused lease then ends unrevoked, and its client can still get a job (found by
  /// helper-40's audit).
  func testALeaseTimeoutWithinTheClaimTimeoutIsWarnedAbout() throws {
    var configuration = BalancerConfiguration()
    XCTAssertEqual(configuration.warnings, [])
    configuration.leaseTimeout = 1
    XCTAssertEqual(
      configuration.warnings,
      [
        "--lease-timeout 1 is not longer than --claim-timeout 3: a lease its client has not used"
          + " may expire before it is checked, without being revoked at its server, so that client"
          + " can still get a job there"
      ])
    configuration.claimTimeout = 0  // no claim checks: nothing to come first
    XCTAssertEqual(configuration.warnings, [])
    configuration.claimTimeout = 0.5
    XCTAssertEqual(configuration.warnings, [])
  }

  func testBadValuesAreExplained() {
    for (arguments, message) in [
      (["--policy", "fastest"], "--policy: 'fastest' is not one of queue, round-robin"),
      (["--admin-token", "a b"], "--admin-token: the token must be non-empty"),
      (["--max-waiting", "0"], "--max-waiting: '0' is not a whole number from 1"),
      (["--max-waiting", "2.5"], "--max-waiting: '2.5' is not a whole number"),
      (["--lease-timeout", "-1"], "--lease-timeout: '-1' is not a number"),
      // Not finite: refused by every number-valued flag.
      (["--lease-timeout", "inf"], "--lease-timeout: 'inf' is not a number"),
      (["--claim-timeout", "nan"], "--claim-timeout: 'nan' is not a number"),
      (["--heartbeat-interval", "1e999"], "--heartbeat-interval: '1e999' is not a number"),
      (["--wait-timeout", "-inf"], "--wait-timeout: '-inf' is not a number"),
      (["--port", "http"], "--port: 'http' is not a port"),
      (["--log-format", "xml"], "--log-format: 'xml' is not text or json"),
    ] {
      XCTAssertThrowsError(try configuration(arguments), "\(arguments)") { error in
        XCTAssertTrue("\(error)".hasPrefix(message), "\(error)")
      }
    }
  }
}

/// The balancer wired as the program runs it, with a recording launcher, a scripted probe and
/// the test's clock: no processes, and the event loop is never run.
final class BalancerAppTests: XCTestCase {
  private let clock = FakeClock()
  private let launcher = RecordingLauncher()
  private let probe = ScriptedProbe()
  private var directory = ""
  private var app: BalancerApp!
  private var logged: [String] = []

  override func setUpWithError() throws {
    directory = NSTemporaryDirectory() + "balancer-app-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try editByHand(#"{"available_servers": ["5001", "5002"]}"#)
    app = try startedApp(file: try ServersFile.load(path: configPath))
  }

  /// The balancer wired with the test's collaborators, started with `file` as the pool it loaded.
  private func startedApp(file: ServersFile) throws -> BalancerApp {
    var configuration = BalancerConfiguration()
    configuration.port = 0
    configuration.bindAddress = "127.0.0.1"
    configuration.configPath = configPath
    configuration.heartbeatInterval = .infinity
    configuration.quiet = true
    let app = BalancerApp(
      configuration: configuration, file: file, loop: try EventLoop(), launcher: launcher,
      probe: probe, clock: { [clock] in clock.now },
      log: { [unowned self] in self.logged.append($0) })
    // The ports are only names here (nothing listens): whatever this machine runs on them.
    app.balancer.replicas.isPortFree = { _ in true }
    try app.start(handlingSignals: false)
    return app
  }

  override func tearDown() {
    app.stop()
    app = nil
    try? FileManager.default.removeItem(atPath: directory)
  }

  private var configPath: String { directory + "/servers.json" }
  private var broker: ServerBroker { app.balancer.broker }

  /// Lets the supervisor probe the starting servers, and answers every probe with `result`.
  /// servers.json written by hand (as an admin's editor would), replacing what it held.
  private func editByHand(_ text: String) throws {
    try text.write(toFile: configPath, atomically: true, encoding: .utf8)
  }

  /// servers.json's entries as written.
  private func serversOnDisk() throws -> [String] {
    try ServersFile.load(path: configPath).servers.map(\.description)
  }

  /// `/add` of a server on another machine (nothing to start), asked by `admin`.
  private func addRemoteServer(_ admin: FakeClient) {
    admin.request(
      app.balancer, "/add", method: "POST", body: #"{"n": 1, "hostnames": ["10.9.9.9:5010"]}"#)
  }

  private func settle(_ result: ServerPool.CheckResult = .idle) {
    clock.advance(0.3)
    app.supervisor.tick(now: clock.now)
    for port in [5001, 5002, 5003] { probe.answer(port, result) }
  }

  /// A respelled entry follows the process kept for it: down when it exits, and the process
  /// killed when it hangs (helper-41's review of the respelling fix).
  func testARespelledEntryFollowsTheProcessKeptForIt() throws {
    settle()
    try editByHand(#"{"available_servers": ["5001", "127.0.0.1:5002"]}"#)
    app.reloadConfig(force: true)
    XCTAssertEqual(launcher.stopped, [], "kept")
    settle()
    let respelled = try XCTUnwrap(ServerAddress(parsing: "127.0.0.1:5002"))
    XCTAssertTrue(broker.dispatcher.freeServers.contains(respelled))
    launcher.onExit?(ServerAddress(port: 5002))  // its process exited
    XCTAssertFalse(broker.dispatcher.freeServers.contains(respelled))
    clock.advance(11)
    app.killUnresponsiveServers(now: clock.now)
    XCTAssertEqual(launcher.killed, [5002], "down for longer than the grace: its process is killed")
  }

  func testStartsEveryLocalServerAndQueuesThemOnceTheyAnswer() {
    XCTAssertGreaterThan(app.port, 0)
    XCTAssertEqual(launcher.started, [5001, 5002])
    XCTAssertEqual(broker.dispatcher.freeServers, [], "started servers are not listening yet")
    settle()
    XCTAssertEqual(broker.dispatcher.freeServers.map(\.port), [5001, 5002])
    XCTAssertTrue(logged.contains { $0.hasPrefix("listening on port \(app.port) with 2 servers") })
  }

  func testAServerDownForTenSecondsIsKilledAndOneThatExitsIsProbedSoon() {
    settle()
    let server = ServerAddress(port: 5001)
    launcher.onExit?(server)
    XCTAssertEqual(broker.dispatcher.freeServers.map(\.port), [5002])
    clock.advance(9)
    app.killUnresponsiveServers(now: clock.now)
    XCTAssertEqual(launcher.killed, [])
    clock.advance(1.5)
    app.killUnresponsiveServers(now: clock.now)
    XCTAssertEqual(launcher.killed, [5001])
    // Restarted: probed within a fraction of a second, not after the back-off.
    launcher.onStart?(server)
    settle()
    XCTAssertEqual(broker.dispatcher.freeServers.map(\.port), [5002, 5001])
  }

  func testReloadFollowsTheFileAndKeepsTheLastGoodPool() throws {
    settle()
    try editByHand(#"{"available_servers": ["5002", "5003"]}"#)
    app.reloadConfig(force: true)
    XCTAssertEqual(launcher.started, [5001, 5002, 5003])
    XCTAssertEqual(launcher.stopped, [5001])
    settle()
    XCTAssertEqual(broker.pool.servers.map(\.port), [5002, 5003])
    try editByHand(#"{"available_servers": []}"#)
    app.reloadConfig(force: true)
    XCTAssertEqual(broker.pool.servers.map(\.port), [5002, 5003])
    XCTAssertTrue(
      logged.contains { $0.hasPrefix("config not reloaded, keeping the last good pool") },
      "\(logged)")
  }

  /// servers.json edited by hand after the balancer loaded it and before its watch began (`make`
  /// may wait up to two seconds in between for its servers' ports to be free): the first check
  /// takes the edit. The watcher used to start from the edited file as if it were the pool
  /// loaded, so the edit was never applied, and the next /add rewrote the file without it.
  func testAnEditMadeWhileTheBalancerStartsIsTaken() throws {
    app.stop()
    let loaded = try ServersFile.load(path: configPath)
    try editByHand(#"{"available_servers": ["5001", "5002", "5003"]}"#)
    app = try startedApp(file: loaded)
    XCTAssertEqual(broker.pool.servers.map(\.port), [5001, 5002])
    app.reloadConfig(force: false)
    XCTAssertEqual(broker.pool.servers.map(\.port), [5001, 5002, 5003])
    XCTAssertEqual(launcher.started.suffix(3), [5001, 5002, 5003])
  }

  /// servers.json edited by hand, then `/add` and `/rm` before the next check of the file (within
  /// the second): each starts from the edited pool, and its rewrite of the file keeps the edit.
  func testAddAndRemoveRightAfterAHandEditKeepTheEdit() throws {
    settle()
    try editByHand(#"{"available_servers": ["5001", "5002", "5003"]}"#)
    let admin = FakeClient()
    addRemoteServer(admin)
    XCTAssertEqual(admin.status, 200, admin.text)
    XCTAssertEqual(
      try serversOnDisk(),
      ["5001", "5002", "5003", "10.9.9.9:5010"])

    try editByHand(#"{"available_servers": ["5001", "5002", "5003", "10.9.9.9:5010", "5004"]}"#)
    admin.request(app.balancer, "/rm", method: "DELETE", body: #"{"n": 1, "hostnames": ["5001"]}"#)
    XCTAssertEqual(admin.status, 200, admin.text)
    XCTAssertEqual(
      try serversOnDisk(),
      ["5002", "5003", "10.9.9.9:5010", "5004"])
    XCTAssertEqual(
      broker.pool.servers.map(\.description), ["5002", "5003", "10.9.9.9:5010", "5004"])
  }

  /// `/rm`, then servers.json put back by hand as it was before it (a backup copied over it):
  /// the edit is taken, and the next `/add` keeps it (found by a user's audit: the text matched
  /// the one the watcher had read before the `/rm`, so it was never loaded and was overwritten).
  func testAnEditBackToTheTextBeforeARemovalIsTaken() throws {
    settle()
    let before = try String(contentsOfFile: configPath, encoding: .utf8)
    let admin = FakeClient()
    admin.request(app.balancer, "/rm", method: "DELETE", body: #"{"n": 1, "hostnames": ["5001"]}"#)
    XCTAssertEqual(admin.status, 200, admin.text)
    XCTAssertEqual(broker.pool.servers.map(\.description), ["5002"])
    try editByHand(before)
    addRemoteServer(admin)
    XCTAssertEqual(admin.status, 200, admin.text)
    XCTAssertEqual(
      try serversOnDisk(),
      ["5001", "5002", "10.9.9.9:5010"])
    XCTAssertEqual(broker.pool.servers.map(\.description), ["5001", "5002", "10.9.9.9:5010"])
  }

  /// servers.json edited by hand into something that cannot be loaded, then `/add` and `/rm`:
  /// each answers `409` naming the problem and changes nothing (the edit stays on disk for the
  /// admin to fix, the pool stays), while clients are still served; once the file is fixed, they
  /// work again.
  func testAddAndRemoveAreRefusedWhileAHandEditCannotBeLoaded() throws {
    settle()
    let broken = #"{"available_servers": ["5001", "5002", "5003""#
    try editByHand(broken)
    let admin = FakeClient()
    for (path, method, body) in [
      ("/add", "POST", #"{"n": 1, "hostnames": ["10.9.9.9:5010"]}"#),
      ("/rm", "DELETE", #"{"n": 1, "hostnames": ["5001"]}"#),
    ] {
      admin.request(app.balancer, path, method: method, body: body)
      XCTAssertEqual(admin.status, 409, "\(path): \(admin.text)")
      let message = (try? ReplicasFailure.decode(admin.last?.body ?? []))?.message ?? admin.text
      XCTAssertTrue(
        message.contains("servers.json has an edit that could not be loaded"), message)
      XCTAssertTrue(message.contains("\(configPath): not valid JSON"), message)
      XCTAssertTrue(message.contains("fix or revert it first"), message)
      XCTAssertEqual(try String(contentsOfFile: configPath, encoding: .utf8), broken, path)
      XCTAssertEqual(broker.pool.servers.map(\.description), ["5001", "5002"], path)
    }
    XCTAssertEqual(launcher.started, [5001, 5002], "no server started")
    XCTAssertEqual(launcher.stopped, [], "no server stopped")
    // The balancer keeps serving from the last good pool.
    let client = FakeClient()
    client.request(app.balancer, "/")
    XCTAssertEqual(client.status, 302)
    XCTAssertEqual(
      logged.filter { $0.hasPrefix("config not reloaded") }.count, 1, "said once: \(logged)")

    // Fixed by hand: taken at the next /add, which then works from it.
    try editByHand(#"{"available_servers": ["5001", "5002", "10.8.8.8:5011"]}"#)
    addRemoteServer(admin)
    XCTAssertEqual(admin.status, 200, admin.text)
    XCTAssertEqual(
      try serversOnDisk(),
      ["5001", "5002", "10.8.8.8:5011", "10.9.9.9:5010"])
  }

  /// A hand edit that is valid JSON but whose pool is refused (one server listed under two
  /// names) is pending as well, until the file is reverted.
  func testAddAndRemoveAreRefusedWhileAHandEditedPoolIsRefused() throws {
    settle()
    let good = try String(contentsOfFile: configPath, encoding: .utf8)
    let twice = #"{"available_servers": ["5001", "5002", "127.0.0.1:5002"]}"#
    try editByHand(twice)
    let admin = FakeClient()
    admin.request(app.balancer, "/rm", method: "DELETE", body: #"{"n": 1}"#)
    XCTAssertEqual(admin.status, 409, admin.text)
    XCTAssertTrue(admin.text.contains("could not be loaded"), admin.text)
    XCTAssertEqual(try String(contentsOfFile: configPath, encoding: .utf8), twice)
    XCTAssertEqual(broker.pool.servers.map(\.description), ["5001", "5002"])

    // Reverted: /rm works again.
    try editByHand(good)
    admin.request(app.balancer, "/rm", method: "DELETE", body: #"{"n": 1}"#)
    XCTAssertEqual(admin.status, 200, admin.text)
    XCTAssertEqual(try serversOnDisk(), ["5001"])
    XCTAssertEqual(broker.pool.servers.map(\.description), ["5001"])
  }

  /// A deleted servers.json holds no edit to lose: /add writes the pool back.
  func testAddWritesTheFileBackWhenItWasDeleted() throws {
    settle()
    try FileManager.default.removeItem(atPath: configPath)
    let admin = FakeClient()
    addRemoteServer(admin)
    XCTAssertEqual(admin.status, 200, admin.text)
    XCTAssertEqual(
      try serversOnDisk(),
      ["5001", "5002", "10.9.9.9:5010"])
  }

  func testStopAnswersWaitingClientsAndRefusesNewOnes() {
    settle()
    let clients = (0..<3).map { _ in FakeClient() }
    for client in clients { client.request(app.balancer, "/") }
    XCTAssertEqual(clients.map(\.status), [302, 302, nil])
    app.stop()
    XCTAssertEqual(clients[2].status, 503)
    let late = FakeClient()
    late.request(app.balancer, "/")
    XCTAssertEqual(late.status, 503)
  }
}

/// Answers nothing: for listeners that are only bound.
private final class NothingHandler: HTTPHandler {
  func handle(_ request: HTTPRequest, responder: HTTPResponder) {}
}
