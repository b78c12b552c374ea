import XCTest

@testable import Metrics

final class HistogramTests: XCTestCase {
  /// Rendered buckets never decrease, each counts the observations at or below its bound,
  /// `_count` equals the `+Inf` bucket, and `_sum` adds up the observations.
  func testBucketsAreCumulativeAndCountEqualsInfBucket() throws {
    let registry = MetricsRegistry()
    let family = registry.histogram(
      "wait_seconds", help: "Waits.", labelNames: ["server"], buckets: Buckets.waitSeconds)
    let histogram = family.labels("a")
    var generator = SystemRandomNumberGenerator()
    var observed: [Double] = []
    for _ in 0..<2_000 {
      let value =
        Double.random(in: 0...80, using: &generator) / Double([1, 10, 1000].randomElement()!)
      observed.append(value)
      histogram.observe(value)
    }
    for bound in Buckets.waitSeconds {  // one exactly on every bound
      observed.append(bound)
      histogram.observe(bound)
    }
    histogram.observe(.nan)  // ignored

    var buckets: [(le: String, count: UInt64)] = []
    var sum: Double?
    var count: UInt64?
    for line in registry.render().split(separator: "\n") where !line.hasPrefix("#") {
      let parts = line.split(separator: " ")
      XCTAssertEqual(parts.count, 2, String(line))
      if parts[0].hasPrefix("wait_seconds_bucket{server=\"a\",le=\"") {
        let le = parts[0].dropFirst("wait_seconds_bucket{server=\"a\",le=\"".count).dropLast(2)
        buckets.append((String(le), try XCTUnwrap(UInt64(parts[1]))))
      } else if parts[0] == "wait_seconds_sum{server=\"a\"}" {
        sum = Double(parts[1])
      } else if parts[0] == "wait_seconds_count{server=\"a\"}" {
        count = UInt64(parts[1])
      } else {
        XCTFail("unexpected sample \(line)")
      }
    }

    XCTAssertEqual(
      buckets.map(\.le), Buckets.waitSeconds.map(PrometheusTextFormat.formatValue) + ["+Inf"])
    for (index, bound) in Buckets.waitSeconds.enumerated() {
      XCTAssertEqual(
        buckets[index].count, UInt64(observed.filter { $0 <= bound }.count), "le=\(bound)")
      if index > 0 { XCTAssertGreaterThanOrEqual(buckets[index].count, buckets[index - 1].count) }
    }
    XCTAssertEqual(buckets.last?.count, UInt64(observed.count))
    XCTAssertEqual(count, buckets.last?.count)
    XCTAssertEqual(try XCTUnwrap(sum), observed.reduce(0, +), accuracy: 1e-6)
  }

  /// Bounds may end with +Inf (dropped, as it is implicit); durations in nanoseconds are seconds.
  func testTrailingInfinityAndNanoseconds() {
    let registry = MetricsRegistry()
    let histogram = registry.histogram(
      "compute_seconds", help: "Compute time.", buckets: [1, .infinity])
    XCTAssertEqual(histogram.upperBounds, [1])
    histogram.observe(nanoseconds: 1_000_000_000)
    histogram.observe(nanoseconds: 1_500_000_000)
    let snapshot = histogram.snapshot()
    XCTAssertEqual(snapshot.cumulativeCounts, [1, 2])
    XCTAssertEqual(snapshot.sum, 2.5)
    XCTAssertEqual(snapshot.count, 2)
  }

  /// Observations from many threads all land.
  func testObservationsFromManyThreads() {
    let registry = MetricsRegistry()
    let histogram = registry.histogram("work_seconds", help: "Work.", buckets: [0.5])
    DispatchQueue.concurrentPerform(iterations: 8) { worker in
      for _ in 0..<10_000 { histogram.observe(worker % 2 == 0 ? 0.25 : 1) }
    }
    let snapshot = histogram.snapshot()
    XCTAssertEqual(snapshot.cumulativeCounts, [40_000, 80_000])
    XCTAssertEqual(snapshot.count, 80_000)
    XCTAssertEqual(snapshot.sum, 50_000)
  }
}
