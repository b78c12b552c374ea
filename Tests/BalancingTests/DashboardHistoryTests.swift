import Documents
import XCTest

@testable import Balancing

final class DashboardHistoryTests: XCTestCase {
  private let status = PoolStatus(
    servers: [], queue: [], waiting: 0, policy: "queue",
    totals: PoolStatus.Totals(leased: 0, reported: 0, expired: 0, reclaimed: 0, inFlight: 0))
  private let second: UInt64 = 1_000_000_000

  /// The minute's wait percentiles count every client once, however busy its second: a second
  /// with more waits than its sample keeps weighs as many waits as it had, not as many as it kept.
  func testTheMinutesPercentilesWeighEachSecondByItsWaits() throws {
    let start = 1_000 * second
    /// One busy second of 2,000 waits (a sample of 256 is kept), then three quiet ones of 200
    /// waits each (all kept): 2,600 waits in all.
    func minute(busy: UInt64, quiet: UInt64) -> DashboardData {
      let history = DashboardHistory()
      for _ in 0..<2_000 { history.recordWait(nanoseconds: busy, now: start) }
      for offset in 1...3 {
        for _ in 0..<200 {
          history.recordWait(nanoseconds: quiet, now: start + UInt64(offset) * second)
        }
      }
      return history.data(status: status, now: start + 4 * second)
    }
    // 2,000 of 2,600 clients waited 2 s: p50 is 2 s, not the quiet seconds' 10 ms.
    let burst = minute(busy: 2 * second, quiet: 10_000_000)
    XCTAssertEqual(try XCTUnwrap(burst.waitP50), 2, accuracy: 1e-9)
    XCTAssertEqual(try XCTUnwrap(burst.waitP90), 2, accuracy: 1e-9)
    XCTAssertEqual(try XCTUnwrap(burst.waitP99), 2, accuracy: 1e-9)
    // The reverse: 2,000 of 2,600 waited 10 ms: p50 is 10 ms; p90 (the 2,340th) is 2 s.
    let calm = minute(busy: 10_000_000, quiet: 2 * second)
    XCTAssertEqual(try XCTUnwrap(calm.waitP50), 0.01, accuracy: 1e-9)
    XCTAssertEqual(try XCTUnwrap(calm.waitP90), 2, accuracy: 1e-9)
    XCTAssertEqual(try XCTUnwrap(calm.waitP99), 2, accuracy: 1e-9)
    // Each second's own percentiles stay those of its sample.
    XCTAssertEqual(try XCTUnwrap(burst.seconds[56].waitP50), 2, accuracy: 1e-9)
    XCTAssertEqual(try XCTUnwrap(burst.seconds[57].waitP99), 0.01, accuracy: 1e-9)
  }

  /// Each second's own percentiles and the minute's with few waits: plain nearest rank.
  func testFewWaitsGiveNearestRankPercentiles() throws {
    let history = DashboardHistory()
    let start = 50 * second
    for milliseconds in 1...100 {
      history.recordWait(nanoseconds: UInt64(milliseconds) * 1_000_000, now: start)
    }
    let data = history.data(status: status, now: start + second)
    XCTAssertEqual(try XCTUnwrap(data.waitP50), 0.05, accuracy: 1e-9)
    XCTAssertEqual(try XCTUnwrap(data.waitP90), 0.09, accuracy: 1e-9)
    XCTAssertEqual(try XCTUnwrap(data.waitP99), 0.099, accuracy: 1e-9)
    XCTAssertEqual(try XCTUnwrap(data.seconds.last?.waitP50), 0.05, accuracy: 1e-9)
    XCTAssertEqual(data.seconds.count, 60)
    XCTAssertNil(DashboardHistory().data(status: status, now: start).waitP50)
  }
}
