import ProgramSupport
import XCTest

@testable import FactorialServerApp

/// `--balancer HOST:PORT[,HOST:PORT...]` and its defaults.
final class FactorialServerConfigurationTests: XCTestCase {
  private func configuration(_ arguments: [String], environment: [String: String] = [:]) throws
    -> FactorialServerConfiguration
  {
    var options = FactorialServerConfiguration.commandLine
    try options.parse(arguments)
    return try FactorialServerConfiguration(options, environment: environment)
  }

  private func balancers(_ arguments: [String], environment: [String: String] = [:]) throws
    -> [String]
  {
    try configuration(arguments, environment: environment).balancers.map(\.description)
  }

  /// The usage error `--balancer TEXT` gets (nil if it is accepted).
  private func problem(_ text: String) -> String? {
    do {
      _ = try configuration(["--balancer", text])
      return nil
    } catch let error as CommandLineOptions.UsageError {
      return error.description
    } catch {
      return "not a usage error: \(error)"
    }
  }

  func testWithoutTheFlagTheEnvironmentOrTheDefaultNamesOneBalancer() throws {
    XCTAssertEqual(try balancers([]), ["127.0.0.1:8001"])
    XCTAssertEqual(
      try balancers([], environment: ["LB_IP_ADDR": "10.0.0.9", "LB_PORT": "9100"]),
      ["10.0.0.9:9100"])
    XCTAssertEqual(
      try balancers([], environment: ["LB_IP_ADDR": "", "LB_PORT": ""]), ["127.0.0.1:8001"])
    XCTAssertEqual(try balancers([], environment: ["LB_IP_ADDR": "::1"]), ["[::1]:8001"])
    // The flag wins over the environment.
    XCTAssertEqual(
      try balancers(["--balancer", "10.0.0.7:8002"], environment: ["LB_IP_ADDR": "10.0.0.9"]),
      ["10.0.0.7:8002"])
  }

  /// `$LB_IP_ADDR` and `$LB_PORT` name a balancer as `--balancer` does, checked the same way:
  /// port 0 or a host that is no host name or address stops the server at start, instead of
  /// every report failing.
  func testTheEnvironmentIsCheckedAsTheFlagIs() {
    for (environment, text) in [
      (["LB_PORT": "0"], "127.0.0.1:0"),
      (["LB_IP_ADDR": "10.0.0.1:8001"], "[10.0.0.1:8001]:8001"),
      (["LB_IP_ADDR": "not a host", "LB_PORT": "9100"], "not a host:9100"),
      (["LB_IP_ADDR": "http://lb"], "[http://lb]:8001"),
    ] {
      XCTAssertThrowsError(try configuration([], environment: environment), "\(environment)") {
        XCTAssertTrue(
          "\($0)".hasPrefix("LB_IP_ADDR and LB_PORT: '\(text)' is not HOST:PORT: "), "\($0)")
      }
    }
    XCTAssertEqual(try balancers([], environment: ["LB_IP_ADDR": "[::1]"]), ["[::1]:8001"])
    XCTAssertEqual(
      try balancers([], environment: ["LB_IP_ADDR": "lb.example"]), ["lb.example:8001"])
  }

  func testOneBalancerIsReadAsBefore() throws {
    let parsed = try configuration(["--balancer", "lb1.example:8002"])
    XCTAssertEqual(parsed.balancers, [BalancerAddress(host: "lb1.example", port: 8002)])
    XCTAssertEqual(try balancers(["--balancer=localhost:8001"]), ["localhost:8001"])
  }

  func testAListIsReadInOrder() throws {
    let parsed = try configuration([
      "--balancer", "127.0.0.1:8001,lb2.example:8002, [::1]:8003 ,10.0.0.4:8001",
    ])
    XCTAssertEqual(
      parsed.balancers.map(\.description),
      ["127.0.0.1:8001", "lb2.example:8002", "[::1]:8003", "10.0.0.4:8001"])
    XCTAssertEqual(parsed.balancers[2].host, "::1", "kept without brackets")
    XCTAssertEqual(parsed.balancers[2].urlHost, "[::1]")
    XCTAssertEqual(parsed.balancers.map(\.isOnThisMachine), [true, false, true, false])
    // One machine, two ports: two balancers.
    XCTAssertEqual(
      try balancers(["--balancer", "127.0.0.1:8001,127.0.0.1:8002"]),
      ["127.0.0.1:8001", "127.0.0.1:8002"])
  }

  func testEmptyItemsAreRefused() {
    XCTAssertEqual(problem(""), "--balancer: no balancer given in '' (HOST:PORT[,HOST:PORT...])")
    XCTAssertEqual(
      problem("127.0.0.1:8001,,127.0.0.1:8002"),
      "--balancer: balancer 2 of 3 is empty in '127.0.0.1:8001,,127.0.0.1:8002' "
        + "(HOST:PORT[,HOST:PORT...])")
    XCTAssertEqual(
      problem("127.0.0.1:8001,"),
      "--balancer: balancer 2 of 2 is empty in '127.0.0.1:8001,' (HOST:PORT[,HOST:PORT...])")
    XCTAssertNotNil(problem(" , "))
  }

  func testBadItemsAreRefusedWithTheReason() {
    let portRange = "the port must be a number from 1 to 65535"
    XCTAssertEqual(
      problem("127.0.0.1:8001,127.0.0.1:0"),
      "--balancer: '127.0.0.1:0' is not HOST:PORT: \(portRange)")
    XCTAssertEqual(problem("lb:65536"), "--balancer: 'lb:65536' is not HOST:PORT: \(portRange)")
    XCTAssertEqual(problem("lb:+80"), "--balancer: 'lb:+80' is not HOST:PORT: \(portRange)")
    XCTAssertEqual(problem("lb:"), "--balancer: 'lb:' is not HOST:PORT: \(portRange)")
    XCTAssertEqual(problem("lb"), "--balancer: 'lb' is not HOST:PORT: no ':PORT'")
    XCTAssertEqual(problem(":8001"), "--balancer: ':8001' is not HOST:PORT: no host before ':'")
    XCTAssertEqual(
      problem("::1:8001"),
      "--balancer: '::1:8001' is not HOST:PORT: an IPv6 address goes in brackets, as in [::1]:8001")
    XCTAssertEqual(
      problem("[::1]8001"), "--balancer: '[::1]8001' is not HOST:PORT: no ':PORT' after the address"
    )
    XCTAssertEqual(
      problem("[::1:8001"),
      "--balancer: '[::1:8001' is not HOST:PORT: no ']' closes the IPv6 address")
    XCTAssertEqual(
      problem("[]:8001"),
      "--balancer: '[]:8001' is not HOST:PORT: '' between brackets is not an IPv6 address")
    XCTAssertEqual(
      problem("http://lb:8001"),
      "--balancer: 'http://lb:8001' is not HOST:PORT: 'http://lb' is not a host name or address")
  }

  /// Between brackets goes an IPv6 address, nothing else made of its characters: reports to
  /// `[10.0.0.1:99]:8001` could only ever fail.
  func testOnlyAnIPv6AddressGoesBetweenBrackets() throws {
    for text in [
      "[10.0.0.1:99]:8001", "[1:2]:8001", "[::1::2]:8001", "[fe80::1%]:8001", "[:]:8001",
    ] {
      let host = text.dropFirst().prefix { $0 != "]" }
      XCTAssertEqual(
        problem(text),
        "--balancer: '\(text)' is not HOST:PORT: '\(host)' between brackets is not an IPv6 address")
    }
    XCTAssertEqual(
      try balancers(["--balancer", "[::1]:8001,[2001:db8::7]:8002,[::ffff:10.0.0.1]:8003"]),
      ["[::1]:8001", "[2001:db8::7]:8002", "[::ffff:10.0.0.1]:8003"])
    XCTAssertEqual(try balancers(["--balancer", "[fe80::1%lo]:8001"]), ["[fe80::1%lo]:8001"])
  }

  func testTheSameBalancerTwiceIsRefused() {
    XCTAssertEqual(
      problem("127.0.0.1:8001,10.0.0.2:8001,127.0.0.1:8001"),
      "--balancer: '127.0.0.1:8001' and '127.0.0.1:8001' are the same balancer")
    XCTAssertEqual(
      problem("LB1.example:8001,lb1.example:8001"),
      "--balancer: 'LB1.example:8001' and 'lb1.example:8001' are the same balancer")
    // Every name of this machine is one.
    XCTAssertEqual(
      problem("localhost:8001,[::1]:8001"),
      "--balancer: 'localhost:8001' and '[::1]:8001' are the same balancer")
    XCTAssertNotNil(problem("[::1]:8001,127.0.0.1:8001"))
  }

  func testHelpShowsTheList() {
    let usage = FactorialServerConfiguration.commandLine.usage
    XCTAssertTrue(usage.contains("--balancer HOST:PORT,..."), usage)
    XCTAssertTrue(usage.contains("[::1]:8001"), usage)
  }
}
