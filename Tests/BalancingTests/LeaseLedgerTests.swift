import XCTest

@testable import Balancing

final class LeaseLedgerTests: XCTestCase {
  private let ledger = LeaseLedger()
  private let a = ServerAddress(port: 5001)
  private let b = ServerAddress(port: 5002)

  private func issue(_ token: String, _ server: ServerAddress, at time: UInt64 = 0) {
    ledger.issue(Lease(token: token, server: server, issued: time, deadline: time + 100)) {}
  }

  private func report(_ server: ServerAddress, _ token: String?) -> ReportOutcome? {
    var outcome: ReportOutcome?
    if let token {
      ledger.report(token: token, port: server.port) { outcome = $0 }
    } else {
      ledger.reportWithoutToken(server) { outcome = $0 }
    }
    return outcome
  }

  private func assertCountsAddUp(file: StaticString = #filePath, line: UInt = #line) {
    let counts = ledger.counts
    XCTAssertEqual(
      counts.issued, counts.reported + counts.expired + counts.inFlight, file: file, line: line)
  }

  func testAReportEndsTheLeaseItNamesOnce() {
    issue("t1", a)
    issue("t2", b)
    XCTAssertEqual(report(a, "t2"), .wrongToken(port: 5001), "b's lease, reported by a")
    XCTAssertEqual(report(a, "nope"), .wrongToken(port: 5001))
    guard case .released(let lease)? = report(a, "t1") else { return XCTFail("released") }
    XCTAssertEqual(lease.token, "t1")
    XCTAssertEqual(report(a, "t1"), .wrongToken(port: 5001), "reported already")
    XCTAssertEqual(report(a, nil), .notLeased(a))
    XCTAssertEqual(ledger.inFlight(a), 0)
    XCTAssertEqual(ledger.inFlight(b), 1)
    XCTAssertEqual(ledger.servedCount(a), 1)
    assertCountsAddUp()
  }

  func testAReportWithoutATokenEndsTheOldestLease() {
    issue("old", a, at: 1)
    issue("new", a, at: 2)
    guard case .released(let lease)? = report(a, nil) else { return XCTFail("released") }
    XCTAssertEqual(lease.token, "old")
    XCTAssertEqual(ledger.leases(of: a).map(\.token), ["new"])
    XCTAssertEqual(report(b, nil), .notLeased(b))
  }

  func testOverdueLeasesAreHandedOutForCheckingOnceThenExtendedOrExpired() {
    issue("t1", a, at: 0)
    issue("t2", b, at: 50)
    var due: [Lease] = []
    ledger.takeOverdue(now: 120) { due = $0 }
    XCTAssertEqual(due.map(\.token), ["t1"])
    ledger.takeOverdue(now: 130) { due = $0 }
    XCTAssertEqual(due, [], "being checked already")
    ledger.extend("t1", until: 500)
    XCTAssertEqual(ledger.leases(of: a).first?.extensions, 1)
    ledger.takeOverdue(now: 200) { due = $0 }
    XCTAssertEqual(due.map(\.token), ["t2"])
    var expired: Lease?
    ledger.expire("t2") { expired = $0 }
    XCTAssertEqual(expired?.token, "t2")
    ledger.expire("t2") { expired = $0 }
    XCTAssertNil(expired, "a lease ends once")
    XCTAssertEqual(ledger.counts.expired, 1)
    assertCountsAddUp()
  }

  func testExpireAllEndsEveryLeaseOfAServer() {
    issue("t1", a)
    issue("t2", a)
    issue("t3", b)
    var ended: [Lease] = []
    ledger.expireAll(of: a) { ended = $0 }
    XCTAssertEqual(Set(ended.map(\.token)), ["t1", "t2"])
    XCTAssertEqual(ledger.counts.inFlight, 1)
    XCTAssertEqual(ledger.counts.expired, 2)
    ledger.forget(a)
    XCTAssertEqual(ledger.servedCount(a), 0)
    ledger.forget(b)
    XCTAssertEqual(ledger.servedCount(b), 1, "a server still leased keeps its count")
    assertCountsAddUp()
  }
}
