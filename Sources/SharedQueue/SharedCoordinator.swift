import Balancing
import HTTPCore
import RedisClient

/// Keeps one balancer's part in the shared books: says every second that it is alive (so that
/// servers freed elsewhere are handed to its waiting clients), renews its view of the books four
/// times a second, and takes turns with the others as the coordinator: the one balancer that
/// runs the expiry and claim checks and the health checks (a lock with a time to live in Redis,
/// so that another takes over within `timeToLive` seconds when it dies). The coordinator also
/// repairs what a balancer killed half way through a step left behind: a server whose lease
/// ended but was never put back, or one the books show as out while it is up here.
public final class SharedCoordinator {
  public let store: SharedLeaseStore
  public let broker: ServerBroker
  /// Seconds the alive mark and the coordinator's lock last without renewal.
  public var timeToLive = 3.0
  /// Seconds a server may stay between its lease's end and the free list before it is put back.
  public var idleGrace = 2.0
  /// Receives a line when this balancer starts or stops coordinating, or repairs the books.
  public var log: ((String) -> Void)?
  /// Whether this balancer runs the checks now.
  public private(set) var isCoordinator = false
  private var timers: [TimerID] = []
  private var lastSweep: UInt64 = 0
  /// Servers seen out of place in consecutive sweeps (acted on at the second sighting, so that
  /// a view older than a step just taken is never acted on).
  private var suspects: [ServerAddress: Int] = [:]

  public init(store: SharedLeaseStore, broker: ServerBroker) {
    self.store = store
    self.broker = broker
  }

  /// Starts the heartbeat and the refreshes on `loop`.
  public func start(on loop: EventLoop) {
    heartbeat()
    store.refresh()
    timers.append(loop.schedule(every: 1) { [weak self] in self?.heartbeat() })
    timers.append(
      loop.schedule(every: 0.25) { [weak self] in self?.refresh() })
  }

  /// Leaves the books: no longer alive, and the lock free for another balancer at once.
  public func retire(on loop: EventLoop, completion: @escaping () -> Void = {}) {
    for timer in timers { loop.cancel(timer) }
    timers = []
    isCoordinator = false
    store.run(SharedScripts.retire, [store.balancerID]) { _ in completion() }
  }

  func heartbeat() {
    let milliseconds = String(Int(timeToLive * 1000))
    store.run(SharedScripts.heartbeat, [store.balancerID, milliseconds]) { [weak self] result in
      guard let self else { return }
      var holds = false
      if case .success(let reply) = result, let parts = reply.array, parts.count == 2 {
        holds = parts[0].int == 1
        // Taken for dead meanwhile (paused, or Redis was): its clients rejoin the line.
        if parts[1].int == 1 { self.store.onLineLost?() }
      }
      if holds != self.isCoordinator {
        self.isCoordinator = holds
        self.log?(
          holds
            ? "coordinating: this balancer runs the lease and health checks"
            : "another balancer runs the lease and health checks")
      }
    }
  }

  /// Renews the view of the books, then follows them (`followBooks`) and, on the coordinator,
  /// repairs what was left behind; `completion` gets whether the view could be renewed.
  public func refresh(completion: @escaping (Bool) -> Void = { _ in }) {
    store.refresh { [weak self] fresh in
      if fresh, let self {
        self.followBooks()
        self.sweepIfDue()
      }
      completion(fresh)
    }
  }

  /// After each fresh view, on every balancer: a removed server whose last lease ended
  /// elsewhere leaves the pool; and a balancer that does not coordinate (so does not probe)
  /// takes a server it once found down as up again once the books show it free or leased.
  private func followBooks() {
    let pool = broker.pool
    let now = broker.clock()
    for server in pool.servers {
      if pool.isRetired(server) {
        broker.dropIfRetiredAndIdle(server)
        continue
      }
      guard !isCoordinator, case .down? = pool.health(of: server) else { continue }
      switch store.states[server] {
      case .free?, .leased?: broker.finishProbe(of: server, result: .idle, now: now)
      default: break
      }
    }
  }

  /// Once a second on the coordinator, after a fresh view: puts back what was left behind.
  private func sweepIfDue() {
    let now = broker.clock()
    guard isCoordinator, now &- lastSweep >= 1_000_000_000 else { return }
    lastSweep = now
    store.run(SharedScripts.purgeWaiting, []) { _ in }
    let pool = broker.pool
    let grace = MonotonicClock.nanoseconds(idleGrace)
    var seen: [ServerAddress: Int] = [:]
    for server in pool.servers {
      let canServe = pool.canServe(server)
      let misplaced: Bool
      switch store.states[server] {
      case nil: misplaced = canServe
      case .idle(let since)?: misplaced = now &- since > grace
      case .out?: misplaced = canServe
      case .free?: misplaced = !canServe || !store.freeList.contains(server)
      case .leased?: misplaced = false
      }
      guard misplaced else { continue }
      let sightings = (suspects[server] ?? 0) + 1
      seen[server] = sightings
      guard sightings >= 2 else { continue }
      seen[server] = nil
      repair(server, state: store.states[server], canServe: canServe, now: now)
    }
    suspects = seen
  }

  private func repair(
    _ server: ServerAddress, state: SharedLeaseStore.ServerState?, canServe: Bool, now: UInt64
  ) {
    guard canServe else { return broker.dispatcher.serverStopped(server) }
    // Another balancer saw it down: out in the books, or, if it was leased then, idle with the
    // lease stranded (that balancer may have gone since). Probe it here: it is put back when it
    // answers, once the leases stranded there are revoked (they are in the books); `offer`
    // would only hold it back for them.
    let seenDown =
      state == .out
      ? "out in the shared books"
      : broker.strandedLeases(of: server).isEmpty ? nil : "leases stranded in the shared books"
    if let seenDown {
      log?("\(server): \(seenDown): probing it")
      return broker.markDown(server, now: now, reason: seenDown)
    }
    // Held back while another entry for the same process holds a lease (`offer`).
    guard broker.offer(server) else { return }
    log?("\(server): no lease and not on the free list: put back")
  }
}
