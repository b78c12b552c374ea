import HTTPCore
import XCTest

@testable import Balancing

/// Servers that join a balancer that did not start them (`--no-spawn`) may still run a job they
/// took from a balancer before it: they are asked first (`ServerPool.finishJoinCheck`).
final class JoinCheckTests: SupervisedBalancerTestCase {
  /// A balancer over `ports`, up, that checks the servers that join later.
  private func setUpCheckingBalancer(_ ports: [Int] = []) {
    setUpBalancer(ports)
    balancer.replicas.checksJoiningServers = true
    balancer.replicas.clock = { self.clock.now }
  }

  private func list(_ ports: Int...) throws {
    _ = try balancer.replicas.apply(ServersFile(servers: ports.map { ServerAddress(port: $0) }))
  }

  /// Ticks `rounds` times, `seconds` apart, answering every check with `result` and every
  /// revoke with `.revoked`.
  private func run(rounds: Int, seconds: Double = 3, answering result: ServerPool.CheckResult) {
    for _ in 0..<rounds {
      tick(after: seconds)
      for _ in 0..<4 {
        for port in Set(probe.pending.map(\.server.port)) { probe.answer(port, result) }
        probe.answerRevocations(.revoked)
      }
    }
  }

  /// A server busy with a job from before is handed out only once it is idle; one that does not
  /// answer joins as listed. They join in the order listed, as a pool loaded at once is queued,
  /// whatever order their answers come in.
  func testAServerThatJoinsBusyIsHandedOutOnlyOnceItIsIdle() throws {
    setUpCheckingBalancer()
    try list(5001, 5002, 5003)
    let first = FakeClient()
    first.request(balancer, "/")
    XCTAssertNil(first.status, "no server is handed out before it was asked")
    supervisor.tick(now: clock.now)
    XCTAssertEqual(Set(probe.pending.map(\.server.port)), [5001, 5002, 5003])
    probe.answer(5001, .busy)
    probe.answer(5003, .unreachable)
    XCTAssertNil(first.status, "5003 (no answer: as listed) waits for 5002, listed before it")
    XCTAssertEqual(
      [5001, 5002, 5003].map { balancer.broker.stateName(ServerAddress(port: $0)) },
      ["checking", "checking", "checking"])
    probe.answer(5002, .idle)
    XCTAssertEqual(first.location?.contains(":5002/"), true)
    XCTAssertEqual(balancer.free, [5003])
    // 5001 is asked again a second later, and stays out while it is busy.
    tick(after: 1.1)
    XCTAssertEqual(probe.pending.map(\.server.port), [5001], "only the busy one is asked again")
    probe.answer(5001, .busy)
    XCTAssertEqual(balancer.free, [5003])
    tick(after: 1.1)
    probe.answer(5001, .idle)
    XCTAssertEqual(balancer.free, [5003, 5001])
    // Without the check (a launcher starts the servers, or other books know their leases), a
    // server that joins is free at once.
    balancer.replicas.checksJoiningServers = false
    try list(5001, 5002, 5003, 5004)
    XCTAssertEqual(balancer.free, [5003, 5001, 5004])
  }

  /// A server found idle, then held back behind one listed before it for longer than
  /// `joinCheckFreshness`, is asked again before it comes up: it may have taken a job from a
  /// client meanwhile, and is not handed out busy. One held back briefly comes up at once.
  func testAServerFoundIdleButHeldBackLongIsAskedAgain() throws {
    setUpCheckingBalancer()
    var announced = 0
    balancer.broker.onServersToCheck = { announced += 1 }
    try list(5001, 5002, 5003)
    XCTAssertEqual(announced, 1)
    supervisor.tick(now: clock.now)
    probe.answer(5002, .idle)
    clock.advance(0.1)
    probe.answer(5003, .idle)
    clock.advance(0.2)  // 5002's answer is 0.3 s old, 5003's 0.2 s
    probe.answer(5001, .unreachable)
    XCTAssertEqual(balancer.free, [5001])
    XCTAssertEqual(
      [5002, 5003].map { balancer.broker.stateName(ServerAddress(port: $0)) },
      ["checking", "checking"], "5003 waits behind 5002, asked again")
    XCTAssertEqual(announced, 2, "the program is told to ask at once")
    supervisor.tick(now: clock.now)
    XCTAssertEqual(probe.pending.map(\.server.port), [5002], "only the one held back long")
    probe.answer(5002, .busy)
    XCTAssertEqual(balancer.free, [5001, 5003], "5002 is not handed out busy; 5003 holds no job")
    tick(after: 1.1)
    probe.answer(5002, .idle)
    XCTAssertEqual(balancer.free, [5001, 5003, 5002])
  }

  /// A joining server brought up by a probe's answer (not through its join check) holds nobody
  /// back afterwards, however old its check's answer grows (helper-38's review).
  func testAJoiningServerBroughtUpByAProbeHoldsNobodyBack() {
    let (a, b, c) = (
      ServerAddress(port: 5001), ServerAddress(port: 5002), ServerAddress(port: 5003)
    )
    let second: UInt64 = 1_000_000_000
    var now = 10 * second
    let pool = ServerPool()
    _ = pool.reconfigure([a, b, c], checkedFirst: [a, b, c], now: now) { _ in false }
    _ = pool.serversToProbe(now: now)
    XCTAssertEqual(pool.finishJoinCheck(of: b, result: .idle, now: now), [])
    XCTAssertEqual(pool.finishJoinCheck(of: c, result: .idle, now: now + second / 10), [])
    XCTAssertTrue(pool.finishProbe(of: b, result: .idle, now: now))
    now += second
    XCTAssertEqual(pool.finishJoinCheck(of: a, result: .idle, now: now), [a])
    XCTAssertTrue(pool.takeJoinChecksDue(), "c, held back long, is asked again")
    XCTAssertEqual(pool.serversToProbe(now: now), [c], "b is up: it is not asked")
    XCTAssertEqual(pool.finishJoinCheck(of: c, result: .idle, now: now), [c])
    XCTAssertTrue([a, b, c].allSatisfy(pool.canServe))
  }

  /// The broker says when servers joined to be checked, so that the program asks them at once.
  func testServersThatJoinToBeCheckedAreAnnounced() throws {
    setUpCheckingBalancer([5001])
    var announced = 0
    balancer.broker.onServersToCheck = { announced += 1 }
    try list(5001, 5002)
    XCTAssertEqual(announced, 1)
    try list(5001, 5002)
    XCTAssertEqual(announced, 1, "nothing joined")
    balancer.replicas.checksJoiningServers = false
    try list(5001, 5002, 5003)
    XCTAssertEqual(announced, 1, "joined without a check")
  }

  /// A server found idle waits for the one listed before it while that one's check is
  /// unanswered; if that one leaves the pool meanwhile, it joins at once.
  func testAServerHeldBackByOneThatLeavesThePoolJoinsAtOnce() throws {
    setUpCheckingBalancer()
    try list(5001, 5002)
    supervisor.tick(now: clock.now)
    probe.answer(5002, .idle)
    XCTAssertEqual(balancer.free, [], "5002 waits for 5001, listed before it")
    try list(5002)
    XCTAssertEqual(balancer.free, [5002])
    probe.answer(5001, .idle)  // the answer for the server that left changes nothing
    XCTAssertEqual(balancer.free, [5002])
  }

  /// Removed while unanswered, then listed again, a server is checked afresh and comes up; the
  /// first probe's late answer lands on the new member harmlessly.
  func testAServerRemovedWhileUnansweredAndListedAgainComesUp() throws {
    setUpCheckingBalancer()
    try list(5001, 5002)
    supervisor.tick(now: clock.now)
    try list(5002)
    try list(5001, 5002)
    probe.answer(5002, .idle)
    probe.answer(5001, .busy)
    run(rounds: 3, answering: .idle)
    XCTAssertEqual(balancer.free, [5002, 5001])
  }

  /// 5001 left the pool while down, with a lease that ended unreported (stranded), and is
  /// listed again, before 5002: its stranded lease, not a join check, holds it back, and it
  /// holds nobody back.
  private func listAgainWithAStrandedLease() throws {
    setUpCheckingBalancer([5001])
    let client = FakeClient()
    client.request(balancer, "/")
    XCTAssertEqual(client.status, 302)
    tick(after: 61)
    probe.answer(5001, .unreachable)  // the overdue lease's check: down, the lease stranded
    probe.answerRevocations(.revoked)
    XCTAssertNotNil(balancer.broker.store.strandedLeases(of: ServerAddress(port: 5001)))
    try list(5009)
    XCTAssertNil(balancer.pool.health(of: ServerAddress(port: 5001)), "5001 left")
    try list(5001, 5002)
    supervisor.tick(now: clock.now)
    probe.answer(5002, .idle)
  }

  func testAServerWithStrandedLeasesBusyAtJoiningHoldsNobodyBack() throws {
    try listAgainWithAStrandedLease()
    XCTAssertEqual(balancer.free, [5002], "5002 does not wait for 5001")
    probe.answer(5001, .busy)
    XCTAssertEqual(probe.answerRevocations(.revoked), 1)
    probe.answer(5001, .busy)  // checked afresh once its lease is revoked
    XCTAssertEqual(balancer.free, [5002])
    run(rounds: 3, answering: .idle)
    XCTAssertEqual(balancer.free, [5002, 5001], "handed out once revoked and idle")
  }

  func testAServerWithStrandedLeasesSilentAtJoiningIsHandedOutOnceItAnswers() throws {
    try listAgainWithAStrandedLease()
    probe.answer(5001, .unreachable)
    XCTAssertFalse(balancer.pool.canServe(ServerAddress(port: 5001)), "down while silent")
    run(rounds: 10, answering: .idle)
    XCTAssertEqual(balancer.free, [5002, 5001])
  }
}
