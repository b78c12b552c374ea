import Documents
import XCTest

@testable import Balancing

/// Claim checks, reports without a lease, and the per-client limit, without sockets.
final class ClaimCheckTests: SupervisedBalancerTestCase {
  override func setUp() {
    setUpBalancer([5001])
    balancer.broker.issuer.claimTimeout = 3
  }

  func testARevokedLeaseGoesToTheNextClientAtOnce() {
    let squatter = FakeClient()
    squatter.request(balancer, "/")
    let waiting = FakeClient()
    waiting.request(balancer, "/")
    tick(after: 2.9)
    XCTAssertEqual(probe.revocations.count, 0)
    tick(after: 0.2)
    XCTAssertEqual(probe.revocations.map(\.lease.token), [squatter.lease!])
    tick(after: 0.1)
    XCTAssertEqual(probe.revocations.count, 1, "checked once")
    probe.answerRevocations(.revoked)
    XCTAssertEqual(waiting.status, 302)
    XCTAssertEqual(balancer.counts.reclaimed, 1)
    // The squatter's server cannot report the revoked lease.
    let late = FakeClient()
    late.request(balancer, "/port_update/5001?lease=\(squatter.lease!)")
    XCTAssertEqual(late.status, 409)
    XCTAssertEqual(balancer.counts.inFlight, 1)
  }

  func testAStartedLeaseRunsOnAndOneTheServerCannotTellAboutKeepsItsDeadline() {
    let client = FakeClient()
    client.request(balancer, "/")
    tick(after: 3.1)
    probe.answerRevocations(.started)
    tick(after: 10)
    XCTAssertEqual(probe.revocations.count, 0, "a started lease is not checked again")
    XCTAssertEqual(
      balancer.broker.store.leases(of: ServerAddress(port: 5001)).first?.claim, .started)
    FakeClient().request(balancer, "/port_update/5001?lease=\(client.lease!)")
    let next = FakeClient()
    next.request(balancer, "/")
    tick(after: 3.1)
    probe.answerRevocations(.unknown)
    tick(after: 10)
    XCTAssertEqual(probe.revocations.count, 0)
    XCTAssertEqual(balancer.broker.stateName(ServerAddress(port: 5001)), "leased")
    XCTAssertEqual(probe.pending.count, 0, "the lease timeout (60 s) has not passed")
  }

  func testAReportWithoutALeaseIsAcceptedOnlyFromTheServerItselfAndOnlyBeforeItUsesLeases() {
    let first = FakeClient()
    first.request(balancer, "/")
    let foreign = FakeClient()
    foreign.request(balancer, "/port_update/5001", from: "10.9.9.9")
    XCTAssertEqual(foreign.status, 403)
    let own = FakeClient()
    own.request(balancer, "/port_update/5001", from: "127.0.0.1")
    XCTAssertEqual(own.status, 200, "a server written for the original")
    let second = FakeClient()
    second.request(balancer, "/")
    FakeClient().request(balancer, "/port_update/5001?lease=\(second.lease!)")
    let third = FakeClient()
    third.request(balancer, "/")
    let tokenless = FakeClient()
    tokenless.request(balancer, "/port_update/5001", from: "127.0.0.1")
    XCTAssertEqual(tokenless.status, 409, "the server reports with leases now")
    XCTAssertEqual(balancer.broker.refusedReports, ["foreign_source": 1, "lease_required": 1])
    XCTAssertEqual(balancer.counts.inFlight, 1)
  }

  func testAClientHoldingTooManyUnusedLeasesGets429() throws {
    balancer = makeBalancer([5001, 5002, 5003], clock: clock)
    balancer.broker.maxLeasesPerClient = 2
    let client = FakeClient()
    client.request(balancer, "/", from: "10.0.0.1")
    let firstLease = client.lease!
    client.request(balancer, "/", from: "10.0.0.1")
    client.request(balancer, "/", from: "10.0.0.1")
    XCTAssertEqual(client.status, 429)
    XCTAssertEqual(client.last?.headers["Retry-After"], "3")
    let other = FakeClient()
    other.request(balancer, "/", from: "10.0.0.2")
    XCTAssertEqual(other.status, 302)
    // Once the server saw the client use a lease, it no longer counts against it.
    balancer.broker.store.setClaim(firstLease, .started)
    let answered = client.responses.count
    client.request(balancer, "/", from: "10.0.0.1")
    XCTAssertEqual(client.responses.count, answered, "not refused: it waits for a server")
    XCTAssertEqual(balancer.waitingCount, 1)
    XCTAssertEqual(try PoolStatus.decode(statusBody()).refusedClients, 1)
  }

  /// A client may not hoard servers by queueing for them: a request waiting in line counts
  /// toward the limit as the lease it will become.
  func testRequestsWaitingInLineCountTowardTheLimit() throws {
    balancer = makeBalancer([5001, 5002], clock: clock)
    balancer.broker.maxLeasesPerClient = 1
    let holders = [FakeClient(), FakeClient()]
    holders[0].request(balancer, "/", from: "10.0.0.2")
    holders[1].request(balancer, "/", from: "10.0.0.3")
    let first = FakeClient()
    let second = FakeClient()
    first.request(balancer, "/", from: "10.0.0.4")
    XCTAssertEqual(first.responses.count, 0, "it waits for a server")
    second.request(balancer, "/", from: "10.0.0.4")
    XCTAssertEqual(second.status, 429, "one unused lease or place in line already")
    for holder in holders {
      let port = try XCTUnwrap(holder.server?.components(separatedBy: "/").last)
      FakeClient().request(balancer, "/port_update/\(port)?lease=\(holder.lease!)")
    }
    XCTAssertEqual(first.status, 302)
    XCTAssertEqual(balancer.broker.store.unclaimedCount(of: "10.0.0.4"), 1, "one lease, not two")

    // A place in line given up no longer counts.
    let leaving = FakeClient()
    leaving.request(balancer, "/", from: "10.0.0.5")
    XCTAssertEqual(leaving.status, 302, "the second server was free")
    balancer.broker.store.setClaim(leaving.lease!, .started)
    let gone = FakeClient()
    gone.request(balancer, "/", from: "10.0.0.5")
    XCTAssertEqual(gone.responses.count, 0, "it waits")
    gone.responder?.cancel()
    XCTAssertEqual(balancer.waitingCount, 0)
    let back = FakeClient()
    back.request(balancer, "/", from: "10.0.0.5")
    XCTAssertEqual(back.responses.count, 0, "not refused: it waits again")
    XCTAssertEqual(try PoolStatus.decode(statusBody()).refusedClients, 1)
  }

  /// A lease's times may come from another balancer's books, ahead of this clock: the time it
  /// ran is then 0, not an overflow that stops the balancer.
  func testALeaseIssuedAheadOfTheClockIsReportedAndCheckedWithoutOverflow() throws {
    clock.advance(100)
    balancer = makeBalancer([5001, 5002], clock: clock)
    supervisor = PoolSupervisor(broker: balancer.broker, probe: probe)
    supervisor.heartbeatInterval = .infinity
    var lines: [String] = []
    balancer.broker.log = { lines.append($0) }
    let reported = FakeClient()
    reported.request(balancer, "/")
    let checked = FakeClient()
    checked.request(balancer, "/")
    balancer.broker.store.setClaim(checked.lease!, .started)
    clock.now -= 10_000_000_000  // the clock now reads 10 s before both leases were issued
    let report = FakeClient()
    report.request(balancer, "/port_update/5001?lease=\(reported.lease!)")
    XCTAssertEqual(report.status, 200)
    XCTAssertTrue(lines.contains { $0.contains("reported after 0.000 s") }, "\(lines)")
    // The other lease comes due (60 s on, by this clock) and its server says it is busy.
    tick(after: 71)
    XCTAssertEqual(probe.answer(5002, .busy), 1)
    XCTAssertTrue(lines.contains { $0.contains("lease unreported for 61.000 s") }, "\(lines)")
    XCTAssertNotNil(try PoolStatus.decode(statusBody()).servers.first { $0.leaseAge != nil })
  }

  private func statusBody() -> [UInt8] {
    let client = FakeClient()
    client.request(balancer, "/status")
    return client.last!.body
  }
}

/// When the balancer cannot even open a socket to ask, it learns nothing of the server: no
/// server is marked down for the balancer's own shortage.
final class InconclusiveProbeTests: XCTestCase {
  func testAProbeThatCouldNotBeMadeMarksNothingDown() {
    let clock = FakeClock()
    let balancer = makeBalancer([5001, 5002], clock: clock, leaseTimeout: 1)
    let probe = ScriptedProbe()
    let supervisor = PoolSupervisor(broker: balancer.broker, probe: probe)
    supervisor.heartbeatInterval = 1
    let client = FakeClient()
    client.request(balancer, "/")
    clock.advance(1.5)
    supervisor.tick(now: clock.now)
    XCTAssertEqual(probe.answer(5001, .inconclusive), 1, "the lease check")
    XCTAssertEqual(probe.pending.map(\.server.port), [5002], "a heartbeat")
    probe.answer(5002, .inconclusive)
    XCTAssertEqual(balancer.broker.stateName(ServerAddress(port: 5001)), "leased")
    XCTAssertEqual(balancer.broker.stateName(ServerAddress(port: 5002)), "free")
    clock.advance(1.1)
    supervisor.tick(now: clock.now)
    XCTAssertEqual(probe.answer(5001, .idle), 1, "the lease is checked again later")
    XCTAssertEqual(balancer.free, [5002, 5001])
  }
}
