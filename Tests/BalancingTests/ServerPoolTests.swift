import HTTPCore
import TestSupport
import XCTest

@testable import Balancing

/// A health probe whose answers the test decides; checks wait until the test answers them.
final class ScriptedProbe: HealthProbe {
  var pending: [(server: ServerAddress, completion: (ServerPool.CheckResult) -> Void)] = []
  var revocations: [(lease: Lease, completion: (RevokeResult) -> Void)] = []

  func check(_ server: ServerAddress, completion: @escaping (ServerPool.CheckResult) -> Void) {
    pending.append((server, completion))
  }

  func revoke(_ lease: Lease, completion: @escaping (RevokeResult) -> Void) {
    revocations.append((lease, completion))
  }

  /// Answers every pending revoke (of `port`'s leases only, if given) with `result`; returns
  /// how many there were.
  @discardableResult
  func answerRevocations(_ result: RevokeResult, port: Int? = nil) -> Int {
    let matching = revocations.filter { port == nil || $0.lease.server.port == port }
    revocations.removeAll { port == nil || $0.lease.server.port == port }
    for check in matching { check.completion(result) }
    return matching.count
  }

  /// Answers every pending check of `port` with `result`; returns how many there were.
  @discardableResult
  func answer(_ port: Int, _ result: ServerPool.CheckResult) -> Int {
    let matching = pending.filter { $0.server.port == port }
    pending.removeAll { $0.server.port == port }
    for check in matching { check.completion(result) }
    return matching.count
  }
}

final class ServerPoolTests: SupervisedBalancerTestCase {
  override func setUp() {
    setUpBalancer([5001, 5002])
    supervisor.heartbeatInterval = 1e6  // only the heartbeat test wants them
  }

  private var pool: ServerPool { balancer.pool }
  private var broker: ServerBroker { balancer.broker }
  private var free: [Int] { balancer.free }
  private var counts: LeaseCounts { balancer.counts }

  private func take() -> FakeClient {
    let client = FakeClient()
    client.request(balancer, "/")
    return client
  }

  private func assertCountersAddUp(file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(
      counts.issued, counts.reported + counts.expired + counts.reclaimed + counts.inFlight,
      file: file, line: line)
  }

  func testAnUnreportedLeaseIsCheckedAtItsDeadlineAndAnIdleServerComesBack() {
    _ = take()  // a client that never follows its redirect
    clock.advance(59)
    supervisor.tick(now: clock.now)
    XCTAssertTrue(probe.pending.isEmpty)
    clock.advance(2)
    supervisor.tick(now: clock.now)
    supervisor.tick(now: clock.now)  // no second check while one is under way
    XCTAssertEqual(probe.pending.count, 1)
    probe.answer(5001, .idle)
    XCTAssertEqual(free, [5002, 5001])
    XCTAssertEqual(counts.expired, 1)
    assertCountersAddUp()
  }

  func testABusyServerHasItsLeaseExtended() {
    let client = take()
    clock.advance(61)
    supervisor.tick(now: clock.now)
    probe.answer(5001, .busy)
    XCTAssertEqual(free, [5002])
    guard let lease = broker.store.leases(of: ServerAddress(port: 5001)).first else {
      return XCTFail("should still be leased")
    }
    XCTAssertEqual(lease.extensions, 1)
    // Its report, when it comes, still ends the lease.
    let reporter = FakeClient()
    reporter.request(balancer, "/port_update/5001?lease=\(client.lease!)")
    XCTAssertEqual(reporter.status, 200)
    assertCountersAddUp()
  }

  func testAReportDuringTheCheckWinsAndTheCheckIsIgnored() {
    let client = take()
    clock.advance(61)
    supervisor.tick(now: clock.now)
    FakeClient().request(balancer, "/port_update/5001?lease=\(client.lease!)")
    probe.answer(5001, .idle)
    XCTAssertEqual(free, [5002, 5001])
    XCTAssertEqual(counts.reported, 1)
    XCTAssertEqual(counts.expired, 0)
    assertCountersAddUp()
  }

  func testASilentServerIsMarkedDownNeverHandedOutAndProbedWithBackOff() {
    let client = take()
    clock.advance(61)
    supervisor.tick(now: clock.now)
    probe.answer(5001, .unreachable)
    guard case .down = pool.health(of: ServerAddress(port: 5001)) else { return XCTFail("down") }
    XCTAssertEqual(free, [5002])
    // Its late report is refused: the lease ended when it went down.
    let reporter = FakeClient()
    reporter.request(balancer, "/port_update/5001?lease=\(client.lease!)")
    XCTAssertEqual(reporter.status, 409)

    // Probes back off: 1 s, then 2 s, then 4 s.
    var probeTimes: [Double] = []
    for step in 1...80 {
      clock.advance(0.1)
      supervisor.tick(now: clock.now)
      if probe.answer(5001, .unreachable) > 0 { probeTimes.append(Double(step) / 10) }
    }
    XCTAssertEqual(probeTimes.count, 3, "\(probeTimes)")
    XCTAssertEqual(probeTimes[0], 1.0, accuracy: 0.11)
    XCTAssertEqual(probeTimes[1] - probeTimes[0], 2.0, accuracy: 0.11)
    XCTAssertEqual(probeTimes[2] - probeTimes[1], 4.0, accuracy: 0.11)

    // While it is down, clients are served by the other server only.
    XCTAssertEqual(take().server, "http://lb.example:5002/5002")
    let waiting = take()
    XCTAssertTrue(waiting.responses.isEmpty)

    clock.advance(10)
    supervisor.tick(now: clock.now)
    probe.answer(5001, .idle)
    // Back once the lease that ended while it was down is revoked there, and it is still idle.
    XCTAssertEqual(probe.revocations.last?.lease.token, client.lease)
    probe.answerRevocations(.revoked, port: 5001)
    probe.answer(5001, .idle)
    XCTAssertEqual(waiting.server, "http://lb.example:5001/5001")
    assertCountersAddUp()
  }

  func testAServerWhoseProcessRestartedIsProbedSoon() {
    broker.markDown(ServerAddress(port: 5001), now: clock.now)
    clock.advance(0.3)
    supervisor.tick(now: clock.now)
    probe.answer(5001, .unreachable)  // not listening yet: back-off would wait a second
    clock.advance(0.1)
    broker.probeSoon(ServerAddress(port: 5001), now: clock.now)
    clock.advance(0.2)
    supervisor.tick(now: clock.now)
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(free, [5002, 5001])
  }

  func testEveryServerDownMeansWaitingClientsGet503AtTheirTimeout() {
    balancer.queue.waitTimeout = 5
    _ = take()
    _ = take()
    clock.advance(61)
    supervisor.tick(now: clock.now)
    probe.answer(5001, .unreachable)
    probe.answer(5002, .unreachable)
    let client = take()
    clock.advance(5.1)
    supervisor.tick(now: clock.now)
    XCTAssertEqual(client.status, 503)
  }

  func testAFreeServerThatStopsAnsweringIsTakenOutOfTheQueue() {
    supervisor.heartbeatInterval = 5
    clock.advance(1e6 + 1)  // past the first-tick stamp of zero
    supervisor.tick(now: clock.now)
    XCTAssertEqual(probe.pending.map(\.server.port), [5001, 5002])
    probe.answer(5001, .unreachable)
    probe.answer(5002, .idle)
    XCTAssertEqual(free, [5002])
    guard case .down = pool.health(of: ServerAddress(port: 5001)) else { return XCTFail("down") }
    clock.advance(1)
    supervisor.tick(now: clock.now)
    // The down one is probed, 5002 not yet.
    XCTAssertEqual(probe.pending.map(\.server.port), [5001])
    probe.answer(5001, .idle)
    XCTAssertEqual(free, [5002, 5001])
    clock.advance(5)
    supervisor.tick(now: clock.now)
    XCTAssertEqual(Set(probe.pending.map(\.server.port)), [5001, 5002])
  }

  func testServersAddedAsStartingWaitForTheirFirstProbe() throws {
    let removed = ServerAddress(port: 5002)
    var gone: [ServerAddress] = []
    pool.onRemoved = { gone.append($0) }
    let change = try addStarting5003()
    XCTAssertEqual(change.added.map(\.port), [5003])
    XCTAssertEqual(gone, [removed])
    XCTAssertEqual(free, [5001])
    // Until it answers it is starting, not down (it was shown as down, since when).
    XCTAssertEqual(broker.stateName(starting), "starting")
    XCTAssertNil(downSince(of: starting))
    let lines = firstProbeAnswers { XCTAssertEqual(broker.stateName(starting), "starting") }
    XCTAssertEqual(free, [5001, 5003])
    XCTAssertEqual(broker.stateName(starting), "free")
    // A server that was starting has started; it was never down.
    XCTAssertEqual(lines.count, 1)
    XCTAssertTrue(lines[0].hasPrefix("5003: started, after 0.3"), "\(lines)")
  }

  /// A starting server whose process exits before it answers is down (the process is started
  /// again with back-off); once it answers, it has started.
  func testAStartingServerWhoseProcessExitsIsDown() throws {
    _ = try addStarting5003()
    pool.processExited(ServerAddress(port: 5001))  // up: nothing changes
    XCTAssertEqual(broker.stateName(ServerAddress(port: 5001)), "free")
    XCTAssertEqual(broker.stateName(starting), "starting")
    pool.processExited(starting)
    XCTAssertEqual(broker.stateName(starting), "down")
    XCTAssertNotNil(downSince(of: starting))
    pool.processStarted(starting)  // again, after its back-off
    XCTAssertEqual(broker.stateName(starting), "starting")
    pool.processExited(starting)
    let lines = firstProbeAnswers()
    XCTAssertEqual(broker.stateName(starting), "free")
    XCTAssertTrue(lines.first?.hasPrefix("5003: started, after 0.3") ?? false, "\(lines)")
  }

  private let starting = ServerAddress(port: 5003)

  /// The pool becomes 5001 and 5003, whose process the balancer starts (5002 leaves).
  private func addStarting5003() throws -> ServerPool.Change {
    try broker.reconfigure(
      [5001, 5003].map { ServerAddress(port: $0) }, startingDown: [starting],
      launched: [starting], now: clock.now)
  }

  /// 0.3 s later, 5003 is probed (`beforeAnswer` runs then) and answers idle: the pool's log
  /// lines meanwhile.
  private func firstProbeAnswers(beforeAnswer: () -> Void = {}) -> [String] {
    var lines: [String] = []
    pool.log = { lines.append($0) }
    clock.advance(0.3)
    supervisor.tick(now: clock.now)
    beforeAnswer()
    probe.answer(5003, .idle)
    return lines
  }

  private func downSince(of server: ServerAddress) -> String? {
    broker.status(now: clock.now).servers.first { $0.server == server.description }?.downSince
  }

  func testReconfigureAddsAndRemoves() throws {
    let leased = take()  // 5001
    let change = try broker.reconfigure([5002, 5003].map { ServerAddress(port: $0) })
    XCTAssertEqual(change.added.map(\.port), [5003])
    XCTAssertEqual(change.removed.map(\.port), [5001])
    XCTAssertEqual(free, [5002, 5003])
    // The removed server's job completes and its report is accepted, but it is not queued.
    let reporter = FakeClient()
    reporter.request(balancer, "/port_update/5001?lease=\(leased.lease!)")
    XCTAssertEqual(reporter.status, 200)
    XCTAssertEqual(free, [5002, 5003])
    XCTAssertNil(pool.health(of: ServerAddress(port: 5001)))
    reporter.request(balancer, "/port_update/5001")
    XCTAssertEqual(reporter.status, 404)
    // A free server that is removed is never handed out again.
    try broker.reconfigure([ServerAddress(port: 5003)])
    XCTAssertEqual(free, [5003])
    XCTAssertEqual(pool.servers.map(\.port), [5003])
    assertCountersAddUp()
  }

  /// `5002` replaced by `127.0.0.1:5002` (the same process) while `5002` runs a job: the new
  /// spelling is not handed out until that job's lease ends, then once.
  func testAServerReaddedUnderAnotherSpellingWaitsForItsOldLease() throws {
    _ = take()  // 5001
    let leased = take()  // 5002
    let respelled = ServerAddress(host: "127.0.0.1", port: 5002)
    try broker.reconfigure([ServerAddress(port: 5001), respelled])
    XCTAssertEqual(free, [], "the process behind 5002 is still busy with its job")
    let waiting = take()
    XCTAssertNil(waiting.status)
    FakeClient().request(balancer, "/port_update/5002?lease=\(leased.lease!)")
    XCTAssertEqual(waiting.status, 302)
    XCTAssertEqual(waiting.server, "http://127.0.0.1:5002/5002")
    XCTAssertEqual(free, [])
    XCTAssertEqual(broker.stateName(respelled), "leased")

    // And back to the first spelling while the second one's job runs.
    try broker.reconfigure([ServerAddress(port: 5001), ServerAddress(port: 5002)])
    XCTAssertEqual(free, [])
    FakeClient().request(balancer, "/port_update/5002?lease=\(waiting.lease!)")
    XCTAssertEqual(free, [5002])
    assertCountersAddUp()
  }

  func testReconfigureToTheSameListChangesNothing() throws {
    let leased = take()
    let change = try broker.reconfigure([5001, 5002].map { ServerAddress(port: $0) })
    XCTAssertEqual(change.added, [])
    XCTAssertEqual(change.removed, [])
    XCTAssertEqual(free, [5002])
    FakeClient().request(balancer, "/port_update/5001?lease=\(leased.lease!)")
    XCTAssertEqual(free, [5002, 5001])
  }

  /// A long random mix of takes, reports (right, wrong, repeated), expiries, outages and
  /// reconfigurations: no server is ever in the queue twice or while leased or down, and the
  /// counters always add up.
  func testRandomOperationsKeepTheInvariants() throws {
    var random = SeededGenerator(seed: 7)
    var clients: [FakeClient] = []
    let all = (5001...5006).map { ServerAddress(port: $0) }
    for _ in 0..<5000 {
      switch random.next() % 10 {
      case 0, 1:
        clients.append(take())
      case 2:
        if let client = clients.randomElement(using: &random), let location = client.server {
          let port = location.split(separator: "/").last!
          let token = random.next() % 4 == 0 ? "bogus" : client.lease!
          FakeClient().request(balancer, "/port_update/\(port)?lease=\(token)")
        }
      case 3:
        clock.advance(Double(random.next() % 30))
        supervisor.tick(now: clock.now)
      case 4:
        if let check = probe.pending.first {
          let results: [ServerPool.CheckResult] = [.idle, .busy, .unreachable]
          probe.answer(check.server.port, results[Int(random.next() % 3)])
        }
      case 5:
        let subset = all.filter { _ in random.next() % 3 != 0 }
        try broker.reconfigure(subset.isEmpty ? [all[0]] : subset)
      case 6:
        clients.randomElement(using: &random)?.responder?.cancel()
      case 7:
        // Claim checks, and revokes of leases that ended while their server was down: the
        // server revoked the lease, saw its client, cannot tell, or does not answer.
        let results: [RevokeResult] = [.revoked, .started, .unknown, .unreachable]
        probe.answerRevocations(results[Int(random.next() % 4)])
      case 8:
        // A late client's server reports a lease that may have been revoked meanwhile.
        if let client = clients.randomElement(using: &random), let lease = client.lease,
          let location = client.server
        {
          let port = location.split(separator: "/").last!
          FakeClient().request(balancer, "/port_update/\(port)?lease=\(lease)")
        }
      default:
        FakeClient().request(balancer, "/port_update/\(5001 + Int(random.next() % 6))")
      }
      let queued = broker.dispatcher.freeServers
      XCTAssertEqual(Set(queued).count, queued.count, "a server queued twice")
      XCTAssertTrue(
        queued.isEmpty || balancer.waitingCount == 0, "a free server while clients wait")
      let isFree = { (server: ServerAddress) in
        self.pool.canServe(server) && self.broker.store.inFlight(server) == 0
      }
      for server in queued {
        XCTAssertTrue(isFree(server), "\(server) queued but not free")
        XCTAssertNil(broker.store.strandedLeases(of: server), "\(server) queued but held back")
      }
      for server in pool.servers where isFree(server) {
        XCTAssertTrue(queued.contains(server), "\(server) free but lost from the queue")
      }
      for server in pool.servers {
        XCTAssertLessThanOrEqual(broker.store.inFlight(server), 1, "\(server) leased twice")
      }
      assertCountersAddUp()
    }
    // The mix really reached every way a lease ends (and handed out fewer servers since one
    // listed again is held back by the leases stranded when it left).
    XCTAssertGreaterThan(counts.reported, 50)
    XCTAssertGreaterThan(counts.expired, 50)
    XCTAssertGreaterThan(counts.reclaimed, 50)
    XCTAssertGreaterThan(counts.issued, 400)
  }
}
