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
    .flag("quiet", "do not log one line per request"),
    .flag("check-config", "validate the config, print its local ports one per line, and exit"),
  ])
CommandLineOptions.parseOrExit(&options)
Program.prepare()

let port: Int
do {
  port = try options.port("port", environment: "LB_PORT", default: 8001)
} catch {
  Program.fail(error.description, code: 2, program: "balancer")
}
let configPath = options["config"] ?? "servers.json"
let pool: ServersFile
do {
  pool = try ServersFile.load(path: configPath)
} catch {
  Program.fail(error.description, code: 2, program: "balancer")
}

if options.isSet("check-config") {
  for server in pool.servers where server.host == nil { print(server.port) }
  exit(0)
}

let loop: EventLoop
let server: HTTPServer
let balancer = Balancer(servers: pool.servers)
balancer.log = Program.logger(program: "balancer", quiet: options.isSet("quiet"))
do {
  loop = try EventLoop()
  var configuration = HTTPServer.Configuration(host: options["bind"] ?? "0.0.0.0", port: port)
  configuration.idleTimeout = 60
  server = try HTTPServer(loop: loop, configuration: configuration, handler: balancer)
  try server.start()
} catch {
  Program.fail("\(error)", program: "balancer")
}

for signal in [SIGINT, SIGTERM] {
  loop.onSignal(signal) {
    print("[balancer] stopping")
    server.stopAccepting()
    server.closeAllConnections()
    loop.stop()
  }
}
print(
  "[balancer] listening on port \(server.port) with \(pool.servers.count) servers from \(configPath): "
    + pool.servers.map(\.description).joined(separator: ", "))
loop.run()
