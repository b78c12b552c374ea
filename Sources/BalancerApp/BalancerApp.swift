import Balancing
import Documents
import Foundation
import HTTPCore
import ProgramSupport
import RedisClient
import SharedQueue
import Supervision

/// The balancer program, wired: the routes on an `HTTPServer`, the pool and its dispatcher, the
/// supervisor's timers, live reload of servers.json, the processes it supervises, and a graceful
/// stop on SIGINT/SIGTERM. Built from a `BalancerConfiguration` with its collaborators passed in
/// (event loop, launcher, health probe, clock), so tests can drive it without the real ones.
public final class BalancerApp {
  /// Why the balancer could not start, with the exit code to use (2: bad input; 1: the system).
  public struct StartupError: Error, CustomStringConvertible {
    public let description: String
    public let exitCode: Int32
  }

  public let configuration: BalancerConfiguration
  public let loop: EventLoop
  public let balancer: Balancer
  public let supervisor: PoolSupervisor
  public let launcher: ServerLauncher?
  /// The current monotonic time in nanoseconds (the loop's, unless a test gives its own).
  public let clock: () -> UInt64
  let log: (String) -> Void
  private let watcher: ConfigWatcher
  private let initialFile: ServersFile
  private var server: HTTPServer?
  /// With `--shared-queue`: the parts that keep this balancer in the shared books.
  private let shared: SharedParts?

  /// The parts of a balancer that shares its queue, leases and pool in Redis.
  struct SharedParts {
    let store: SharedLeaseStore
    let dispatcher: SharedQueueDispatcher
    let coordinator: SharedCoordinator
    let membership: SharedMembership
    let grants: RedisConnection
  }

  /// Wires the balancer; nothing listens or runs until `start`.
  public init(
    configuration: BalancerConfiguration, file: ServersFile, loop: EventLoop,
    launcher: ServerLauncher?, probe: HealthProbe, clock: (() -> UInt64)? = nil,
    identifier: ServerIdentifier = .system(), log: ((String) -> Void)? = nil
  ) {
    self.configuration = configuration
    self.loop = loop
    self.launcher = launcher
    let log = log ?? Program.logger(program: "balancer", format: configuration.logFormat)
    self.log = log
    self.initialFile = file
    // The loop's clock, held strongly: read several times per request, and a weak reference to
    // the loop would make each read slow.
    let loopClock = loop.clock
    let clock = clock ?? { loopClock.now }
    self.clock = clock

    var sharedStore: SharedLeaseStore?
    var grants: RedisConnection?
    let store: LeaseStore
    if let location = configuration.sharedQueue {
      let connect = {
        var settings = RedisConnection.Configuration(host: location.host, port: location.port)
        // A client asking while Redis is away gets its 503 within two seconds; while it hangs
        // with its connections open (stopped, or cut off without a reset), within three: the
        // longest a command waits (BLPOP blocks for one).
        settings.unavailableTimeout = 2
        settings.replyTimeout = 3
        return RedisConnection(loop: loop, configuration: settings)
      }
      let books = SharedLeaseStore(
        connection: connect(), prefix: location.prefix, balancerID: Self.uniqueID())
      books.clock = clock
      books.log = log
      sharedStore = books
      grants = connect()
      store = books
    } else {
      store = LeaseLedger()
    }
    let issuer = LeaseIssuer(store: store, leaseTimeout: configuration.leaseTimeout)
    issuer.claimTimeout = configuration.claimTimeout
    issuer.clock = clock
    let pool = ServerPool()
    let dispatcher: Dispatcher
    if let sharedStore, let grants {
      let queue = SharedQueueDispatcher(store: sharedStore, issuer: issuer, grants: grants)
      queue.waitTimeout = configuration.waitTimeout
      queue.maxWaiting = configuration.maxWaiting
      queue.clock = clock
      queue.log = log
      dispatcher = queue
    } else if let policy = configuration.makeRoutingPolicy() {
      dispatcher = PolicyDispatcher(
        name: configuration.policy.rawValue, policy: policy, pool: pool, issuer: issuer)
    } else {
      let queue = QueueDispatcher(queue: AvailabilityQueue<ServerAddress>(), issuer: issuer)
      queue.waitTimeout = configuration.waitTimeout
      queue.maxWaiting = configuration.maxWaiting
      queue.clock = clock
      dispatcher = queue
    }
    let broker = ServerBroker(pool: pool, issuer: issuer, dispatcher: dispatcher)
    broker.clock = clock
    broker.identifier = identifier
    broker.maxLeasesPerClient = configuration.maxLeasesPerClient
    balancer = Balancer(broker: broker, entries: [])
    // Changes of servers and leases go to the log and to the dashboard's recent changes.
    let history = balancer.history
    let noted: (String) -> Void = { line in
      log(line)
      history.note(line)
    }
    broker.log = log
    broker.onChange = { history.note($0) }
    broker.logsRoutineChanges = !configuration.quiet
    pool.log = noted
    balancer.adminToken = configuration.adminToken
    balancer.log = Program.logger(
      program: "balancer", quiet: configuration.quiet, format: configuration.logFormat)
    let replicas = balancer.replicas
    replicas.configPath = configuration.configPath
    replicas.isPortFree = Socket.isPortFree
    replicas.log = log
    replicas.clock = clock
    replicas.launcher = launcher
    // The queue's promise (one job per server at a time), unless shared books know the leases.
    replicas.checksJoiningServers =
      configuration.policy == .queue && configuration.sharedQueue == nil
    supervisor = PoolSupervisor(broker: broker, probe: probe)
    supervisor.heartbeatInterval = configuration.heartbeatInterval
    // From the pool loaded (an edit since then, while the balancer started, is taken at once).
    let watcher = ConfigWatcher(path: configuration.configPath, loaded: file)
    self.watcher = watcher
    replicas.onWrite = { [weak watcher] in watcher?.wrote($0) }
    // A process's news goes to the entries that name it (its port, or another spelling of it).
    launcher?.onExit = { [weak broker, weak replicas] process in
      for server in replicas?.entries(runBy: process) ?? [] {
        broker?.pool.processExited(server)
        broker?.markDown(server, now: clock())
      }
    }
    launcher?.onStart = { [weak broker, weak replicas] process in
      for server in replicas?.entries(runBy: process) ?? [] {
        broker?.pool.processStarted(server)
        broker?.probeSoon(server, now: clock())
      }
    }
    if let sharedStore, let grants, let queue = dispatcher as? SharedQueueDispatcher {
      broker.isDownElsewhere = { [unowned sharedStore] in sharedStore.states[$0] == .out }
      let coordinator = SharedCoordinator(store: sharedStore, broker: broker)
      coordinator.log = noted
      supervisor.isCoordinator = { [unowned coordinator] in coordinator.isCoordinator }
      let membership = SharedMembership(store: sharedStore)
      membership.log = log
      membership.localPool = { [unowned replicas] in ServersFile(entries: replicas.entries) }
      // Taken even while servers.json holds a hand edit that could not be loaded, which is
      // then left in place (not rewritten with this pool).
      membership.adopt = { [unowned replicas, unowned watcher] file in
        do { try replicas.adopt(file, pendingEdit: watcher.pendingProblem) } catch {
          log("the shared pool cannot be used here, keeping this one: \(error)")
        }
      }
      replicas.onChange = { [unowned membership] file in membership.publish(file) }
      // Servers are put back only once the books are read: the pool and the servers' states in
      // Redis take precedence over this balancer's servers.json and first view.
      membership.onSynced = { [unowned queue, unowned broker] in
        queue.openWhenRead(broker: broker)
      }
      shared = SharedParts(
        store: sharedStore, dispatcher: queue, coordinator: coordinator, membership: membership,
        grants: grants)
    } else {
      shared = nil
    }
  }

  /// A name for this balancer in the shared books: host, process and a random part.
  static func uniqueID() -> String {
    var name = [CChar](repeating: 0, count: 256)
    gethostname(&name, name.count)
    let host = String(cString: name).filter { $0 != "|" && $0 != ":" }
    return "\(host)-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
  }

  /// The port the balancer listens on (once started).
  public var port: Int { server?.port ?? 0 }
  /// The numeric address the balancer listens on (once started), "" before.
  public var address: String { server?.address ?? "" }

  /// Listens, applies servers.json (starting the local servers when supervising), and schedules
  /// the periodic duties and (unless `handlingSignals` is false, as in tests) the handlers of
  /// SIGHUP (reload), SIGINT and SIGTERM (stop).
  public func start(handlingSignals: Bool = true) throws {
    var settings = HTTPServer.Configuration(
      host: configuration.bindAddress, port: configuration.port)
    settings.idleTimeout = 60
    // Only the replica routes take a body (a small JSON document).
    settings.bodyLimit = { _, path in path == "/add" || path == "/rm" ? 64 * 1024 : 0 }
    settings.maxConnections = configuration.maxConnections
    let server = try HTTPServer(loop: loop, configuration: settings, handler: balancer)
    try server.start()
    self.server = server
    balancer.broker.balancerPort = server.port
    // Servers that join to be checked first (--no-spawn) are asked at once, not at the
    // supervisor's next round.
    balancer.broker.onServersToCheck = { [weak self] in
      _ = self?.loop.schedule(after: 0) { [weak self] in
        guard let self else { return }
        self.supervisor.tick(now: self.clock())
      }
    }
    // Before any server is started: they start with every signal at its default action, not
    // ignored as the program's SIGHUP is until now.
    if handlingSignals {
      loop.onSignal(SIGHUP) { [weak self] in self?.reloadConfig(force: true) }
      for signal in [SIGINT, SIGTERM] {
        loop.onSignal(signal) { [weak self] in self?.stop() }
      }
    }
    // The servers join as they start answering (with --no-spawn, once a check finds them idle
    // or silent).
    try balancer.replicas.apply(initialFile)
    if let shared, let location = configuration.sharedQueue {
      shared.store.connection.connect()
      shared.grants.connect()
      shared.coordinator.start(on: loop)
      shared.membership.start(on: loop)
      shared.dispatcher.listenForGrants()
      log("sharing the queue, the leases and the pool at \(location) as \(shared.store.balancerID)")
    }
    scheduleRound()
    if launcher != nil {
      loop.schedule(every: 1) { [weak self] in
        guard let self else { return }
        self.killUnresponsiveServers(now: self.clock())
      }
    }
    loop.schedule(every: 1) { [weak self] in self?.reloadConfig(force: false) }
    balancer.replicas.beforeChange = { [weak self] in
      guard let self else { return nil }
      self.reloadConfig(force: false)
      return self.watcher.pendingProblem
    }
    if let pid = configuration.parentPID {
      ParentProcess(pid: pid).onExit(on: loop) { [weak self] in
        self?.log("the process that started this one exited")
        self?.stop()
      }
    }
    let entries = initialFile.entries
    log(
      "listening on port \(server.port) with \(entries.count) servers from \(configuration.configPath): "
        + entries.map(\.displayName).joined(separator: ", ")
        + (launcher != nil ? " (starting the local ones)" : "")
        + ", policy \(configuration.policy.rawValue)")
    for warning in configuration.warnings { log("warning: " + warning) }
  }

  /// The supervisor's next round, as soon as it is worth doing (`PoolSupervisor.nextRoundDelay`).
  private func scheduleRound() {
    _ = loop.schedule(after: supervisor.nextRoundDelay()) { [weak self] in
      guard let self else { return }
      self.supervisor.tick(now: self.clock())
      self.scheduleRound()
    }
  }

  /// Runs the event loop until the balancer stops, then stops the servers it started.
  public func run() {
    loop.run()
    launcher?.stopAll(timeout: 2)
    log("stopped")
  }

  /// Kills the process of every local server down for longer than the grace period: alive but
  /// not answering. Its restart brings it back.
  public func killUnresponsiveServers(now: UInt64) {
    guard let launcher else { return }
    let grace = MonotonicClock.nanoseconds(configuration.unresponsiveGrace)
    for server in balancer.broker.pool.servers {
      guard let process = balancer.replicas.process(of: server) else { continue }
      if case .down(let since, _, _) = balancer.broker.pool.health(of: server), now - since > grace
      {
        launcher.killUnresponsive(process, grace: configuration.unresponsiveGrace)
      }
    }
  }

  /// Applies servers.json if it changed (or, with `force`, as SIGHUP asks, in any case); an
  /// invalid file is reported and the last good pool kept, and /add and /rm are refused until
  /// the file is fixed or reverted (`ConfigWatcher.pendingProblem`).
  public func reloadConfig(force: Bool) {
    switch watcher.poll(force: force) {
    case .unchanged:
      break
    case .invalid(let reason):
      log("config not reloaded, keeping the last good pool: \(reason)")
    case .valid(let file):
      do {
        let (added, removed) = try balancer.replicas.apply(file)
        if force || !added.isEmpty || !removed.isEmpty {
          log("config reloaded: \(added.count) added, \(removed.count) removed")
        }
      } catch {
        let reason = "\(configuration.configPath): \(error.message)"
        watcher.reject(reason)
        log("config not reloaded, keeping the last good pool: \(reason)")
      }
    }
  }

  /// Stops gracefully: no new connections, waiting clients get 503, answers in progress are
  /// finished (for at most 4 s), then the loop ends.
  public func stop() {
    guard let server else { return loop.stop() }
    log("stopping: waiting clients get 503, answers in progress are finished")
    launcher?.stopRestarting()
    server.stopAccepting()
    // Every connection closes once answered, so the 503s that follow say `Connection: close`.
    server.closeWhenIdle()
    balancer.broker.shutDown()
    if let shared {
      shared.membership.stop(on: loop)
      shared.coordinator.retire(on: loop)
    }
    let deadline = loop.now + 4_000_000_000
    loop.schedule(every: 0.02) { [loop] in
      if server.connectionCount == 0 || loop.now >= deadline {
        server.closeAllConnections()
        loop.stop()
      }
    }
  }
}

extension BalancerApp {
  /// The balancer as the program runs it: servers.json loaded and checked, the real event loop,
  /// health probe and (unless `--no-spawn`) process launcher.
  public static func make(_ configuration: BalancerConfiguration) throws(StartupError)
    -> BalancerApp
  {
    let identifier = ServerIdentifier.system()
    let file = try loadServers(configuration, identifier: identifier)
    let loop: EventLoop
    do {
      loop = try EventLoop()
    } catch {
      throw StartupError(description: "\(error)", exitCode: 1)
    }
    if configuration.port != 0 && !Socket.isPortFree(configuration.port) {
      throw StartupError(
        description: runningBalancer(on: configuration.port)
          ? "a balancer already runs on port \(configuration.port): stop it first, or use --port"
          : "port \(configuration.port) is already in use (choose another with --port)",
        exitCode: 1)
    }
    var launcher: ProcessLauncher?
    if configuration.spawnsServers {
      let binary =
        configuration.serverBinary
        ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("factorial-server").path
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: binary, isDirectory: &isDirectory),
        !isDirectory.boolValue, FileManager.default.isExecutableFile(atPath: binary)
      else {
        throw StartupError(
          description: "cannot run \(binary) (use --server-binary PATH, or --no-spawn)",
          exitCode: 2)
      }
      // A port someone else already uses would make its server die at every start. Servers
      // that a killed balancer left behind let go of theirs within half a second (they watch
      // their parent): a restart right after a crash waits for them.
      let ports = file.servers.filter { $0.host == nil }.map(\.port)
      if let taken = Self.portStillTaken(ports, waiting: 2) {
        throw StartupError(
          description: "port \(taken) is already in use (listed in \(configuration.configPath))",
          exitCode: 1)
      }
      launcher = ProcessLauncher(loop: loop, executable: URL(fileURLWithPath: binary))
    }
    let probe = HTTPHealthProbe(loop: loop)
    let app = BalancerApp(
      configuration: configuration, file: file, loop: loop, launcher: launcher, probe: probe,
      identifier: identifier)
    probe.numericHost = { [unowned app] in app.balancer.broker.numericHost(of: $0) }
    if let launcher {
      let workers = configuration.serverWorkers
      let quiet = configuration.quiet
      let format = configuration.logFormat
      launcher.arguments = { [unowned app] child in
        // From the address the balancer's listener took: a --bind name is resolved once.
        let address = app.address
        let bind = BalancerConfiguration.serverBindAddress(listeningOn: address)
        let reportHost = BalancerConfiguration.reportHost(listeningOn: address)
        return [
          "--port", "\(child.port)", "--bind", bind, "--balancer", "\(reportHost):\(app.port)",
          "--parent-pid", "\(getpid())", "--workers", "\(workers)",
        ] + (quiet ? ["--quiet"] : []) + ["--log-format", format.rawValue]
      }
      launcher.log = app.log
    }
    return app
  }
}

extension BalancerApp {
  /// The first of `ports` that is still in use after up to `seconds` of waiting for all of them
  /// to be free, or nil once they are.
  static func portStillTaken(_ ports: [Int], waiting seconds: Double) -> Int? {
    let deadline = MonotonicClock.now() + MonotonicClock.nanoseconds(seconds)
    while let taken = ports.first(where: { !Socket.isPortFree($0) }) {
      guard MonotonicClock.now() < deadline else { return taken }
      usleep(50_000)
    }
    return nil
  }

  /// Whether what listens on `port` of this machine is a balancer (answers our /health).
  static func runningBalancer(on port: Int) -> Bool {
    guard let client = try? BlockingHTTPClient(port: port, timeout: 1),
      let response = try? client.get("/health")
    else { return false }
    return (try? BalancerHealth.decode(response.body)) != nil
  }

  /// servers.json as the balancer starts with it: read, and every server one identity (names
  /// resolve, no server listed twice, none at the balancer's own address).
  static func loadServers(
    _ configuration: BalancerConfiguration, identifier: ServerIdentifier = .system()
  ) throws(StartupError) -> ServersFile {
    let file: ServersFile
    do {
      file = try ServersFile.load(path: configuration.configPath)
    } catch {
      throw StartupError(description: error.description, exitCode: 2)
    }
    do {
      _ = try identifier.identities(
        of: file.servers, balancerPort: configuration.port == 0 ? nil : configuration.port)
    } catch {
      throw StartupError(description: "\(configuration.configPath): \(error)", exitCode: 2)
    }
    return file
  }

  /// The local ports of servers.json, in order, if the balancer would start with it
  /// (`--check-config`: the same checks as a start, nothing started).
  public static func localPorts(_ configuration: BalancerConfiguration) throws(StartupError)
    -> [Int]
  {
    try loadServers(configuration).servers.filter { $0.host == nil }.map(\.port)
  }
}
