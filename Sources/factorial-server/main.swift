import FactorialService
import Foundation
import HTTPCore
import ProgramSupport

var options = CommandLineOptions(
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
      "balancer", "HOST:PORT",
      "where to report (default $LB_IP_ADDR:$LB_PORT, else 127.0.0.1:8001)"),
    .value("workers", "N", "threads computing factorials (default 1)"),
    .flag("quiet", "do not log one line per request"),
    .flag("exit-with-parent", "exit when the process that started this one exits (the balancer)"),
  ])
CommandLineOptions.parseOrExit(&options)
Program.prepare()

func fail(_ message: String, code: Int32 = 2) -> Never {
  Program.fail(message, code: code, program: "factorial-server")
}

let port: Int
let balancerHost: String
let balancerPort: Int
let workers: Int
do {
  port = try options.port("port", default: 5001)
  // The server names its own port in reports, so it must be a real one.
  if port == 0 { fail("--port: the server must know its port to report it; 0 is not allowed") }
  workers = Int(try options.number("workers", in: 1...64, default: 1))
  let environment = ProcessInfo.processInfo.environment
  if let address = options["balancer"] {
    guard let colon = address.lastIndex(of: ":"), colon != address.startIndex,
      let value = Int(address[address.index(after: colon)...]), (1...65535).contains(value)
    else { fail("--balancer: '\(address)' is not HOST:PORT") }
    balancerHost = String(address[..<colon])
    balancerPort = value
  } else {
    balancerHost = environment["LB_IP_ADDR"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
    balancerPort = try options.port(nil, environment: "LB_PORT", default: 8001)
  }
} catch {
  fail(error.description)
}

let loop: EventLoop
let server: HTTPServer
let log = Program.logger(program: "server \(port)", quiet: options.isSet("quiet"))
let pool = WorkerPool(workers: workers)
do {
  loop = try EventLoop()
} catch {
  fail("\(error)", code: 1)
}
let reporter = HTTPClient(loop: loop, host: balancerHost, port: balancerPort)
let handler = FactorialHandler(port: port) { work, deliver in
  pool.submit {
    let body = work()
    loop.execute { deliver(body) }
  }
}
handler.log = log
handler.report = { path in
  reporter.send(path: path) { result in
    switch result {
    case .success(let response) where response.statusCode == 200:
      log?("reported \(path)")
    case .success(let response):
      print("[server \(port)] report \(path) answered \(response.statusCode): \(response.text)")
    case .failure(let failure):
      print("[server \(port)] report \(path) failed: \(failure)")
    }
  }
}
do {
  server = try HTTPServer(
    loop: loop,
    configuration: HTTPServer.Configuration(host: options["bind"] ?? "0.0.0.0", port: port),
    handler: handler)
  try server.start()
} catch {
  fail("\(error)", code: 1)
}
if options.isSet("exit-with-parent") {
  let parent = getppid()
  loop.schedule(every: 0.5) {
    if getppid() != parent { loop.stop() }
  }
}

for signal in [SIGINT, SIGTERM] {
  loop.onSignal(signal) {
    server.stopAccepting()
    server.closeAllConnections()
    loop.stop()
  }
}
print(
  "[server \(port)] listening on port \(server.port), reporting to \(balancerHost):\(balancerPort)")
loop.run()
