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

  /// Splits one CSV line into its fields (RFC 4180 quoting: "" inside quotes is a quote).
  private func csvFields(_ line: Substring) -> [String] {
    var fields: [String] = []
    var field = ""
    var quoted = false
    var characters = line.makeIterator()
    while let character = characters.next() {
      switch (character, quoted) {
      case ("\"", true):
        // A doubled quote stays one; a single one closes the field's quoting.
        if let next = characters.next() {
          if next == "\"" {
            field.append("\"")
          } else {
            quoted = false
            if next == "," {
              fields.append(field)
              field = ""
            } else {
              field.append(next)
            }
          }
        } else {
          quoted = false
        }
      case ("\"", false): quoted = true
      case (",", false):
        fields.append(field)
        field = ""
      default: field.append(character)
      }
    }
    fields.append(field)
    return fields
  }

  func testEveryCSVRowHasAsManyFieldsAsTheHeader() {
    var visits = report.visits
    visits[0].jobSize = 500
    visits[1].detail = "refused, then \"reset\", twice"
    visits[2].jobSize = 20000
    visits[2].detail = "a, b"
    let rows = LoadReport(visits: visits, duration: 3, concurrency: 4, url: "http://x:1/").csv
      .split(separator: "\n")
    let header = csvFields(rows[0])
    XCTAssertEqual(header, LoadReport.csvColumns)
    XCTAssertEqual(Set(header).count, header.count, "a column named twice")
    for row in rows.dropFirst() {
      XCTAssertEqual(csvFields(row).count, header.count, "row: \(row)")
    }
    let named = { (row: Substring) in
      Dictionary(uniqueKeysWithValues: zip(header, self.csvFields(row)))
    }
    XCTAssertEqual(named(rows[1])["job_size"], "500")
    XCTAssertEqual(named(rows[1])["detail"], "")
    XCTAssertEqual(named(rows[2])["job_size"], "")
    XCTAssertEqual(named(rows[2])["detail"], "refused, then \"reset\", twice")
    XCTAssertEqual(named(rows[3])["job_size"], "20000")
    XCTAssertEqual(named(rows[3])["detail"], "a, b")
    XCTAssertEqual(named(rows[3])["retries"], "0")
  }

  /// One visit ends every 0.1 s on each of two servers, from 0.05 s to 3.45 s, in a run of 3.5 s:
  /// 10 per second each.
  private var steadyReport: LoadReport {
    var visits: [Visit] = []
    for step in 1...35 {
      for (offset, server) in ["5001", "5002"].enumerated() {
        let end = (Double(step) - 0.5) / 10
        visits.append(
          Visit(
            index: visits.count, start: end - 0.05, end: end, outcome: .ok, status: 200,
            server: server, balancerMilliseconds: 1, serverMilliseconds: Double(offset)))
      }
    }
    return LoadReport(visits: visits, duration: 3.5, concurrency: 2, url: "http://x:1/")
  }

  func testTimelineLeavesOutAPartialLastSlice() throws {
    let report = steadyReport
    // 3.5 s in slices of 1 s: three whole slices; the last half second is left out.
    let timeline = report.timeline(bucket: 1)
    XCTAssertEqual(timeline.map(\.server), ["5001", "5002"])
    for line in timeline {
      XCTAssertEqual(line.points.map(\.x), [0, 1, 2])
      for point in line.points { XCTAssertEqual(point.y, 10, accuracy: 1e-9) }
    }
    // Slices that fit exactly are all kept: 0.5 s → 7 slices.
    for line in report.timeline(bucket: 0.5) {
      XCTAssertEqual(line.points.count, 7)
      for point in line.points { XCTAssertEqual(point.y, 10, accuracy: 1e-9) }
    }
    // A run shorter than a slice is one slice as long as the run.
    let short = LoadReport(
      visits: Array(report.visits.prefix(6)), duration: 0.3, concurrency: 2, url: "http://x:1/")
    XCTAssertEqual(short.timeline(bucket: 1).map { $0.points.map(\.y) }, [[10], [10]])
    // The chart draws the same: three points a line, none of them lower at the end.
    let chart = report.timelineChart(bucket: 1)
    let lines = chart.components(separatedBy: "points=\"").dropFirst().map {
      $0.prefix { $0 != "\"" }.split(separator: " ").map { $0.split(separator: ",")[1] }
    }
    XCTAssertEqual(lines.count, 2)
    for heights in lines {
      XCTAssertEqual(heights.count, 3, chart)
      XCTAssertEqual(Set(heights).count, 1, "a line drops or rises: \(heights)")
    }
  }

  /// The polylines of an SVG line chart in drawing order: each one's series name (its `<title>`)
  /// and attributes.
  private func polylines(_ svg: String) throws -> [(name: String, attributes: [String: String])] {
    final class Collector: NSObject, XMLParserDelegate {
      var lines: [(name: String, attributes: [String: String])] = []
      var inPolyline = false
      var inTitle = false
      func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
        qualifiedName: String?, attributes: [String: String] = [:]
      ) {
        if name == "polyline" {
          inPolyline = true
          lines.append(("", attributes))
        }
        inTitle = inPolyline && name == "title"
      }
      func parser(_ parser: XMLParser, foundCharacters string: String) {
        if inTitle { lines[lines.count - 1].name += string }
      }
      func parser(
        _ parser: XMLParser, didEndElement name: String, namespaceURI: String?,
        qualifiedName: String?
      ) {
        if name == "polyline" { inPolyline = false }
        if name == "title" { inTitle = false }
      }
    }
    let parser = XMLParser(data: Data(svg.utf8))
    let collector = Collector()
    parser.delegate = collector
    XCTAssertTrue(parser.parse(), "not well-formed XML")
    return collector.lines
  }

  func testScalingChartDrawsTheMeanOverLeastAndMost() throws {
    // An even spread: mean, least and most are the same at every N.
    let runs = [2, 3, 4].map { n in
      ScalingRun(
        servers: n,
        report: LoadReport(
          visits: (0..<(12 * n)).map { index in
            Visit(
              index: index, start: 0, end: 1, outcome: .ok, status: 200,
              server: String(5001 + index % n))
          }, duration: 1, concurrency: 4, url: "http://x:1/"))
    }
    XCTAssertEqual(runs[1].perServer.mean, 12)
    XCTAssertEqual(runs[1].perServer.least, 12)
    XCTAssertEqual(runs[1].perServer.most, 12)
    let svg = ScalingCharts.perServer(runs)
    let lines = try polylines(svg)
    XCTAssertEqual(lines.map(\.name), ["least", "most", "mean"], "the mean is drawn last, on top")
    let mean = lines[2].attributes
    XCTAssertNil(mean["stroke-opacity"], "the mean line is opaque")
    for other in lines.prefix(2) {
      XCTAssertEqual(other.attributes["points"], mean["points"])
      XCTAssertNotEqual(other.attributes["stroke"], mean["stroke"])
      // Wider than the mean, so they show on both sides of it.
      XCTAssertGreaterThan(
        Double(other.attributes["stroke-width"] ?? "") ?? 0,
        Double(mean["stroke-width"] ?? "") ?? .infinity)
    }
    // Its points too come after the others'.
    let circles = svg.components(separatedBy: "<circle").dropFirst().map {
      $0.components(separatedBy: "fill=\"")[1].prefix(7)
    }
    XCTAssertEqual(circles.count, 9)
    XCTAssertEqual(Set(circles.suffix(3)), [mean["stroke"]!.prefix(7)])
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
