import Balancing
import Foundation
import HTTPCore
import ProgramSupport
import Supervision

var options = CommandLineOptions(
  program: "balancer",
  summary: """
    Redirect load balancer: answers GET / with 302 to the first free factorial server, from a FIFO
    queue loaded from servers.json. While none is free, clients wait in line (first come, first
    served) until a server reports with GET /port_update/<port>. It starts a factorial-server for
    each local entry and restarts those that die (unless --no-spawn); replicas are listed, added
    and removed with GET /rep, POST /add and DELETE /rm.
    """,
  options: [
    .value("port", "PORT", "port to listen on (default 8001, or $LB_PORT)"),
    .value("bind", "ADDRESS", "address to listen on (default 0.0.0.0, all interfaces)"),
    .value("config", "FILE", "the pool, {\"available_servers\": [...]} (default servers.json)"),
    .value(
      "lease-timeout", "SECONDS",
      "ask a leased server that has not reported after this long (default 60)"),
    .value(
      "wait-timeout", "SECONDS", "answer 503 to a client still waiting after this long (default 30)"
    ),
    .value(
      "max-waiting", "N", "answer 503 at once when this many clients wait already (default 10000)"),
    .value(
      "policy", "NAME",
      "queue (default: wait for a free server), round-robin, random, least-connections, consistent-hash"
    ),
    .value("slots", "N", "consistent-hash: slots on the ring (default 512)"),
    .value("virtual-nodes", "N", "consistent-hash: places per server on the ring (default 9)"),
    .value("server-workers", "N", "threads each started server computes with (default 1)"),
    .value(
      "heartbeat-interval", "SECONDS",
      "ask each free server this often whether it is alive; 0 turns it off (default 5)"),
    .flag("no-spawn", "do not start factorial servers; they are started by someone else"),
    .value(
      "server-binary", "PATH", "the factorial-server to start (default: beside this program)"),
    .value(
      "admin-token", "TOKEN",
      "let clients other than loopback call /add and /rm with Authorization: Bearer TOKEN"),
    .flag("quiet", "do not log one line per request (nor routine lease changes)"),
    .flag("check-config", "validate the config, print its local ports one per line, and exit"),
  ])
CommandLineOptions.parseOrExit(&options)
Program.prepare()

func fail(_ message: String, code: Int32 = 2) -> Never {
  Program.fail(message, code: code, program: "balancer")
}

let port: Int
let policyName: PolicyName
let slots: Int
let virtualNodes: Int
let serverWorkers: Int
let leaseTimeout: Double
let heartbeatInterval: Double
let waitTimeout: Double
let maxWaiting: Int
do {
  port = try options.port("port", environment: "LB_PORT", default: 8001)
  leaseTimeout = try options.number("lease-timeout", in: 0.1...86400, default: 60)
  heartbeatInterval = try options.number("heartbeat-interval", in: 0...86400, default: 5)
  waitTimeout = try options.number("wait-timeout", in: 0.1...86400, default: 30)
  maxWaiting = Int(try options.number("max-waiting", in: 1...1_000_000, default: 10000))
  slots = Int(try options.number("slots", in: 1...1_000_000, default: 512))
  virtualNodes = Int(try options.number("virtual-nodes", in: 1...1000, default: 9))
  serverWorkers = Int(try options.number("server-workers", in: 1...64, default: 1))
  guard let name = PolicyName(rawValue: options["policy"] ?? "queue") else {
    fail(
      "--policy: '\(options["policy"]!)' is not one of "
        + PolicyName.allCases.map(\.rawValue).joined(separator: ", "))
  }
  policyName = name
} catch {
  fail(error.description)
}
if let token = options["admin-token"], token.isEmpty || token.contains(where: \.isWhitespace) {
  fail("--admin-token: the token must be non-empty and without spaces")
}
let configPath = options["config"] ?? "servers.json"
let file: ServersFile
do {
  file = try ServersFile.load(path: configPath)
} catch {
  fail(error.description)
}
let localServers = file.servers.filter { $0.host == nil }

if options.isSet("check-config") {
  for server in localServers { print(server.port) }
  exit(0)
}

let spawning = !options.isSet("no-spawn")
let serverBinary = URL(
  fileURLWithPath: options["server-binary"]
    ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    .appendingPathComponent("factorial-server").path)
if spawning {
  guard FileManager.default.isExecutableFile(atPath: serverBinary.path) else {
    fail("cannot run \(serverBinary.path) (use --server-binary PATH, or --no-spawn)")
  }
  // A port someone else already uses would make its server die at every start.
  for server in localServers where !Socket.isPortFree(server.port) {
    fail("port \(server.port) is already in use (listed in \(configPath))", code: 1)
  }
}

let quiet = options.isSet("quiet")
let log: (String) -> Void = { line in print("[balancer] \(line)") }
let loop: EventLoop
let server: HTTPServer
let pool = ServerPool(servers: [], leaseTimeout: leaseTimeout)
let balancer = Balancer(pool: pool, entries: [])
balancer.waitTimeout = waitTimeout
balancer.maxWaiting = maxWaiting
balancer.adminToken = options["admin-token"]
switch policyName {
case .queue: balancer.policy = nil
case .roundRobin: balancer.policy = RoundRobinPolicy()
case .random: balancer.policy = RandomPolicy()
case .leastConnections: balancer.policy = LeastConnectionsPolicy()
case .consistentHash:
  balancer.policy = ConsistentHashPolicy(slots: slots, virtualNodes: virtualNodes)
}
balancer.log = Program.logger(program: "balancer", quiet: quiet)
pool.log = log
pool.logsRoutineChanges = !quiet
let replicas = balancer.replicas
replicas.configPath = configPath
replicas.isPortFree = Socket.isPortFree
replicas.log = log
do {
  loop = try EventLoop()
  var configuration = HTTPServer.Configuration(host: options["bind"] ?? "0.0.0.0", port: port)
  configuration.idleTimeout = 60
  server = try HTTPServer(loop: loop, configuration: configuration, handler: balancer)
  try server.start()
} catch {
  fail("\(error)", code: 1)
}
balancer.clock = { loop.now }
replicas.clock = { loop.now }

let launcher: ProcessLauncher? =
  spawning
  ? ProcessLauncher(loop: loop, executable: serverBinary) { child in
    [
      "--port", "\(child.port)", "--balancer", "127.0.0.1:\(server.port)", "--exit-with-parent",
      "--workers", "\(serverWorkers)",
    ] + (quiet ? ["--quiet"] : [])
  } : nil
if let launcher {
  launcher.log = log
  launcher.onExit = { child, _ in pool.markDown(child, now: loop.now) }
  launcher.onStart = { child in pool.probeSoon(child, now: loop.now) }
  replicas.launcher = launcher
}
// The servers join as they start answering (at once with --no-spawn).
replicas.apply(file)

let supervisor = PoolSupervisor(balancer: balancer, probe: HTTPHealthProbe(loop: loop))
supervisor.heartbeatInterval = heartbeatInterval == 0 ? .infinity : heartbeatInterval
loop.schedule(every: 0.1) { supervisor.tick(now: loop.now) }
if let launcher {
  // A server that is alive but has not answered for ten seconds is killed and restarted.
  loop.schedule(every: 1) {
    for child in pool.servers where child.host == nil {
      if case .down(let since, _, _) = pool.state(of: child), loop.now - since > 10_000_000_000 {
        launcher.killUnresponsive(child, grace: 10)
      }
    }
  }
}

let watcher = ConfigWatcher(path: configPath)
func reloadConfig(force: Bool) {
  switch watcher.poll(force: force) {
  case .unchanged:
    break
  case .invalid(let reason):
    log("config not reloaded, keeping the last good pool: \(reason)")
  case .valid(let file):
    let (added, removed) = replicas.apply(file)
    if force || !added.isEmpty || !removed.isEmpty {
      log("config reloaded: \(added.count) added, \(removed.count) removed")
    }
  }
}
loop.schedule(every: 1) { reloadConfig(force: false) }
loop.onSignal(SIGHUP) { reloadConfig(force: true) }

for signal in [SIGINT, SIGTERM] {
  loop.onSignal(signal) {
    log("stopping: waiting clients get 503, answers in progress are finished")
    launcher?.stopRestarting()
    server.stopAccepting()
    balancer.shutDown()
    server.closeWhenIdle()
    let deadline = loop.now + 4_000_000_000
    loop.schedule(every: 0.02) {
      if server.connectionCount == 0 || loop.now >= deadline {
        server.closeAllConnections()
        loop.stop()
      }
    }
  }
}
log(
  "listening on port \(server.port) with \(file.entries.count) servers from \(configPath): "
    + file.entries.map(\.displayName).joined(separator: ", ")
    + (spawning ? " (starting the local ones)" : "") + ", policy \(policyName.rawValue)")
loop.run()
launcher?.stopAll()
log("stopped")
