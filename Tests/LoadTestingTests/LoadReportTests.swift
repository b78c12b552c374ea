import Foundation
import XCTest

@testable import Charts
@testable import LoadTesting

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// Whether `text` is well-formed XML, and the names of its elements.
func xmlElements(_ text: String) -> [String]? {
  final class Collector: NSObject, XMLParserDelegate {
    var names: [String] = []
    func parser(
      _ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
      qualifiedName: String?,
      attributes: [String: String] = [:]
    ) { names.append(name) }
  }
  let parser = XMLParser(data: Data(text.utf8))
  let collector = Collector()
  parser.delegate = collector
  return parser.parse() ? collector.names : nil
}

final class LatencySummaryTests: XCTestCase {
  func testNearestRankPercentiles() {
    let summary = LatencySummary((1...100).map(Double.init).shuffled())
    XCTAssertEqual(summary.p50, 50)
    XCTAssertEqual(summary.p90, 90)
    XCTAssertEqual(summary.p99, 99)
    XCTAssertEqual(summary.max, 100)
    XCTAssertEqual(summary.mean, 50.5)
    XCTAssertEqual(LatencySummary([7]).p99, 7)
    XCTAssertEqual(LatencySummary([]).p50, 0)
  }
}

final class LoadReportTests: XCTestCase {
  private func visit(
    _ index: Int, _ outcome: Visit.Outcome, server: String?, status: Int, at: Double
  )
    -> Visit
  {
    Visit(
      index: index, start: at, end: at + 0.01, outcome: outcome, status: status, server: server,
      balancerMilliseconds: 4, serverMilliseconds: 6)
  }

  private var report: LoadReport {
    var visits: [Visit] = []
    for index in 0..<30 {
      visits.append(
        visit(
          index, .ok, server: ["5001", "5002", "10000"][index % 3], status: 200,
          at: Double(index) * 0.1))
    }
    visits.append(visit(30, .unavailable, server: nil, status: 503, at: 1))
    visits.append(visit(31, .serverUnreachable, server: nil, status: 302, at: 1))
    return LoadReport(visits: visits.shuffled(), duration: 3.0, concurrency: 4, url: "http://x:1/")
  }

  func testCountsAndOrder() {
    let report = self.report
    XCTAssertEqual(report.succeeded, 30)
    XCTAssertEqual(report.jobsPerServer.map(\.0), ["5001", "5002", "10000"])
    XCTAssertEqual(report.jobsPerServer.map(\.1), [10, 10, 10])
    XCTAssertEqual(report.throughput, 10)
    XCTAssertEqual(Dictionary(uniqueKeysWithValues: report.statusCounts)[503], 1)
    XCTAssertEqual(report.outcomes.first { $0.0 == .serverUnreachable }?.1, 1)
    XCTAssertEqual(report.total.p50, 10, accuracy: 1e-9)
    XCTAssertEqual(report.atBalancer.p50, 4)
    XCTAssertTrue(report.text.contains("  5001       10   33.3%"), report.text)
  }

  func testJSONAndCSV() throws {
    let report = self.report
    let json = try JSONSerialization.jsonObject(with: Data(report.json.utf8)) as! [String: Any]
    XCTAssertEqual(json["succeeded"] as? Int, 30)
    XCTAssertEqual(
      json["jobs_per_server"] as? [String: Int], ["5001": 10, "5002": 10, "10000": 10])
    XCTAssertEqual((json["outcomes"] as? [String: Int])?["unavailable"], 1)
    let rows = report.csv.split(separator: "\n")
    XCTAssertEqual(rows.count, 33)
    XCTAssertTrue(rows[0].hasPrefix("index,start_s,end_s,outcome"))
    XCTAssertTrue(rows[1].hasPrefix("0,0.000000,0.010000,ok,200,5001,4.000,6.000,10.000,0,,"))
  }

  func testChartsAreWellFormedSVG() throws {
    let bars = report.serverChart()
    let elements = try XCTUnwrap(xmlElements(bars), "not well-formed XML")
    XCTAssertEqual(elements.first, "svg")
    XCTAssertEqual(elements.filter { $0 == "rect" }.count, 1 + 3)  // background and three bars
    XCTAssertTrue(bars.contains(">Requests per server: 30 served of 32 sent, 4 at a time<"))
    XCTAssertTrue(bars.contains(">requests served<"))
    let timeline = report.timelineChart(bucket: 0.5)
    let lineElements = try XCTUnwrap(xmlElements(timeline))
    XCTAssertEqual(lineElements.filter { $0 == "polyline" }.count, 3)
  }

  func testChartHelpers() {
    XCTAssertEqual(SVGChart.niceCeiling(3438), 5000)
    XCTAssertEqual(SVGChart.niceCeiling(2000), 2000)
    XCTAssertEqual(SVGChart.niceCeiling(0.3), 0.5)
    XCTAssertEqual(SVGChart.escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;")
    let chart = SVGChart(title: "T <1>", xLabel: "x", yLabel: "y").lines([
      SVGChart.Series(name: "s", points: [(2, 10), (3, 20), (4, 5)])
    ])
    XCTAssertNotNil(xmlElements(chart))
    XCTAssertEqual(chart.components(separatedBy: "<circle").count - 1, 3)
  }
}

final class LoadRunnerTests: XCTestCase {
  func testPoissonArrivalsHaveTheAskedRate() {
    let times = LoadRunner.arrivals(count: 20000, rate: 500, seed: 3)
    XCTAssertEqual(times.count, 20000)
    XCTAssertTrue(zip(times, times.dropFirst()).allSatisfy { $0 < $1 })
    XCTAssertEqual(Double(times.count) / times.last!, 500, accuracy: 15)
    // Exponential gaps: their standard deviation equals their mean.
    let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
    let mean = gaps.reduce(0, +) / Double(gaps.count)
    let deviation = (gaps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(gaps.count))
      .squareRoot()
    XCTAssertEqual(deviation / mean, 1, accuracy: 0.05)
    XCTAssertEqual(
      LoadRunner.arrivals(count: 10, rate: 5, seed: 9),
      LoadRunner.arrivals(count: 10, rate: 5, seed: 9))
  }
}
