import Foundation
import Glibc
import XCTest

@testable import Metrics

/// Checks rendered text with the real `promtool check metrics` (Debian package `prometheus`).
final class PromtoolTests: XCTestCase {
  private static let installHint =
    "promtool was not found on PATH; install it with `apt-get install -y prometheus`"

  /// A registry using every feature passes promtool's parser and linter without a problem.
  func testPromtoolAcceptsRenderedRegistry() throws {
    guard let promtool = try promtoolOrSkip() else { return }
    let registry = MetricsRegistry()
    let responses = registry.counter(
      "balancer_responses_total", help: "Responses sent, by \"server\" and code.\nSecond line \\.",
      labelNames: ["server", "code"])
    responses.labels("127.0.0.1:9001", "200").increment(by: 3)
    responses.labels("odd \\ \"name\"\nwith newline", "503").increment()
    registry.counter("balancer_rejected_total", help: "Rejected clients.").increment(by: 0.5)
    _ = registry.counter("balancer_errors_total", help: "Errors by reason.", labelNames: ["reason"])
    registry.gauge("balancer_clients_waiting", help: "Clients waiting now.") { 3 }
    registry.gauge("balancer_servers", help: "Servers by state now.", labelNames: ["state"]) {
      [(["free"], 2), (["busy"], 1)]
    }
    registry.gauge(
      "balancer_load_ratio", help: "A gauge with special values.", labelNames: ["kind"]
    ) {
      [(["nan"], .nan), (["inf"], .infinity), (["neg"], -.infinity)]
    }
    registry.gauge("balancer_connections", help: "Open connections.").set(12)
    let wait = registry.histogram(
      "balancer_wait_seconds", help: "Time a client waited for a server.", labelNames: ["server"])
    for value in [0.0004, 0.005, 0.3, 61, 1] { wait.labels("a").observe(value) }
    registry.histogram("factorial_compute_seconds", help: "Compute time.").observe(0.02)
    registry.info("balancer_build_info", help: "Build information.", labels: ["version": "1.0.0"])

    guard let result = try runPromtool(promtool, input: registry.render()) else { return }
    XCTAssertEqual(result.status, 0, "promtool check metrics failed:\n\(result.output)")
    XCTAssertEqual(result.output, "", "promtool reported problems")
  }

  /// The check has teeth: promtool rejects a counter without the `_total` suffix.
  func testPromtoolReportsProblems() throws {
    guard let promtool = try promtoolOrSkip() else { return }
    let registry = MetricsRegistry()
    registry.counter("requests", help: "Requests.").increment()
    guard let result = try runPromtool(promtool, input: registry.render()) else { return }
    XCTAssertNotEqual(result.status, 0, result.output)
    XCTAssertTrue(result.output.contains("_total"), result.output)
  }

  /// promtool's path; without one, a skip outside CI (CI unset), and in CI a failure and nil.
  private func promtoolOrSkip() throws -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
      let candidate = "\(directory)/promtool"
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    if ProcessInfo.processInfo.environment["CI"] == nil { throw XCTSkip(Self.installHint) }
    XCTFail(Self.installHint)
    return nil
  }

  /// Runs `promtool check metrics` on `input`, within `timeout` seconds (else it is killed and
  /// the test fails and this returns nil), and returns its exit status and its stdout and stderr
  /// together.
  private func runPromtool(_ promtool: String, input: String, timeout: Double = 20) throws -> (
    status: Int32, output: String
  )? {
    signal(SIGPIPE, SIG_IGN)  // promtool exiting early must fail the write, not kill the test
    let process = Process()
    process.executableURL = URL(fileURLWithPath: promtool)
    process.arguments = ["check", "metrics"]
    let stdin = Pipe()
    let output = Pipe()
    process.standardInput = stdin
    process.standardOutput = output
    process.standardError = output
    let exited = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in exited.signal() }
    try process.run()
    defer {
      if process.isRunning {
        process.terminate()
        if exited.wait(timeout: .now() + 2) == .timedOut {
          kill(process.processIdentifier, SIGKILL)
          process.waitUntilExit()
        }
      }
    }

    let io = DispatchGroup()
    let collected = OutputBox()
    DispatchQueue.global().async(group: io) {
      collected.data = output.fileHandleForReading.readDataToEndOfFile()
    }
    DispatchQueue.global().async(group: io) {
      try? stdin.fileHandleForWriting.write(contentsOf: Data(input.utf8))
      try? stdin.fileHandleForWriting.close()
    }

    guard exited.wait(timeout: .now() + timeout) == .success else {
      XCTFail("promtool check metrics did not finish within \(timeout) s; killed")
      return nil
    }
    _ = io.wait(timeout: .now() + 5)
    return (process.terminationStatus, String(decoding: collected.data, as: UTF8.self))
  }

  private final class OutputBox: @unchecked Sendable {
    var data = Data()
  }
}
