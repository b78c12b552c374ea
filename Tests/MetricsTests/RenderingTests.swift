import XCTest

@testable import Metrics

final class RenderingTests: XCTestCase {
  /// A small registry renders to exactly the expected exposition text, in registration order,
  /// with the closure-backed gauge read at render time.
  func testRendersSmallRegistryExactly() {
    let registry = MetricsRegistry()
    let responses = registry.counter(
      "balancer_responses_total", help: "Responses sent, by server and status code.",
      labelNames: ["server", "code"])
    responses.labels("127.0.0.1:9001", "200").increment(by: 3)
    responses.labels("127.0.0.1:9002", "503").increment()
    responses.labels("127.0.0.1:9001", "200").increment()
    var waiting = 4
    registry.gauge("balancer_clients_waiting", help: "Clients waiting for a free server now.") {
      Double(waiting)
    }
    let wait = registry.histogram(
      "balancer_wait_seconds", help: "Time a client waited for a server.",
      buckets: [0.1, 0.25, 1, 2.5])
    wait.observe(0.125)
    wait.observe(0.25)  // exactly on a bound: counts in that bound's bucket
    wait.observe(0.5)
    wait.observe(4)  // above the last bound: only in +Inf
    registry.info(
      "balancer_build_info", help: "Build information.",
      labels: ["version": "1.0.0", "swift": "6.3"])
    let restarts = registry.counter("balancer_restarts_total", help: "Server restarts.")
    restarts.increment(by: 0.5)
    waiting = 7

    XCTAssertEqual(
      registry.render(),
      """
      # HELP balancer_responses_total Responses sent, by server and status code.
      # TYPE balancer_responses_total counter
      balancer_responses_total{server="127.0.0.1:9001",code="200"} 4
      balancer_responses_total{server="127.0.0.1:9002",code="503"} 1
      # HELP balancer_clients_waiting Clients waiting for a free server now.
      # TYPE balancer_clients_waiting gauge
      balancer_clients_waiting 7
      # HELP balancer_wait_seconds Time a client waited for a server.
      # TYPE balancer_wait_seconds histogram
      balancer_wait_seconds_bucket{le="0.1"} 0
      balancer_wait_seconds_bucket{le="0.25"} 2
      balancer_wait_seconds_bucket{le="1"} 3
      balancer_wait_seconds_bucket{le="2.5"} 3
      balancer_wait_seconds_bucket{le="+Inf"} 4
      balancer_wait_seconds_sum 4.875
      balancer_wait_seconds_count 4
      # HELP balancer_build_info Build information.
      # TYPE balancer_build_info gauge
      balancer_build_info{version="1.0.0",swift="6.3"} 1
      # HELP balancer_restarts_total Server restarts.
      # TYPE balancer_restarts_total counter
      balancer_restarts_total 0.5

      """)
    XCTAssertEqual(MetricsRegistry.contentType, "text/plain; version=0.0.4; charset=utf-8")
  }

  /// Label values escape backslash, double quote and newline; HELP escapes backslash and newline
  /// but leaves double quotes alone.
  func testEscapesLabelValuesAndHelp() {
    let registry = MetricsRegistry()
    let errors = registry.counter(
      "errors_total", help: "Errors in C:\\tmp\nby \"reason\".", labelNames: ["reason"])
    errors.labels("bad \\ path \"x\"\nnext line").increment()
    registry.gauge("servers", help: "Servers by state.", labelNames: ["state"]) {
      [(["a\"b"], 2), (["plain"], 0)]
    }
    XCTAssertEqual(
      registry.render(),
      """
      # HELP errors_total Errors in C:\\\\tmp\\nby "reason".
      # TYPE errors_total counter
      errors_total{reason="bad \\\\ path \\"x\\"\\nnext line"} 1
      # HELP servers Servers by state.
      # TYPE servers gauge
      servers{state="a\\"b"} 2
      servers{state="plain"} 0

      """)
    XCTAssertEqual(PrometheusTextFormat.escapeLabelValue("plain"), "plain")
    XCTAssertEqual(PrometheusTextFormat.escapeLabelValue("\r\n"), "\r\\n")
    XCTAssertEqual(PrometheusTextFormat.escapeHelp("a\"b\\c\nd"), "a\"b\\\\c\\nd")
  }

  /// Values: integers without fraction or exponent, shortest exact decimals, the special values.
  func testFormatsValues() {
    let cases: [(Double, String)] = [
      (0, "0"), (-0.0, "0"), (1, "1"), (60, "60"), (-3, "-3"), (1_234_567, "1234567"),
      (0.005, "0.005"), (0.0025, "0.0025"), (2.5, "2.5"), (0.1, "0.1"), (1e-05, "1e-05"),
      (1e20, "1e+20"), (.infinity, "+Inf"), (-.infinity, "-Inf"), (.nan, "NaN"),
    ]
    for (value, expected) in cases {
      XCTAssertEqual(PrometheusTextFormat.formatValue(value), expected, "\(value)")
    }
    XCTAssertEqual(
      Buckets.waitSeconds.map(PrometheusTextFormat.formatValue),
      [
        "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
        "5", "10", "30", "60",
      ])
  }

  /// A labelled family renders only HELP and TYPE until a child exists; `labels` hands back the
  /// same child for the same values.
  func testChildrenAreCreatedOnFirstUse() {
    let registry = MetricsRegistry()
    let busy = registry.gauge("servers_busy", help: "Busy servers.", labelNames: ["server"])
    XCTAssertEqual(
      registry.render(), "# HELP servers_busy Busy servers.\n# TYPE servers_busy gauge\n")
    let a = busy.labels("a")
    XCTAssertTrue(a === busy.labels(["a"]))
    XCTAssertFalse(a === busy.labels("b"))
    a.set(5)
    a.decrement()
    a.increment(by: 0.5)
    busy.labels("b").decrement(by: 2)
    XCTAssertEqual(
      registry.render(),
      """
      # HELP servers_busy Busy servers.
      # TYPE servers_busy gauge
      servers_busy{server="a"} 4.5
      servers_busy{server="b"} -2

      """)
  }

  /// Counters keep exact integer totals, also when incremented from many threads at once.
  func testCountersAndGaugesAreThreadSafe() {
    let registry = MetricsRegistry()
    let family = registry.counter("requests_total", help: "Requests.", labelNames: ["worker"])
    let total = registry.counter("all_requests_total", help: "All requests.")
    let inFlight = registry.gauge("in_flight", help: "In flight.")
    DispatchQueue.concurrentPerform(iterations: 8) { worker in
      for _ in 0..<10_000 {
        family.labels(String(worker % 2)).increment()
        total.increment(by: 2)
        inFlight.increment()
        inFlight.decrement()
      }
    }
    XCTAssertEqual(total.value, 160_000)
    XCTAssertEqual(family.labels("0").value, 40_000)
    XCTAssertEqual(family.labels("1").value, 40_000)
    XCTAssertEqual(inFlight.value, 0)
  }
}
