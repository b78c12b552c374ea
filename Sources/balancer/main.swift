import Balancing
import Foundation
import HTTPCore
import ProgramSupport

var options = CommandLineOptions(
  program: "balancer",
  summary: """
    Redirect load balancer: answers GET / with 302 to the first free factorial server, from a FIFO
    queue loaded from servers.json. While none is free, clients wait in line (first come, first
    served) until a server reports with GET /port_update/<port>.
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
    .flag("quiet", "do not log one line per request"),
    .flag("check-config", "validate the config, print its local ports one per line, and exit"),
  ])
CommandLineOptions.parseOrExit(&options)
Program.prepare()

let port: Int
let leaseTimeout: Double
let waitTimeout: Double
let maxWaiting: Int
do {
  port = try options.port("port", environment: "LB_PORT", default: 8001)
  leaseTimeout = try options.number("lease-timeout", in: 0.1...86400, default: 60)
  waitTimeout = try options.number("wait-timeout", in: 0.1...86400, default: 30)
  maxWaiting = Int(try options.number("max-waiting", in: 1...1_000_000, default: 10000))
} catch {
  Program.fail(error.description, code: 2, program: "balancer")
}
let configPath = options["config"] ?? "servers.json"
let file: ServersFile
do {
  file = try ServersFile.load(path: configPath)
} catch {
  Program.fail(error.description, code: 2, program: "balancer")
}

if options.isSet("check-config") {
  for server in file.servers where server.host == nil { print(server.port) }
  exit(0)
}

let loop: EventLoop
let server: HTTPServer
let pool = ServerPool(servers: file.servers, leaseTimeout: leaseTimeout)
let balancer = Balancer(pool: pool)
balancer.waitTimeout = waitTimeout
balancer.maxWaiting = maxWaiting
balancer.log = Program.logger(program: "balancer", quiet: options.isSet("quiet"))
pool.log = { line in print("[balancer] \(line)") }
pool.logsRoutineChanges = !options.isSet("quiet")
do {
  loop = try EventLoop()
  var configuration = HTTPServer.Configuration(host: options["bind"] ?? "0.0.0.0", port: port)
  configuration.idleTimeout = 60
  server = try HTTPServer(loop: loop, configuration: configuration, handler: balancer)
  try server.start()
} catch {
  Program.fail("\(error)", program: "balancer")
}
balancer.clock = { loop.now }

let supervisor = PoolSupervisor(balancer: balancer, probe: HTTPHealthProbe(loop: loop))
loop.schedule(every: 0.1) { supervisor.tick(now: loop.now) }

let watcher = ConfigWatcher(path: configPath)
func reloadConfig(force: Bool) {
  switch watcher.poll(force: force) {
  case .unchanged:
    break
  case .invalid(let reason):
    print("[balancer] config not reloaded, keeping the last good pool: \(reason)")
  case .valid(let file):
    let (added, removed) = pool.reconfigure(file.servers)
    print("[balancer] config reloaded: \(added.count) added, \(removed.count) removed")
  }
}
loop.schedule(every: 1) { reloadConfig(force: false) }
loop.onSignal(SIGHUP) { reloadConfig(force: true) }

for signal in [SIGINT, SIGTERM] {
  loop.onSignal(signal) {
    print("[balancer] stopping: waiting clients get 503, answers in progress are finished")
    server.stopAccepting()
    balancer.shutDown()
    server.closeWhenIdle()
    let deadline = loop.now + 4_500_000_000
    loop.schedule(every: 0.02) {
      if server.connectionCount == 0 || loop.now >= deadline {
        server.closeAllConnections()
        loop.stop()
      }
    }
  }
}
print(
  "[balancer] listening on port \(server.port) with \(file.servers.count) servers from \(configPath): "
    + file.servers.map(\.description).joined(separator: ", "))
loop.run()
print("[balancer] stopped")
