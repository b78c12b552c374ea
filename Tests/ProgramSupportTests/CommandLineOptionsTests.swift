import Foundation
import XCTest

@testable import ProgramSupport

final class CommandLineOptionsTests: XCTestCase {
  private func options() -> CommandLineOptions {
    CommandLineOptions(
      program: "tool", summary: "Does a thing.",
      options: [
        .value("port", "PORT", "port to listen on"),
        .value("rate", "N", "how fast"),
        .flag("quiet", "say less"),
      ])
  }

  func testValuesInBothFormsAndSwitches() throws {
    var parsed = options()
    try parsed.parse(["--port", "8080", "--rate=2.5", "--quiet"])
    XCTAssertEqual(parsed["port"], "8080")
    XCTAssertEqual(parsed["rate"], "2.5")
    XCTAssertTrue(parsed.isSet("quiet"))
    XCTAssertFalse(parsed.isSet("help"))
    XCTAssertEqual(try parsed.port("port", default: 1), 8080)
    XCTAssertEqual(try parsed.number("rate", in: 0...10, default: 1), 2.5)
  }

  func testBadCommandLinesAreExplained() {
    for (arguments, message) in [
      (["stray"], "unexpected argument 'stray'"),
      (["--nope"], "unknown option --nope"),
      (["--quiet=yes"], "--quiet takes no value"),
      (["--port"], "--port needs a value"),
      (["-"], "unexpected argument '-'"),
    ] {
      var parsed = options()
      XCTAssertThrowsError(try parsed.parse(arguments), "\(arguments)") { error in
        XCTAssertTrue("\(error)".contains(message), "\(error)")
      }
    }
  }

  /// `--port --quiet` forgets the port: `--quiet` is the next option, not the value (which took
  /// it, and left `--quiet` unset: `balancer --admin-token --quiet` ran with the token
  /// "--quiet"). A value that starts with `--` is still given as `--name=value`.
  func testAnOptionAfterAValueFlagIsNotItsValue() throws {
    var parsed = options()
    XCTAssertThrowsError(try parsed.parse(["--port", "--quiet"])) { error in
      XCTAssertEqual(
        "\(error)",
        "--port needs a value, and --quiet is an option (write --port=--quiet if it is the value)")
    }
    XCTAssertNil(parsed["port"])
    XCTAssertFalse(parsed.isSet("quiet"))
    var inline = options()
    try inline.parse(["--rate=--5", "--port", "-1"])
    XCTAssertEqual(inline["rate"], "--5")
    XCTAssertEqual(inline["port"], "-1")
  }

  /// A flag's second value replaced its first unseen: `loadtest URL --run-at 5:a --run-at 9:b`
  /// never ran `a`, and `factorial-server --balancer A --balancer B` reported to B only. A
  /// switch given twice loses nothing.
  func testAValueFlagGivenTwiceIsRefused() throws {
    for arguments in [["--port", "1", "--port", "2"], ["--port=1", "--port=1"]] {
      var parsed = options()
      XCTAssertThrowsError(try parsed.parse(arguments), "\(arguments)") { error in
        XCTAssertEqual("\(error)", "--port is given twice; give it once (see --help)")
      }
    }
    var parsed = options()
    try parsed.parse(["--quiet", "--port", "1", "--quiet"])
    XCTAssertTrue(parsed.isSet("quiet"))
    XCTAssertEqual(parsed["port"], "1")
  }

  func testPortsNumbersAndIntegersAreRangeChecked() throws {
    var parsed = options()
    try parsed.parse(["--port", "70000", "--rate", "1.5"])
    XCTAssertThrowsError(try parsed.port("port", default: 1)) { error in
      XCTAssertEqual("\(error)", "--port: '70000' is not a port from 0 to 65535")
    }
    XCTAssertThrowsError(try parsed.number("rate", in: 2...3, default: 2))
    XCTAssertThrowsError(try parsed.integer("rate", in: 0...10, default: 1)) { error in
      XCTAssertTrue("\(error)".contains("not a whole number"), "\(error)")
    }
    var other = options()
    try other.parse(["--rate", "7"])
    XCTAssertEqual(try other.integer("rate", in: 0...10, default: 1), 7)
    XCTAssertEqual(try other.integer("missing", in: 0...10, default: 4), 4)
  }

  /// `Double` reads `inf`, `nan` and numbers too large for it (`1e999`, which is `inf`): none is a
  /// number a flag may take, even in a range without an upper bound.
  func testNumbersMustBeFinite() throws {
    // And hexadecimal, which `Double` reads too (`0x10` was 16: helper-39's audit).
    for text in ["inf", "-inf", "infinity", "nan", "NaN", "1e999", "-1e999", "0x10", "0x1p3", " 5"]
    {
      var parsed = options()
      try parsed.parse(["--rate", text])
      for range in [0...86400, -Double.infinity...Double.infinity] {
        XCTAssertThrowsError(try parsed.number("rate", in: range, default: 1), text) { error in
          XCTAssertTrue("\(error)".hasPrefix("--rate: '\(text)' is not a number"), "\(error)")
        }
      }
    }
    var parsed = options()
    try parsed.parse(["--rate", "1e300"])
    XCTAssertEqual(try parsed.number("rate", in: 0...Double.infinity, default: 1), 1e300)
  }

  func testPortFallsBackToTheEnvironmentThenTheDefault() throws {
    let parsed = options()
    XCTAssertEqual(try parsed.port("port", environment: "LB_PORT", default: 8001, in: [:]), 8001)
    XCTAssertEqual(
      try parsed.port("port", environment: "LB_PORT", default: 8001, in: ["LB_PORT": "9000"]), 9000)
    XCTAssertThrowsError(
      try parsed.port("port", environment: "LB_PORT", default: 8001, in: ["LB_PORT": "x"])
    ) { error in
      XCTAssertEqual("\(error)", "LB_PORT: 'x' is not a port from 0 to 65535")
    }
  }

  func testUsageListsEveryOptionOnce() {
    let usage = options().usage
    XCTAssertTrue(usage.hasPrefix("usage: tool [options]\n\nDoes a thing."))
    for name in ["--port PORT", "--rate N", "--quiet", "--help"] {
      XCTAssertEqual(usage.components(separatedBy: name).count, 2, name)
    }
  }
}

final class LoggerTests: XCTestCase {
  func testTextAndJSONLines() throws {
    var lines: [String] = []
    Program.logger(program: "balancer", format: .text) { lines.append($0) }("5001: down")
    XCTAssertEqual(lines, ["[balancer] 5001: down"])
    Program.logger(program: "balancer", format: .json) { lines.append($0) }("say \"hi\"\n")
    let object = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: String])
    XCTAssertEqual(object["program"], "balancer")
    XCTAssertEqual(object["message"], "say \"hi\"\n")
    XCTAssertNotNil(ISO8601DateFormatter().date(from: String(object["time"]!.prefix(19)) + "Z"))
    XCTAssertFalse(lines[1].contains("\n"), "one line per entry")
    XCTAssertNil(Program.logger(program: "x", quiet: true))
  }
}
