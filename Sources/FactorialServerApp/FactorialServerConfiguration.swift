import Foundation
import HTTPCore
import ProgramSupport

/// Everything the factorial server's flags decide, validated.
public struct FactorialServerConfiguration: Sendable {
  public var port = 5001
  public var bindAddress = "0.0.0.0"
  /// Where reports go: the first is tried first, the others in turn when one fails (see
  /// `BalancerReporter`). Never empty, no two alike.
  public var balancers = [BalancerAddress(host: "127.0.0.1", port: 8001)]
  public var workers = 1
  /// The most jobs accepted and not yet answered (default 8 per worker); more get 503.
  public var maxQueue = 8
  public var quiet = false
  public var logFormat = LogFormat.text
  /// The PID of the process this one exits with (`--parent-pid`, or the parent found when the
  /// flags are read with `--exit-with-parent`); nil to outlive it.
  public var parentPID: Int32?

  public init() {}

  /// The flags the server accepts, with their help.
  public static var commandLine: CommandLineOptions {
    CommandLineOptions(
      program: "factorial-server",
      summary: """
        Factorial server: GET /<port>[?n=K] answers "Factorial of N = <digits>" (N random in
        100...1000 unless K from 0 to 100000 is given), then reports to the balancer with
        GET /port_update/<port>. GET / does the job without reporting.
        """,
      options: [
        .value("port", "PORT", "port to listen on (default 5001)"),
        .value("bind", "ADDRESS", "address to listen on (default 0.0.0.0, all interfaces)"),
        .value(
          "balancer", "HOST:PORT,...",
          "where to report: one balancer, or several sharing one queue, tried in turn when one "
            + "fails (IPv6 as [::1]:8001; default $LB_IP_ADDR:$LB_PORT, else 127.0.0.1:8001)"),
        .value("workers", "N", "threads computing factorials (default 1)"),
        .value(
          "max-queue", "N",
          "answer 503 with Retry-After beyond N jobs accepted and not answered (default 8 per worker)"
        ),
        .flag("quiet", "do not log one line per request"),
        .logFormat,
        .flag(
          "exit-with-parent", "exit when the process that started this one exits (the balancer)"),
        ParentProcess.option,
      ])
  }

  /// Reads parsed flags; `environment` supplies `LB_IP_ADDR` and `LB_PORT`.
  public init(_ options: CommandLineOptions, environment: [String: String])
    throws(CommandLineOptions.UsageError)
  {
    port = try options.port("port", default: 5001)
    // The server names its own port in reports, so it must be a real one.
    guard port != 0 else {
      throw CommandLineOptions.UsageError(
        description: "--port: the server must know its port to report it; 0 is not allowed")
    }
    bindAddress = options["bind"] ?? bindAddress
    workers = try options.integer("workers", in: 1...64, default: 1)
    maxQueue = try options.integer("max-queue", in: 1...1_000_000, default: 8 * workers)
    if let list = options["balancer"] {
      balancers = try Self.balancerList(list)
    } else {
      let host = environment["LB_IP_ADDR"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
      let port = try options.port(nil, environment: "LB_PORT", default: 8001, in: environment)
      balancers = [try Self.environmentBalancer(host: host, port: port)]
    }
    quiet = options.isSet("quiet")
    logFormat = try options.logFormat()
    parentPID = try ParentProcess.pid(from: options)
  }

  /// The balancer `$LB_IP_ADDR` and `$LB_PORT` name, checked as an item of `--balancer` is (an
  /// IPv6 address may come without its brackets).
  static func environmentBalancer(host: String, port: Int) throws(CommandLineOptions.UsageError)
    -> BalancerAddress
  {
    let text = HTTPHeaders.hostValue(host, port: port)
    switch BalancerAddress.parse(text) {
    case .failure(let reason):
      throw CommandLineOptions.UsageError(
        description: "LB_IP_ADDR and LB_PORT: '\(text)' is not HOST:PORT: \(reason)")
    case .success(let balancer):
      return balancer
    }
  }

  /// Reads `--balancer`: `HOST:PORT[,HOST:PORT...]`, spaces around an item ignored; no empty
  /// item, no balancer twice.
  static func balancerList(_ text: String) throws(CommandLineOptions.UsageError)
    -> [BalancerAddress]
  {
    let items = text.split(separator: ",", omittingEmptySubsequences: false).map {
      $0.trimmingCharacters(in: .whitespaces)
    }
    var balancers: [BalancerAddress] = []
    var seen: [String: String] = [:]
    for (index, item) in items.enumerated() {
      guard !item.isEmpty else {
        let what =
          items.count == 1
          ? "no balancer given" : "balancer \(index + 1) of \(items.count) is empty"
        throw CommandLineOptions.UsageError(
          description: "--balancer: \(what) in '\(text)' (HOST:PORT[,HOST:PORT...])")
      }
      switch BalancerAddress.parse(item) {
      case .failure(let reason):
        throw CommandLineOptions.UsageError(
          description: "--balancer: '\(item)' is not HOST:PORT: \(reason)")
      case .success(let balancer):
        if let earlier = seen[balancer.identity] {
          throw CommandLineOptions.UsageError(
            description: "--balancer: '\(earlier)' and '\(item)' are the same balancer")
        }
        seen[balancer.identity] = item
        balancers.append(balancer)
      }
    }
    return balancers
  }
}
