import FactorialService
import Foundation
import HTTPCore
import ProgramSupport

/// The factorial-server program, wired: the routes on an `HTTPServer`, worker threads for the
/// arithmetic, the reporter that sends each finished job to a balancer, and the signal handlers.
public final class FactorialServerApp {
  public let configuration: FactorialServerConfiguration
  public let loop: EventLoop
  public let handler: FactorialHandler
  private let workers: WorkerPool
  private let reporter: BalancerReporter
  private var server: HTTPServer?

  public init(configuration: FactorialServerConfiguration, loop: EventLoop) {
    self.configuration = configuration
    self.loop = loop
    let workers = WorkerPool(workers: configuration.workers)
    self.workers = workers
    handler = FactorialHandler(port: configuration.port) { [loop] work, deliver in
      workers.submit {
        let body = work()
        loop.execute { deliver(body) }
      }
    }
    handler.queueLength = { [workers] in workers.pendingCount }
    handler.maxQueue = configuration.maxQueue
    let port = configuration.port
    let log = Program.logger(
      program: "server \(port)", quiet: configuration.quiet, format: configuration.logFormat)
    let errorLog = Program.logger(program: "server \(port)", format: configuration.logFormat)
    let reporter = BalancerReporter(
      loop: loop, balancers: configuration.balancers, log: log, warn: errorLog)
    self.reporter = reporter
    // A client with a revoked lease goes back to the current balancer: by the name it used for
    // this server when that balancer is on this machine, else by the balancer's own address.
    handler.balancerLocation = { [reporter] request in
      let balancer = reporter.current
      let host =
        balancer.isOnThisMachine ? (request.hostName ?? balancer.urlHost) : balancer.urlHost
      let named = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
      return "http://\(named):\(balancer.port)/"
    }
    handler.log = log
    handler.report = { [reporter] path in reporter.report(path) }
  }

  deinit { workers.stop() }

  /// The port the server listens on (once started).
  public var port: Int { server?.port ?? 0 }

  /// Listens and installs the signal handlers (and, if asked, the watch on the parent).
  public func start() throws {
    var settings = HTTPServer.Configuration(
      host: configuration.bindAddress, port: configuration.port)
    settings.bodyLimit = { _, _ in 0 }  // no route takes a body
    let server = try HTTPServer(
      loop: loop,
      configuration: settings, handler: handler)
    try server.start()
    self.server = server
    if let pid = configuration.parentPID {
      ParentProcess(pid: pid).onExit(on: loop) { [loop] in loop.stop() }
    }
    for signal in [SIGINT, SIGTERM] {
      loop.onSignal(signal) { [weak self] in self?.stop() }
    }
    Program.logger(program: "server \(configuration.port)", format: configuration.logFormat)(
      "listening on port \(server.port), reporting to "
        + configuration.balancers.map(\.description).joined(separator: ", ")
    )
  }

  /// Runs the event loop until the server stops.
  public func run() { loop.run() }

  /// Closes every connection and ends the loop.
  public func stop() {
    server?.stopAccepting()
    server?.closeAllConnections()
    workers.stop()
    loop.stop()
  }
}
