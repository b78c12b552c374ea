import Balancing
import HTTPCore
import ProgramSupport
import SharedQueue

/// Everything the balancer's flags decide, validated: built from a `CommandLineOptions` (or by
/// hand in tests) before anything starts.
public struct BalancerConfiguration: Sendable {
  public var port = 8001
  public var bindAddress = "0.0.0.0"
  public var configPath = "servers.json"
  public var leaseTimeout = 60.0
  /// Seconds after which a lease whose client has not been seen is checked with its server
  /// (revoked if unused); 0 turns the check off.
  public var claimTimeout = 3.0
  /// How many unused leases one client address may hold (0: no limit).
  public var maxLeasesPerClient = 0
  public var waitTimeout = 30.0
  public var maxWaiting = 10_000
  /// The most client connections at once (default: the open-file limit less a reserve).
  public var maxConnections = HTTPServer.defaultMaxConnections()
  public var policy = PolicyName.queue
  public var slots = 512
  public var virtualNodes = 9
  public var serverWorkers = 1
  /// Seconds between heartbeats of idle servers; infinity for none.
  public var heartbeatInterval = 5.0
  /// Whether the balancer starts and supervises a factorial-server per local entry.
  public var spawnsServers = true
  /// The factorial-server to start; nil for the one beside this program.
  public var serverBinary: String?
  public var adminToken: String?
  public var quiet = false
  public var logFormat = LogFormat.text
  /// Validate servers.json, print its local ports and exit.
  public var checkConfigOnly = false
  /// The PID of the process this one exits with (`--parent-pid`, or the parent found when the
  /// flags are read with `--exit-with-parent`); nil to outlive it.
  public var parentPID: Int32?
  /// Seconds a local server may stay down before its process is killed and restarted.
  public var unresponsiveGrace = 10.0
  /// The Redis whose queue, leases and pool this balancer shares with others; nil to keep them
  /// in the process.
  public var sharedQueue: SharedQueueLocation?

  public init() {}

  /// The flags the balancer accepts, with their help.
  public static var commandLine: CommandLineOptions {
    CommandLineOptions(
      program: "balancer",
      summary: """
        Redirect load balancer: answers GET / with 302 to the first free factorial server, from a FIFO
        queue loaded from servers.json. While none is free, clients wait in line (first come, first
        served) until a server reports with GET /port_update/<port>. It starts a factorial-server for
        each local entry and restarts those that die (unless --no-spawn); replicas are listed, added
        and removed with GET /rep, POST /add and DELETE /rm.
        """,
      options: [
        .value(
          "port", "PORT",
          "port to listen on (default 8001, or $LB_PORT; 0: any free port, which the log names)"),
        .value("bind", "ADDRESS", "address to listen on (default 0.0.0.0, all interfaces)"),
        .value("config", "FILE", "the pool, {\"available_servers\": [...]} (default servers.json)"),
        .value(
          "lease-timeout", "SECONDS",
          "ask a leased server that has not reported after this long (default 60)"),
        .value(
          "claim-timeout", "SECONDS",
          "ask the server after this long whether a lease was used; revoke it if not (default 3, 0: off)"
        ),
        .value(
          "max-leases-per-client", "N",
          "answer 429 to a client holding or waiting for N unused leases (default 0: no limit)"),
        .value(
          "wait-timeout", "SECONDS",
          "answer 503 to a client still waiting after this long (default 30)"),
        .value(
          "max-waiting", "N",
          "answer 503 at once when this many clients wait already (default 10000)"),
        .value(
          "policy", "NAME",
          "queue (default: wait for a free server), round-robin, random, least-connections, consistent-hash"
        ),
        .value(
          "max-connections", "N",
          "answer 503 and close beyond N connections (default: the open-file limit less a reserve for probes and reports)"
        ),
        .value("slots", "N", "consistent-hash: slots on the ring (default 512)"),
        .value("virtual-nodes", "N", "consistent-hash: places per server on the ring (default 9)"),
        .value("server-workers", "N", "threads each started server computes with (default 1)"),
        .value(
          "heartbeat-interval", "SECONDS",
          "ask each free server this often whether it is alive; 0 turns it off (default 5)"),
        .flag("no-spawn", "do not start factorial servers; they are started by someone else"),
        .value(
          "shared-queue", "redis://HOST:PORT[/PREFIX]",
          "share the queue, the leases and the pool with the other balancers on this Redis (policy queue; implies --no-spawn)"
        ),
        .value(
          "server-binary", "PATH", "the factorial-server to start (default: beside this program)"),
        .value(
          "admin-token", "TOKEN",
          "let clients other than loopback call /add and /rm with Authorization: Bearer TOKEN"),
        .flag("quiet", "do not log one line per request (nor routine lease changes)"),
        .flag(
          "exit-with-parent",
          "stop (as on SIGTERM) once the process that started this one exits"),
        ParentProcess.option,
        .logFormat,
        .flag(
          "check-config",
          "check the flags and servers.json as a start would (names resolved, one server listed"
            + " twice, the balancer's own port), print the local ports one per line, and exit;"
            + " ports in use and --bind are not checked (the system may be running)"),
      ])
  }

  /// Reads parsed flags; `environment` supplies `LB_PORT`.
  public init(_ options: CommandLineOptions, environment: [String: String])
    throws(CommandLineOptions.UsageError)
  {
    port = try options.port("port", environment: "LB_PORT", default: 8001, in: environment)
    bindAddress = options["bind"] ?? bindAddress
    configPath = options["config"] ?? configPath
    leaseTimeout = try options.number("lease-timeout", in: 0.1...86400, default: 60)
    claimTimeout = try options.number("claim-timeout", in: 0...86400, default: 3)
    maxLeasesPerClient = try options.integer("max-leases-per-client", in: 0...1_000_000, default: 0)
    let heartbeat = try options.number("heartbeat-interval", in: 0...86400, default: 5)
    heartbeatInterval = heartbeat == 0 ? .infinity : heartbeat
    waitTimeout = try options.number("wait-timeout", in: 0.1...86400, default: 30)
    maxWaiting = try options.integer("max-waiting", in: 1...1_000_000, default: 10000)
    maxConnections = try options.integer(
      "max-connections", in: 1...10_000_000, default: HTTPServer.defaultMaxConnections())
    slots = try options.integer("slots", in: 1...1_000_000, default: 512)
    virtualNodes = try options.integer("virtual-nodes", in: 1...1000, default: 9)
    serverWorkers = try options.integer("server-workers", in: 1...64, default: 1)
    if let name = options["policy"] {
      guard let value = PolicyName(rawValue: name) else {
        throw CommandLineOptions.UsageError(
          description: "--policy: '\(name)' is not one of "
            + PolicyName.allCases.map(\.rawValue).joined(separator: ", "))
      }
      policy = value
    }
    if let token = options["admin-token"] {
      guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
        throw CommandLineOptions.UsageError(
          description: "--admin-token: the token must be non-empty and without spaces")
      }
      adminToken = token
    }
    spawnsServers = !options.isSet("no-spawn")
    if let text = options["shared-queue"] {
      do {
        sharedQueue = try SharedQueueLocation(parsing: text)
      } catch {
        throw CommandLineOptions.UsageError(description: "--shared-queue: \(error)")
      }
      guard policy == .queue else {
        throw CommandLineOptions.UsageError(
          description: "--shared-queue works with --policy queue only, not \(policy.rawValue)")
      }
      // Servers serve every balancer of the group, so none of them starts its own.
      spawnsServers = false
    }
    serverBinary = options["server-binary"]
    quiet = options.isSet("quiet")
    logFormat = try options.logFormat()
    checkConfigOnly = options.isSet("check-config")
    parentPID = try ParentProcess.pid(from: options)
  }

  /// What the flags allow but a user should hear about at start, one line each.
  public var warnings: [String] {
    guard claimTimeout > 0, leaseTimeout <= claimTimeout else { return [] }
    return [
      "--lease-timeout \(leaseTimeout.flagText) is not longer than --claim-timeout"
        + " \(claimTimeout.flagText): a lease its client has not used may expire before it is"
        + " checked, without being revoked at its server, so that client can still get a job there"
    ]
  }

  /// The host the servers the balancer starts send their reports to, for a balancer listening
  /// on the numeric `address`: that address, or loopback when it listens on all interfaces
  /// (`127.0.0.1`, `[::1]` for IPv6).
  static func reportHost(listeningOn address: String) -> String {
    switch address {
    case "0.0.0.0": return "127.0.0.1"
    case "::": return "[::1]"
    default: return address.contains(":") ? "[\(address)]" : address
    }
  }

  /// The address the servers the balancer starts listen on, for a balancer listening on the
  /// numeric `address`: every IPv4 interface, or every interface (IPv6 and IPv4) when the
  /// balancer listens on IPv6, so that a redirect naming the host a client used for the balancer
  /// reaches them.
  static func serverBindAddress(listeningOn address: String) -> String {
    address.contains(":") ? "::" : "0.0.0.0"
  }

  /// The routing policy `policy` names, or nil for the availability queue.
  func makeRoutingPolicy() -> RoutingPolicy? {
    switch policy {
    case .queue: return nil
    case .roundRobin: return RoundRobinPolicy()
    case .random: return RandomPolicy()
    case .leastConnections: return LeastConnectionsPolicy()
    case .consistentHash: return ConsistentHashPolicy(slots: slots, virtualNodes: virtualNodes)
    }
  }
}

extension Double {
  /// The number as a flag would give it: `3`, not `3.0`.
  fileprivate var flagText: String {
    self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self)
  }
}
