import Documents
import Foundation
import HTTPCore

/// Hands out servers and takes them back: ties the pool (membership and health), the lease
/// store and the dispatcher together. Every event that changes who may get a server (a report,
/// an overdue lease checked, a server down or back, a new configuration) comes through here, is
/// settled in the pool and the store first, and only then reaches the dispatcher, which answers
/// the clients. No HTTP: `Balancer` maps routes onto it. Call from one thread.
public final class ServerBroker {
  public let pool: ServerPool
  public let store: LeaseStore
  public let issuer: LeaseIssuer
  public let dispatcher: Dispatcher
  /// Receives one line per lease or server change (routine ones only if
  /// `logsRoutineChanges`).
  public var log: ((String) -> Void)?
  /// Receives the unusual changes only (expiry, revocation, refusals, down): what a person
  /// watching the balancer wants to see.
  public var onChange: ((String) -> Void)?
  /// Whether routine changes (a lease reported, the server free again) are logged too, or only
  /// the unusual ones (expiry, down, back, added, removed).
  public var logsRoutineChanges = true
  /// The current monotonic time in nanoseconds.
  public var clock: () -> UInt64 = MonotonicClock.now
  /// Called when servers joined to be checked first (see `reconfigure`), or one found idle is to
  /// be asked again (see `ServerPool.joinReadyServers(now:)`): the program runs the
  /// supervisor's round at once, so that they are asked now rather than at its next round (up
  /// to a second away while the balancer is idle).
  public var onServersToCheck: (() -> Void)?
  public private(set) var isShuttingDown = false
  /// How many unclaimed leases one client address may hold, counting its requests still waiting
  /// for one; more get 429 (0: no limit).
  public var maxLeasesPerClient = 0
  /// Resolves servers' names when a configuration is applied, and once each for an entry this
  /// pool does not list but the books hold leases of (see `identityOfEntry`); never per request.
  public var identifier = ServerIdentifier.loopbackOnly
  /// The balancer's own port, which no local server may use.
  public var balancerPort: Int?
  /// Whether another balancer sharing the books found `server` down (nil when alone): shown as
  /// `down` here too, though only the balancer that checks servers keeps it down in its pool.
  public var isDownElsewhere: ((ServerAddress) -> Bool)?
  /// Refused reports by reason (`unknown_lease`, `lease_required`, ...).
  public private(set) var refusedReports: [String: Int] = [:]
  /// Clients refused a lease because they held too many unclaimed ones.
  public private(set) var refusedClients = 0
  /// Requests still waiting for a server, by client address (counted only with a limit per
  /// client): each will become an unclaimed lease.
  private var waitingByClient: [String: Int] = [:]
  private var identities: [ServerAddress: ServerIdentity] = [:]
  /// The identities of entries this pool does not list that were found holding a lease or
  /// stranded leases in the books (another balancer's entry, or one forgotten here), worked out
  /// once each by `offer` or `adoptStranded` so that a name is not resolved again at every offer;
  /// nil for a name that does not resolve here. One per such entry met since the start.
  private var identitiesOutsidePool: [ServerAddress: ServerIdentity?] = [:]
  /// Servers that have reported with a lease: a report without one is not theirs.
  private var reportsWithLeases: Set<ServerAddress> = []
  /// The store, when it is the in-process ledger: reports with a lease are then settled at once.
  private let ledger: LeaseLedger?

  /// Every server of `pool` that can serve starts free in `dispatcher`.
  public init(pool: ServerPool, issuer: LeaseIssuer, dispatcher: Dispatcher) {
    self.pool = pool
    self.store = issuer.store
    self.issuer = issuer
    self.dispatcher = dispatcher
    ledger = store as? LeaseLedger
    for server in pool.servers {
      if case .success(let identity) = identifier.identity(of: server) {
        identities[server] = identity
      }
    }
    for server in pool.serving where store.inFlight(server) == 0 {
      dispatcher.serverFreed(server)
    }
  }

  /// Seconds a lease is trusted before it is checked or ends.
  public var leaseTimeout: Double {
    get { issuer.leaseTimeout }
    set { issuer.leaseTimeout = newValue }
  }

  // MARK: - Clients

  /// A client asks for a server.
  public func request(_ claim: ServerClaim) {
    guard !isShuttingDown else {
      claim.answer(.unavailable("the balancer is shutting down"))
      return
    }
    guard maxLeasesPerClient > 0 else { return dispatcher.dispatch(claim) }
    let client = claim.client
    let waiting = waitingByClient[client] ?? 0
    if store.unclaimedCount(of: client) + waiting >= maxLeasesPerClient {
      refusedClients += 1
      note("\(client): refused a lease: it holds or waits for \(maxLeasesPerClient) unused ones")
      claim.answer(
        .tooManyLeases(
          "this client holds or waits for \(maxLeasesPerClient) leases it has not used;"
            + " use them first"))
      return
    }
    dispatcher.dispatch(claim)
    guard claim.isOpen else { return }
    // It waits in line: it counts toward the limit until it is answered or leaves.
    waitingByClient[client] = waiting + 1
    claim.whenSettled { [weak self] in
      guard let self else { return }
      let left = (waitingByClient[client] ?? 1) - 1
      waitingByClient[client] = left > 0 ? left : nil
    }
  }

  /// A server reports that its job is done: `/port_update/<port>[?lease=<token>]`, from the
  /// numeric address `source`. A lease is matched by its token; a report without one (a server
  /// written for the original) is accepted only from the server's own address, and only from a
  /// server that has never reported with a lease.
  public func report(
    port: Int, token: String?, source: String, completion: @escaping (ReportOutcome) -> Void
  ) {
    if let outcome = reportAtOnce(port: port, token: token) { return completion(outcome) }
    if let token {
      return store.report(token: token, port: port) { [unowned self] outcome in
        completion(self.settle(outcome, port: port, token: token))
      }
    }
    let candidates = pool.servers.filter { $0.port == port }
    guard !candidates.isEmpty else { return completion(settled(.notInPool(port: port), nil)) }
    guard
      let server = candidates.first(where: {
        identities[$0]?.matches(source: source, localAddresses: identifier.localAddresses) ?? false
      })
    else { return completion(settled(.foreignSource(port: port, source: source), nil)) }
    guard !reportsWithLeases.contains(server) else {
      return completion(settled(.leaseRequired(server), nil))
    }
    store.reportWithoutToken(server) { [unowned self] outcome in
      completion(self.settled(outcome, nil))
    }
  }

  /// A report with a lease, settled now if the store is the in-process ledger (no closure is
  /// built); nil otherwise, or for a report without a lease: use `report(port:token:source:
  /// completion:)`.
  public func reportAtOnce(port: Int, token: String?) -> ReportOutcome? {
    guard let token, let ledger else { return nil }
    return settle(ledger.report(token: token, port: port), port: port, token: token)
  }

  /// What a report with a lease did, once the store answered: a report naming a port outside
  /// the pool says so.
  private func settle(_ outcome: ReportOutcome, port: Int, token: String) -> ReportOutcome {
    if case .released(let lease) = outcome {
      reportsWithLeases.insert(lease.server)
    } else if pool.server(port: port) == nil {
      return settled(.notInPool(port: port), token)
    }
    return settled(outcome, token)
  }

  /// Acts on a report's outcome (the lease ended, or the refusal counted) and returns it.
  private func settled(_ outcome: ReportOutcome, _ token: String?) -> ReportOutcome {
    switch outcome {
    case .released(let lease):
      leaseEnded(
        lease.server, routine: true,
        reason: "reported after \(ServerPool.seconds(lease.age(at: self.clock())))")
    default:
      refuse(outcome, token: token)
    }
    return outcome
  }

  private func refuse(_ outcome: ReportOutcome, token: String?) {
    guard let reason = outcome.refusal else { return }
    refusedReports[reason, default: 0] += 1
    note("report refused (\(reason)): \(outcome)")
  }

  /// Answers 503 to clients whose wait is over.
  public func expireWaiting(now: UInt64) { dispatcher.expireWaiting(now: now) }

  /// Stops handing out servers: every waiting client gets 503, and so do new ones.
  public func shutDown() {
    isShuttingDown = true
    dispatcher.shutDown(reason: "the balancer is shutting down")
  }

  // MARK: - Leases and health

  /// Leases past their deadline that must be checked with their server, each marked as being
  /// checked. Under a dispatcher that does not check them, they simply end here.
  public func overdueLeases(now: UInt64, completion: @escaping ([Lease]) -> Void) {
    store.takeOverdue(now: now) { [weak self] due in
      guard let self else { return }
      guard !self.dispatcher.checksOverdueLeases else { return completion(due) }
      for lease in due {
        self.store.expire(lease.token) { ended in
          guard ended != nil else { return }
          self.leaseEnded(lease.server, routine: true, reason: "job unreported, forgotten")
        }
      }
      completion([])
    }
  }

  /// Unclaimed leases past their claim deadline, each marked as being checked: their servers are
  /// asked to revoke them unless their jobs started.
  public func unclaimedLeases(now: UInt64, completion: @escaping ([Lease]) -> Void) {
    store.takeUnclaimed(now: now, completion: completion)
  }

  /// The outcome of a claim check: a revoked lease ends and its server goes to the next client
  /// at once; a started one runs on; one the server cannot tell about keeps its plain deadline.
  public func finishClaimCheck(of lease: Lease, result: RevokeResult) {
    switch result {
    case .revoked:
      store.reclaim(lease.token) { [unowned self] ended in
        guard ended != nil else { return }
        self.leaseEnded(lease.server, reason: "lease unused after the claim timeout, revoked")
      }
    case .started:
      store.setClaim(lease.token, .started)
    case .unknown, .unreachable:
      store.setClaim(lease.token, .unknown)
    }
  }

  /// The outcome of checking an overdue lease: idle → it ends and the server is free again;
  /// busy → extended; no answer → the server is down. Ignored if the lease ended meanwhile (the
  /// report came after all).
  public func finishCheck(of lease: Lease, result: ServerPool.CheckResult, now: UInt64) {
    switch result {
    case .inconclusive:
      // The balancer could not ask (out of sockets): its problem, not the server's.
      store.postpone(lease.token, until: now + 1_000_000_000)
    case .busy:
      store.extend(lease.token, until: now + MonotonicClock.nanoseconds(leaseTimeout))
      note(
        "\(lease.server): lease unreported for \(ServerPool.seconds(lease.age(at: now))), server busy: extended"
      )
    case .idle:
      store.expire(lease.token) { [weak self] ended in
        guard ended != nil else { return }
        self?.leaseEnded(lease.server, reason: "lease expired unreported, server idle")
      }
    case .unreachable:
      store.expire(lease.token) { [weak self] ended in
        guard let self, ended != nil else { return }
        // A removed server too: the lease may still be used there, under any name of its own.
        self.markDown(
          lease.server, now: now, failedCheck: true,
          reason: "leased server does not answer: down", unreported: [lease])
      }
    }
  }

  /// Marks a server down at once (a check found it silent, or its process exited): it is not
  /// handed out, and its leases end unreported. They, and `unreported` (its leases that ended
  /// just before: its check found it silent), hold it back until they are revoked there.
  public func markDown(
    _ server: ServerAddress, now: UInt64, failedCheck: Bool = false, reason: String = "down",
    unreported: [Lease] = []
  ) {
    // Out of the dispatcher at once; then one line for the event, with the leases it ended.
    if pool.canServe(server) { dispatcher.serverStopped(server) }
    store.expireAll(of: server) { [unowned self] ended in
      let detail = ended.isEmpty ? reason : "\(reason), \(ended.count) lease(s) unreported"
      let leases = unreported + ended
      if !leases.isEmpty { self.store.strand(leases, of: server) }
      if self.pool.isRetired(server) && self.store.inFlight(server) == 0 {
        // Its stranded leases stay in the books, for the entry that lists the process again.
        self.pool.drop(server, reason: detail + "; removed from the pool")
        self.forgetRetired(server)
      } else {
        self.pool.markDown(server, now: now, failedCheck: failedCheck, reason: detail)
      }
    }
  }

  /// A removed server whose last lease ended elsewhere (at another balancer sharing the
  /// books) leaves the pool here too; nothing happens to one that still holds a lease.
  public func dropIfRetiredAndIdle(_ server: ServerAddress) {
    guard pool.isRetired(server), store.inFlight(server) == 0 else { return }
    pool.drop(server, reason: "its last lease ended at another balancer; removed from the pool")
    forgetRetired(server)
  }

  /// Down servers due for a probe; each is marked as being probed.
  public func serversToProbe(now: UInt64) -> [ServerAddress] { pool.serversToProbe(now: now) }

  /// The outcome of probing a down server: any answer brings it back; but a server held back by
  /// stranded leases (`LeaseStore.strandedLeases(of:)`) only an idle answer once none is left
  /// to revoke (else it stays down, and is asked again in a second).
  public func finishProbe(of server: ServerAddress, result: ServerPool.CheckResult, now: UInt64) {
    if let left = store.strandedLeases(of: server), result == .idle || result == .busy {
      guard left.isEmpty, result == .idle else { return pool.keepDown(server, now: now) }
      store.releaseStranded(server)
    }
    if pool.awaitsJoinCheck(server) {
      for joined in pool.finishJoinCheck(of: server, result: result, now: now) { offer(joined) }
      if pool.takeJoinChecksDue() { onServersToCheck?() }
      return
    }
    if pool.finishProbe(of: server, result: result, now: now) { offer(server) }
  }

  /// The leases of a down server still to be revoked there before it is handed out again: they
  /// ended unreported when it was found down (see `markDown`).
  public func strandedLeases(of server: ServerAddress) -> [Lease] {
    store.strandedLeases(of: server) ?? []
  }

  /// The outcome of revoking a stranded lease at its server, which answers again: any answer
  /// settles it (a started job keeps the server out until a check finds it idle, as for any
  /// held-back server); no answer leaves it to be asked again at the server's next probe.
  public func finishRevocation(of lease: Lease, result: RevokeResult) {
    let server = lease.server
    let what = "a lease that ended while it was down"
    switch result {
    case .unreachable:
      return note("\(server): no answer to the revoke of \(what): down until it is revoked")
    case .revoked: note("\(server): \(what) revoked there")
    case .started: note("\(server): the job of \(what) started: held back until it is idle")
    case .unknown: note("\(server): cannot revoke \(what) (a server written for the original)")
    }
    store.settleStranded(lease)
  }

  /// Idle servers not asked for `interval` seconds whether they are alive; each is stamped.
  public func serversForHeartbeat(now: UInt64, interval: Double) -> [ServerAddress] {
    let checksLeases = dispatcher.checksOverdueLeases
    return pool.serversForHeartbeat(now: now, interval: interval) {
      !checksLeases || store.inFlight($0) == 0
    }
  }

  /// The outcome of a heartbeat: a server that does not answer is down.
  public func finishHeartbeat(
    of server: ServerAddress, result: ServerPool.CheckResult, now: UInt64
  ) {
    guard result == .unreachable, pool.canServe(server) else { return }
    markDown(server, now: now)
  }

  /// Offers a server to the dispatcher (it came up, joined, or was left out of the books), if it
  /// can serve, holds no lease, has no stranded lease to be revoked there (see
  /// `offerOrHoldBack`), and is not busy under another name: another entry for the same
  /// process (`5002` replaced by `localhost:5002`) whose job still runs. That entry is any
  /// server leased in the store, listed here (retired: it offers this one when its lease ends)
  /// or not (in the shared books, an entry of another balancer's pool, or retired before this
  /// balancer took the pool: the coordinator's sweep offers this one again after that lease).
  /// Whether it was offered.
  @discardableResult
  public func offer(_ server: ServerAddress) -> Bool {
    guard store.inFlight(server) == 0 && pool.canServe(server),
      store.strandedLeases(of: server) == nil
    else { return false }
    if let identity = identities[server],
      store.leasedServers.contains(where: {
        $0 != server && (identityOfEntry($0)?.overlaps(identity) ?? false)
      })
    {
      return false
    }
    dispatcher.serverFreed(server)
    return true
  }

  /// Who an entry holding a lease or stranded leases is: as worked out when its configuration
  /// was applied, or, for one this pool does not list, once, here (see `identitiesOutsidePool`).
  private func identityOfEntry(_ server: ServerAddress) -> ServerIdentity? {
    if let identity = identities[server] { return identity }
    if let known = identitiesOutsidePool[server] { return known }
    let identity = try? identifier.identity(of: server).get()
    identitiesOutsidePool[server] = identity
    return identity
  }

  /// Probes a down server soon (its process was just restarted), without waiting for back-off.
  public func probeSoon(_ server: ServerAddress, now: UInt64) { pool.probeSoon(server, now: now) }

  // MARK: - Configuration

  /// Applies a new list of servers: added ones become free (or are probed first, if in
  /// `startingDown` (and `launched`, with a process started for them), or checked first, if in
  /// `checkedFirst`: see `ServerPool.reconfigure`, or
  /// held back by stranded leases: see `adoptStranded`); removed ones are
  /// never handed out again, and a leased one leaves when its leases end (its report is still
  /// accepted).
  /// Nothing changes if the list is invalid: a name does not resolve, two entries are one
  /// server, or one is the balancer itself. `checked`: their identities, if the caller has
  /// worked them out already (`identities(of:)`): names are then not resolved again.
  @discardableResult
  public func reconfigure(
    _ servers: [ServerAddress], startingDown: Set<ServerAddress> = [],
    launched: Set<ServerAddress> = [], checkedFirst: Set<ServerAddress> = [], now: UInt64 = 0,
    checked: [ServerAddress: ServerIdentity]? = nil
  ) throws(ServersFile.Invalid) -> ServerPool.Change {
    let checked = if let checked { checked } else { try identities(of: servers) }
    // Known before the pool changes: a server that leaves is told apart from the entries that
    // stay by who they are (`ReplicaManager` keeps a process that one of them still names).
    for server in servers { identities[server] = checked[server] }
    let change = pool.reconfigure(
      servers, startingDown: startingDown, launched: launched, checkedFirst: checkedFirst, now: now
    ) { store.inFlight($0) > 0 }
    for server in change.removed { dispatcher.serverStopped(server) }
    for server in change.added {
      adoptStranded(by: server)
      // Its stranded leases hold it back until they are revoked and it is idle: the stricter
      // rule, which a join check would only get in the way of.
      if store.strandedLeases(of: server) != nil { pool.skipJoinCheck(server) }
    }
    for server in change.dropped { forget(server) }
    for server in change.joinedUp { offerOrHoldBack(server, now: now) }
    for server in pool.joinReadyServers(now: now) { offer(server) }
    if pool.takeJoinChecksDue() || change.added.contains(where: pool.awaitsJoinCheck) {
      onServersToCheck?()
    }
    return change
  }

  /// Offers a server that may take clients now, unless stranded leases hold it back: it is then
  /// marked down, to be probed, to have them revoked there, and checked (see `finishProbe`).
  private func offerOrHoldBack(_ server: ServerAddress, now: UInt64) {
    guard store.strandedLeases(of: server) != nil else {
      offer(server)
      return
    }
    if pool.canServe(server) { dispatcher.serverStopped(server) }
    pool.markDown(
      server, now: now,
      reason: "held back: leases that ended while this process was down are revoked first")
  }

  /// `server` joins the pool: the stranded leases of any entry for the same process (this name
  /// or another) that left the pool while down hold it back now, as they held that one. It is
  /// handed out only once they are revoked there (see `finishProbe`).
  private func adoptStranded(by server: ServerAddress) {
    guard let identity = identities[server] else { return }
    for other in store.strandedServers
    where other != server && (identityOfEntry(other)?.overlaps(identity) ?? false) {
      store.moveStranded(from: other, to: server)
    }
  }

  /// Who `server` is, as worked out when its configuration was applied (nil if it is not in the
  /// pool).
  public func identity(of server: ServerAddress) -> ServerIdentity? { identities[server] }

  /// A numeric address to reach `server` at, resolved when its configuration was applied (nil
  /// for a server on this machine listed by port): so that probes never resolve names.
  public func numericHost(of server: ServerAddress) -> String? {
    guard server.host != nil, let identity = identities[server] else { return nil }
    return identity.addresses.sorted {
      ($0.contains(":") ? 1 : 0, $0) < ($1.contains(":") ? 1 : 0, $1)
    }
    .first
  }

  /// The checked identities of `servers` (see `ServerIdentifier.identities`).
  public func identities(of servers: [ServerAddress]) throws(ServersFile.Invalid)
    -> [ServerAddress: ServerIdentity]
  {
    try identifier.identities(of: servers, balancerPort: balancerPort)
  }

  // MARK: - Documents

  /// `GET /health`.
  public var health: BalancerHealth {
    BalancerHealth(
      free: dispatcher.freeServers.count, waiting: dispatcher.waitingCount,
      servers: pool.servers.count)
  }

  /// `GET /status` at monotonic time `now`.
  public func status(now: UInt64) -> PoolStatus {
    let wallNow = Date()
    let servers = pool.servers.map { server -> PoolStatus.Server in
      let leases = store.leases(of: server)
      var entry = PoolStatus.Server(
        server: server.description, state: stateName(server), inFlight: leases.count,
        leases: store.servedCount(server))
      if let oldest = leases.first {
        entry.leaseAge = Seconds.from(nanoseconds: oldest.age(at: now))
        entry.leaseExtensions = oldest.extensions
      }
      // Since when it is down here (not checking, not starting, nor down at another balancer).
      if entry.state == "down", case .down(let since, _, _)? = pool.health(of: server) {
        let date = wallNow.addingTimeInterval(-Double(now - since) / 1e9)
        entry.downSince = ISO8601DateFormatter().string(from: date)
        entry.downFor = Seconds.from(nanoseconds: now - since)
      }
      if pool.isRetired(server) { entry.removed = true }
      return entry
    }
    let counts = store.counts
    var status = PoolStatus(
      servers: servers, queue: dispatcher.freeServers.map(\.description),
      waiting: dispatcher.waitingCount, policy: dispatcher.name,
      totals: PoolStatus.Totals(
        leased: counts.issued, reported: counts.reported, expired: counts.expired,
        reclaimed: counts.reclaimed, inFlight: counts.inFlight))
    status.refusedReports = refusedReports
    status.refusedClients = refusedClients
    return status
  }

  /// `free`, `leased`, `down`, `starting` (its process started for the pool, no answer yet,
  /// and still running: see `ServerPool.isStarting`) or `checking` (joined, and not handed out
  /// until a check finds it idle: see `ServerPool.finishJoinCheck`), as /status and /rep show a
  /// server; `removed` if it has left.
  public func stateName(_ server: ServerAddress) -> String {
    switch pool.health(of: server) {
    case nil: return "removed"
    case .down?:
      if pool.awaitsJoinCheck(server) { return "checking" }
      return pool.isStarting(server) ? "starting" : "down"
    case .up?:
      if store.inFlight(server) > 0 { return "leased" }
      return isDownElsewhere?(server) == true ? "down" : "free"
    }
  }

  // MARK: - Private

  /// A lease of `server` ended: a retired server leaves once it holds none; one that can serve
  /// is offered to the next client.
  private func leaseEnded(
    _ server: ServerAddress, routine: Bool = false, reason: @autoclosure () -> String
  ) {
    guard store.inFlight(server) == 0 else {
      note("\(server): \(reason())", routine: routine)
      return
    }
    let standing = pool.standing(of: server)
    if standing == .retired {
      pool.drop(server, reason: reason() + "; removed from the pool")
      forgetRetired(server)
      return
    }
    let available = standing == .serving
    note("\(server): \(reason())" + (available ? ": free" : ""), routine: routine)
    if available { dispatcher.serverFreed(server) }
  }

  /// Logs a change; a routine one (a report) only if `logsRoutineChanges`, and not as a change.
  private func note(_ line: @autoclosure () -> String, routine: Bool = false) {
    guard log != nil || (!routine && onChange != nil) else { return }
    guard !routine || logsRoutineChanges else { return }
    let text = line()
    log?(text)
    if !routine { onChange?(text) }
  }

  /// Forgets a server that left the pool.
  private func forget(_ server: ServerAddress) {
    store.forget(server)
    identities[server] = nil
    reportsWithLeases.remove(server)
  }

  /// Forgets a retired server whose last lease ended: the same process listed under another
  /// name (`localhost:5002` for `5002`), held back meanwhile, may take clients now.
  /// Stranded leases of the retired entry (it was found silent) move to the other entry first,
  /// which is then held back until they are revoked there.
  private func forgetRetired(_ server: ServerAddress) {
    let others =
      identities[server].map { identity in
        pool.servers.filter { $0 != server && (identities[$0]?.overlaps(identity) ?? false) }
      } ?? []
    for other in others { adoptStranded(by: other) }
    forget(server)
    for other in others { offerOrHoldBack(other, now: clock()) }
  }
}
