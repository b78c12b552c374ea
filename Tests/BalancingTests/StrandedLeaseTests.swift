import XCTest

@testable import Balancing

/// A partition between the balancer and 5001, without sockets: the check of a lease whose
/// client has not come yet (its connection is held up by the same partition) gets no answer, so
/// the lease ends and 5001 is down. Once the network heals, that client reaches 5001 with its
/// lease: unless the lease was revoked there first, it starts a job on a server the balancer
/// may have leased to someone else meanwhile.
final class StrandedLeaseTests: SupervisedBalancerTestCase {
  override func setUp() { setUpBalancer([5001, 5002]) }

  private var free: [Int] { balancer.free }

  /// 5001 leased, cut off until its lease's check finds it silent (down). Returns the stranded
  /// lease's token.
  private func strandALease() -> String {
    let stranded = FakeClient()
    stranded.request(balancer, "/")
    XCTAssertEqual(stranded.server, "http://lb.example:5001/5001")
    tick(after: 61)
    probe.answerRevocations(.unknown)  // the claim check got nowhere either
    XCTAssertEqual(probe.answer(5001, .unreachable), 1)
    XCTAssertEqual(free, [5002])
    return stranded.lease!
  }

  /// `strandALease`, then 5001 is reachable again: its probe, answered `idle`, starts the
  /// revocation. Returns the stranded lease's token.
  private func strandALeaseAndHeal() -> String {
    let token = strandALease()
    tick(after: 1.1)
    XCTAssertEqual(probe.answer(5001, .idle), 1, "the network healed")
    return token
  }

  /// Found by hand in network namespaces: link down mid-lease, up again. The server was back
  /// in the queue on the probe's first answer, and the held-up client started a job on it.
  func testAServerFoundDownIsHandedOutAgainOnlyOnceItsStrandedLeaseIsRevokedThere() {
    let token = strandALeaseAndHeal()
    XCTAssertEqual(free, [5002], "not handed out while the stranded lease is usable there")
    XCTAssertEqual(probe.revocations.map(\.lease.token), [token])
    XCTAssertEqual(probe.answerRevocations(.revoked), 1)
    XCTAssertEqual(free, [5002], "not before a check made after the revoke")
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(free, [5002, 5001])
    XCTAssertTrue(probe.revocations.isEmpty)
    assertCountersAddUp()
  }

  /// Review finding 1 of the first attempt (4499d16): a revoke answering `started` (the client
  /// came first) still brought the server back. It is busy with that job: out of the queue
  /// until a check finds it idle.
  func testAServerWhoseStrandedLeaseStartedIsHeldBackUntilItIsIdle() {
    _ = strandALeaseAndHeal()
    XCTAssertEqual(probe.answerRevocations(.started), 1)
    XCTAssertEqual(probe.answer(5001, .busy), 1, "checked after the revoke")
    XCTAssertEqual(free, [5002], "busy with the stranded lease's job")
    guard case .down = balancer.pool.health(of: ServerAddress(port: 5001)) else {
      return XCTFail("held back as down")
    }
    tick(after: 1.1)
    XCTAssertEqual(probe.answer(5001, .busy), 1, "asked again in a second")
    XCTAssertTrue(probe.revocations.isEmpty, "nothing left to revoke")
    XCTAssertEqual(free, [5002])
    tick(after: 1.1)
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(free, [5002, 5001])
    assertCountersAddUp()
  }

  /// Review finding 2: a server that died during the revokes was handed out on the probe's
  /// earlier answer. The check after the revokes finds it silent: it stays down, and comes
  /// back at a later probe, with nothing left to revoke.
  func testAServerThatDiesDuringTheRevokesIsNotHandedOut() {
    _ = strandALeaseAndHeal()
    XCTAssertEqual(probe.answerRevocations(.revoked), 1)
    XCTAssertEqual(probe.answer(5001, .unreachable), 1, "died meanwhile")
    XCTAssertEqual(free, [5002])
    tick(after: 1.1)
    XCTAssertEqual(probe.answer(5001, .unreachable), 0, "backs off: 2 s now")
    tick(after: 1)
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertTrue(probe.revocations.isEmpty, "revoked already")
    XCTAssertEqual(free, [5002, 5001])
    assertCountersAddUp()
  }

  /// Review finding 3: a revoke that got no answer was dropped, and the lease stayed usable at
  /// the server. The server stays down, and the revoke is asked again at its next probe, a
  /// second later: it did answer its check, so no back-off.
  func testARevokeThatGetsNoAnswerKeepsTheServerDownAndIsAskedAgain() {
    let token = strandALeaseAndHeal()
    XCTAssertEqual(probe.answerRevocations(.unreachable), 1)
    XCTAssertTrue(probe.pending.isEmpty, "no check: it stays down")
    XCTAssertEqual(free, [5002])
    tick(after: 1.1)
    XCTAssertEqual(probe.answer(5001, .idle), 1, "probed again a second later")
    XCTAssertEqual(probe.revocations.map(\.lease.token), [token], "asked again")
    XCTAssertEqual(free, [5002])
    XCTAssertEqual(probe.answerRevocations(.revoked), 1)
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(free, [5002, 5001])
    assertCountersAddUp()
  }

  /// A server written for the original has no `/revoke`: it answers, but cannot tell. Asking
  /// again would tell no more, so it comes back once idle, as before.
  func testAServerThatCannotRevokeComesBackOnceIdle() {
    _ = strandALeaseAndHeal()
    XCTAssertEqual(probe.answerRevocations(.unknown), 1)
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(free, [5002, 5001])
  }

  /// Under a policy that gives a server several leases at once, every lease that ended when it
  /// went down is revoked there, and it comes back only once all are settled.
  func testEveryLeaseThatEndedWhenItsServerWentDownIsRevoked() throws {
    balancer = makeBalancer([5001], clock: clock, policy: RoundRobinPolicy())
    supervisor = PoolSupervisor(broker: balancer.broker, probe: probe)
    supervisor.heartbeatInterval = .infinity
    let tokens = (0..<3).map { _ -> String in
      let client = FakeClient()
      client.request(balancer, "/")
      return client.lease!
    }
    balancer.broker.markDown(ServerAddress(port: 5001), now: clock.now)
    tick(after: 0.3)
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(Set(probe.revocations.map(\.lease.token)), Set(tokens))
    let first = try XCTUnwrap(probe.revocations.first)
    probe.revocations.removeFirst()
    first.completion(.revoked)
    XCTAssertTrue(probe.pending.isEmpty, "not checked before every revoke is answered")
    XCTAssertEqual(probe.answerRevocations(.revoked), 2)
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(balancer.broker.stateName(ServerAddress(port: 5001)), "free")
  }

  /// Review finding: the stranded leases of a server were forgotten when it left the pool, so
  /// that, listed again, it was handed out at once, with no probe and no revoke. It joins down,
  /// and comes back as it would have had it stayed.
  func testAServerRemovedAndListedAgainIsHandedOutOnlyOnceItsStrandedLeaseIsRevoked() throws {
    let token = strandALease()
    try balancer.broker.reconfigure([ServerAddress(port: 5002)], now: clock.now)
    try balancer.broker.reconfigure([5002, 5001].map { ServerAddress(port: $0) }, now: clock.now)
    XCTAssertEqual(free, [5002], "not handed out while the stranded lease is usable there")
    XCTAssertEqual(balancer.broker.stateName(ServerAddress(port: 5001)), "down")
    tick(after: 0.3)
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(probe.revocations.map(\.lease.token), [token])
    XCTAssertEqual(probe.answerRevocations(.revoked), 1)
    XCTAssertEqual(free, [5002])
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(free, [5002, 5001])
    XCTAssertTrue(balancer.broker.store.strandedServers.isEmpty, "forgotten once revoked")
  }

  /// The same, listed again under another spelling of the same process in one change: the new
  /// entry is held back by the old one's stranded lease, and revokes it.
  func testAServerListedAgainUnderAnotherSpellingRevokesTheOldEntrysStrandedLease() throws {
    let token = strandALease()
    let respelled = ServerAddress(host: "127.0.0.1", port: 5001)
    try balancer.broker.reconfigure([ServerAddress(port: 5002), respelled], now: clock.now)
    XCTAssertEqual(free, [5002], "not handed out while the stranded lease is usable there")
    XCTAssertEqual(balancer.broker.stateName(respelled), "down")
    tick(after: 0.3)
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(probe.revocations.map(\.lease.token), [token])
    XCTAssertEqual(probe.revocations.map(\.lease.server), [respelled], "asked at the new entry")
    XCTAssertEqual(probe.answerRevocations(.revoked), 1)
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(balancer.broker.stateName(respelled), "free")
    XCTAssertTrue(balancer.broker.store.strandedServers.isEmpty, "forgotten once revoked")
  }

  /// Review (second pass): 5001, leased, is listed again as `127.0.0.1:5001` (held back: one
  /// process), then the old entry's lease check gets no answer (a partition). The lease ended
  /// without being stranded and the old entry was dropped, so the new one was handed out at once:
  /// the held-up client could start a job there once the network healed.
  func testARetiredEntryFoundSilentHandsItsStrandedLeaseToTheEntryListingItsProcess() throws {
    let held = FakeClient()
    held.request(balancer, "/")
    XCTAssertEqual(held.server, "http://lb.example:5001/5001")
    let respelled = ServerAddress(host: "127.0.0.1", port: 5001)
    try balancer.broker.reconfigure([ServerAddress(port: 5002), respelled], now: clock.now)
    XCTAssertEqual(free, [5002], "held back while 5001 is leased")
    tick(after: 61)
    probe.answerRevocations(.unknown)  // the claim check got nowhere either
    XCTAssertEqual(probe.answer(5001, .unreachable), 1)
    XCTAssertEqual(free, [5002], "not handed out while the old lease is usable there")
    XCTAssertEqual(balancer.broker.stateName(respelled), "down")
    tick(after: 1.1)
    XCTAssertEqual(probe.answer(5001, .idle), 1, "the network healed")
    XCTAssertEqual(probe.revocations.map(\.lease.token), [held.lease])
    XCTAssertEqual(probe.answerRevocations(.revoked), 1)
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(free, [5002, 5001])
  }

  /// Review (second pass): removed while leased, its lease check unanswered, then listed again
  /// under the same name: it joined up and was handed out with no probe and no revoke.
  func testARemovedServerFoundSilentIsRevokedWhenListedAgain() throws {
    let held = FakeClient()
    held.request(balancer, "/")
    try balancer.broker.reconfigure([ServerAddress(port: 5002)], now: clock.now)
    tick(after: 61)
    probe.answerRevocations(.unknown)
    XCTAssertEqual(probe.answer(5001, .unreachable), 1)
    try balancer.broker.reconfigure([5002, 5001].map { ServerAddress(port: $0) }, now: clock.now)
    XCTAssertEqual(free, [5002], "not handed out with its lease unrevoked")
    tick(after: 1.1)
    XCTAssertEqual(probe.answer(5001, .idle), 1)
    XCTAssertEqual(probe.revocations.map(\.lease.token), [held.lease])
  }

  private func assertCountersAddUp(file: StaticString = #filePath, line: UInt = #line) {
    let counts = balancer.counts
    XCTAssertEqual(
      counts.issued, counts.reported + counts.expired + counts.reclaimed + counts.inFlight,
      file: file, line: line)
  }
}
