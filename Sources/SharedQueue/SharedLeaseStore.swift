import Balancing
import HTTPCore
import RedisClient

/// The `LeaseStore` that balancers sharing one Redis keep together: each change is one atomic
/// script (`SharedScripts`), and the reads answer from a view of the books that each answer
/// updates and `refresh` renews (the program does so four times a second). Also holds the view
/// of the shared free list and server states that the `SharedQueueDispatcher` and the
/// `SharedCoordinator` use. Call from the event loop's thread.
public final class SharedLeaseStore: LeaseStore {
  /// A server's state in the shared books.
  public enum ServerState: Equatable, Sendable {
    case free
    case leased
    /// Its lease ended at this (local) time, and it was not put back yet.
    case idle(since: UInt64)
    /// Down or left, as some balancer saw it.
    case out
  }

  public let connection: RedisConnection
  /// The prefix of every key (`SharedQueueLocation.prefix`).
  public let prefix: String
  /// This balancer's name in the books, unique to the process.
  public let balancerID: String
  /// The current monotonic time in nanoseconds.
  public var clock: () -> UInt64 = MonotonicClock.now
  /// Receives a line when a step could not reach Redis.
  public var log: ((String) -> Void)?
  /// The arguments with which a report puts its server back in the same step (this balancer,
  /// the lease and claim times); nil: a report only ends the lease. Set by the dispatcher.
  var putArguments: (() -> [String])?
  /// Told, before the report's completion runs, what a report did with its server: the answer
  /// of the put it made, or nil when it left the server out because a balancer withdrew it
  /// (down, or left the pool).
  var onPut: ((RESPValue?, ServerAddress) -> Void)?
  /// Told once the completion of a report that ended a lease has run.
  var onReportSettled: ((ServerAddress) -> Void)?

  /// The books' counts, and below each server's leases (`servedCount`), as the last read of the
  /// whole books found them (at most a quarter of a second old, see `SharedCoordinator`): one
  /// atomic read, so they add up (`issued = reported + expired + reclaimed + inFlight`), and as
  /// the reads answer in order, no count goes back. They are never moved between reads: a
  /// balancer hears of other balancers' leases only in part (a grant read on another
  /// connection, an end seen here of a lease issued there), and its own moves once made them
  /// go back or show more leases in flight than servers.
  public private(set) var counts = LeaseCounts()
  /// The free servers, oldest first, as last seen.
  public private(set) var freeList: [ServerAddress] = []
  /// How many clients wait at every balancer together, as last seen.
  public private(set) var waitingTotal = 0
  /// Every server's state, as last seen.
  public private(set) var states: [ServerAddress: ServerState] = [:]
  /// Whether a refresh has come back since the start.
  public private(set) var hasRefreshed = false
  private var byToken: [String: Lease] = [:]
  private var tokenOf: [ServerAddress: String] = [:]
  private var served: [ServerAddress: Int] = [:]
  private var unclaimedByClient: [String: Int] = [:]
  private var balancerOf: [String: String] = [:]
  /// Down servers' stranded leases (see `LeaseStore.strandedLeases(of:)`): only their tokens and
  /// servers are in the books, which is all a revoke needs.
  private var stranded = StrandedLeases()
  /// This balancer's steps on the stranded leases sent and not yet answered: while any is, a
  /// view read from Redis may be older than it, so `refresh` keeps `stranded` as it is (a view
  /// read between the end of a down server's leases and their `strand` would erase them).
  private var strandedStepsUnanswered = 0
  /// Steps on the stranded leases that failed (Redis away), in the order they were sent: sent
  /// again before each view is read, and until then `refresh` keeps `stranded` as it is (a lost
  /// `strand` would hand a server out with its leases unrevoked). Each step can be run twice.
  private var strandedStepsToRetry: [(script: RedisScript, arguments: [String])] = []
  /// Steps that take a server out of the books (`withdraw`: down or left the pool; `forget`: left
  /// it) that failed (Redis away), in the order they were sent: sent again before each view is
  /// read, else Redis could come back with the server free, or not withdrawn, and hand it out
  /// (to a take, or through its lease's report). Dropped once it is offered again.
  private var removalsToRetry: [(script: RedisScript, server: ServerAddress)] = []
  /// How many times each server was offered again (`cancelRemovals`): a removal sent before the
  /// last offer and failing after it is not kept to be sent again.
  private var offers: [ServerAddress: UInt64] = [:]
  /// When Redis stopped answering, while it does not.
  private var unreachableSince: UInt64?

  public init(connection: RedisConnection, prefix: String, balancerID: String) {
    self.connection = connection
    self.prefix = prefix
    self.balancerID = balancerID
    connection.onConnect = { [weak self] connection in self?.prepare(connection) }
  }

  /// What a fresh connection does before anything else (ahead of every step waiting to be
  /// sent): loads every script (see `SharedScripts.all`), marks this balancer alive at once (so
  /// that no put drops its clients from the line meanwhile), and lets its clients rejoin. Done
  /// again once Redis has finished loading its data, if it answered LOADING meanwhile.
  private func prepare(_ connection: RedisConnection) {
    for script in SharedScripts.all {
      connection.load(script) { [weak self] in self?.noteReachable($0) }
    }
    connection.send([
      "SET", "\(prefix):alive:\(balancerID)", "1", "PX", String(Int(aliveTimeToLive * 1000)),
    ]) { [weak self] in self?.noteReachable($0) }
    // Ahead of every step that waited for the connection (a report among them): a withdrawal
    // that failed while Redis was away must be in the books before that report is.
    resendFailedSteps()
    onLineLost?()
  }

  /// Sends again the steps on stranded leases and the removals that failed (`strandedStepsToRetry`,
  /// `removalsToRetry`): before each view is read, and first on each new connection.
  private func resendFailedSteps() {
    let retries = strandedStepsToRetry
    strandedStepsToRetry = []
    for step in retries { runStrandedStep(step.script, step.arguments) }
    let removals = removalsToRetry
    removalsToRetry = []
    for step in removals { runRemoval(step.script, of: step.server) }
  }

  /// Seconds this balancer's alive mark lasts without renewal (`SharedCoordinator` renews it).
  public var aliveTimeToLive = 3.0

  /// Called when this balancer's waiting clients may have lost their places in the line: on
  /// each connection to Redis (after the scripts are loaded), and when its alive mark is found
  /// to have lapsed.
  var onLineLost: (() -> Void)?
  /// Whether Redis answered LOADING (restarted, reading its data): the connection's first steps
  /// are done again once it answers.
  private var preparesAgain = false

  // MARK: - Reads

  public func leases(of server: ServerAddress) -> [Lease] {
    tokenOf[server].flatMap { byToken[$0] }.map { [$0] } ?? []
  }

  public func inFlight(_ server: ServerAddress) -> Int { tokenOf[server] == nil ? 0 : 1 }

  public var leasedServers: [ServerAddress] { Array(tokenOf.keys) }

  public func servedCount(_ server: ServerAddress) -> Int { served[server] ?? 0 }

  public func unclaimedCount(of client: String) -> Int { unclaimedByClient[client] ?? 0 }

  /// The balancer a lease was issued by.
  public func balancer(of token: String) -> String? { balancerOf[token] }

  // MARK: - Changes

  public func issue(_ lease: Lease, completion: @escaping () -> Void) {
    let now = clock()
    run(
      SharedScripts.issue,
      [
        lease.token, lease.server.description, lease.client, balancerID,
        Self.milliseconds(MonotonicClock.elapsed(from: lease.issued, to: lease.deadline)),
        lease.claimDeadline == .max
          ? "0" : Self.milliseconds(MonotonicClock.elapsed(from: now, to: lease.claimDeadline)),
      ]
    ) { [self] result in
      if case .success(let reply) = result, let parts = reply.array, parts.count == 2 {
        _ = adopt(parts[1], redisNow: parts[0].int ?? 0)
      }
      completion()
    }
  }

  public func report(token: String, port: Int, completion: @escaping (ReportOutcome) -> Void) {
    let arguments = [token, String(port)] + (putArguments?() ?? [])
    run(SharedScripts.report, arguments) { [self] result in
      let outcome = ended(result)
      if case .success(let lease?) = outcome, case .success(let reply) = result,
        let parts = reply.array, parts.count == 4
      {
        onPut?(parts[3].string == "withdrawn" ? nil : parts[3], lease.server)
      }
      switch outcome {
      case .failure(let failure): completion(.storeUnavailable(failure.description))
      case .success(let lease?):
        completion(.released(lease))
        onReportSettled?(lease.server)
      case .success(nil): completion(.wrongToken(port: port))
      }
    }
  }

  public func reportWithoutToken(
    _ server: ServerAddress, completion: @escaping (ReportOutcome) -> Void
  ) {
    run(SharedScripts.endLeaseOfServer, [server.description, "reported"]) { [self] result in
      if case .success(let reply) = result, reply.array?.first?.int == 2 {
        return completion(.leaseRequired(server))
      }
      switch ended(result) {
      case .failure(let failure): completion(.storeUnavailable(failure.description))
      case .success(let lease?): completion(.released(lease))
      case .success(nil): completion(.notLeased(server))
      }
    }
  }

  public func expire(_ token: String, completion: @escaping (Lease?) -> Void) {
    run(SharedScripts.endLease, [token, "expired"]) { [self] result in
      completion(try? ended(result).get())
    }
  }

  public func reclaim(_ token: String, completion: @escaping (Lease?) -> Void) {
    run(SharedScripts.endLease, [token, "reclaimed"]) { [self] result in
      completion(try? ended(result).get())
    }
  }

  public func expireAll(of server: ServerAddress, completion: @escaping ([Lease]) -> Void) {
    run(SharedScripts.endLeaseOfServer, [server.description, "expired"]) { [self] result in
      let lease = try? ended(result).get()
      completion(lease.map { [$0] } ?? [])
    }
  }

  public func extend(_ token: String, until deadline: UInt64) {
    setDeadline(token, deadline, counted: true)
  }

  public func postpone(_ token: String, until deadline: UInt64) {
    setDeadline(token, deadline, counted: false)
  }

  public func setClaim(_ token: String, _ claim: Lease.Claim) {
    if var lease = byToken[token] {
      let was = lease.claim
      lease.claim = claim
      byToken[token] = lease
      countUnclaimed(lease.client, was: was, now: claim)
    }
    run(SharedScripts.setClaim, [token, Self.name(of: claim)]) { _ in }
  }

  public func takeOverdue(now: UInt64, completion: @escaping ([Lease]) -> Void) {
    takeDue("overdue", completion: completion)
  }

  public func takeUnclaimed(now: UInt64, completion: @escaping ([Lease]) -> Void) {
    takeDue("unclaimed", completion: completion)
  }

  public func forget(_ server: ServerAddress) {
    guard tokenOf[server] == nil else { return }
    states[server] = nil
    runRemoval(SharedScripts.forget, of: server)
  }

  /// Runs `withdraw` or `forget` for `server`; one that fails is sent again before the next view
  /// (`removalsToRetry`).
  func runRemoval(_ script: RedisScript, of server: ServerAddress) {
    let offer = offers[server]
    run(script, [server.description]) { [weak self] result in
      guard let self, case .failure = result, self.offers[server] == offer,
        !self.removalsToRetry.contains(where: { $0.script == script && $0.server == server })
      else { return }
      self.removalsToRetry.append((script, server))
    }
  }

  /// A server offered again: its failed withdrawal or forgetting is not sent again, nor one sent
  /// before now that fails later.
  func cancelRemovals(of server: ServerAddress) {
    removalsToRetry.removeAll { $0.server == server }
    offers[server, default: 0] &+= 1
  }

  public func strandedLeases(of server: ServerAddress) -> [Lease]? { stranded.leases(of: server) }

  public func strand(_ leases: [Lease], of server: ServerAddress) {
    stranded.strand(leases, of: server)
    runStrandedStep(SharedScripts.strand, [server.description] + leases.map(\.token))
  }

  public func settleStranded(_ lease: Lease) {
    stranded.settle(lease)
    runStrandedStep(SharedScripts.settleStranded, [lease.server.description, lease.token])
  }

  public func releaseStranded(_ server: ServerAddress) {
    stranded.release(server)
    runStrandedStep(SharedScripts.releaseStranded, [server.description])
  }

  public var strandedServers: [ServerAddress] { stranded.servers }

  public func moveStranded(from old: ServerAddress, to new: ServerAddress) {
    guard stranded.move(from: old, to: new) else { return }
    runStrandedStep(SharedScripts.moveStranded, [old.description, new.description])
  }

  /// Runs a step on the stranded leases, counted in `strandedStepsUnanswered` until answered;
  /// one that fails is kept to be sent again (`strandedStepsToRetry`).
  private func runStrandedStep(_ script: RedisScript, _ arguments: [String]) {
    strandedStepsUnanswered += 1
    run(script, arguments) { [weak self] result in
      guard let self else { return }
      self.strandedStepsUnanswered -= 1
      if case .failure = result { self.strandedStepsToRetry.append((script, arguments)) }
    }
  }

  // MARK: - The view

  /// Renews the whole view from Redis; `completion` gets whether it could.
  public func refresh(completion: @escaping (Bool) -> Void = { _ in }) {
    resendFailedSteps()
    run(SharedScripts.snapshot, []) { [self] result in
      guard case .success(let reply) = result, let parts = reply.array, parts.count == 8,
        let redisNow = parts[0].int
      else { return completion(false) }
      freeList = (parts[1].array ?? []).compactMap {
        $0.string.flatMap(ServerAddress.init(parsing:))
      }
      waitingTotal = Int(parts[2].int ?? 0)
      let now = clock()
      states = [:]
      for (name, value) in Self.pairs(parts[3]) {
        guard let server = ServerAddress(parsing: name) else { continue }
        states[server] = Self.state(value, redisNow: redisNow, now: now)
      }
      var fresh = LeaseCounts()
      for (name, value) in Self.pairs(parts[4]) {
        let count = Int(value) ?? 0
        switch name {
        case "issued": fresh.issued = count
        case "reported": fresh.reported = count
        case "expired": fresh.expired = count
        case "reclaimed": fresh.reclaimed = count
        default: break
        }
      }
      served = [:]
      for (name, value) in Self.pairs(parts[5]) {
        if let server = ServerAddress(parsing: name) { served[server] = Int(value) ?? 0 }
      }
      byToken = [:]
      tokenOf = [:]
      unclaimedByClient = [:]
      balancerOf = [:]
      for fields in parts[6].array ?? [] { _ = remember(fields, redisNow: redisNow, now: now) }
      if strandedStepsUnanswered == 0 && strandedStepsToRetry.isEmpty {
        stranded = StrandedLeases()
        for (name, tokens) in Self.pairs(parts[7]) {
          guard let server = ServerAddress(parsing: name) else { continue }
          stranded.strand(
            tokens.split(separator: " ").map {
              Lease(token: String($0), server: server, issued: 0, deadline: 0)
            }, of: server)
        }
      }
      fresh.inFlight = byToken.count
      counts = fresh
      hasRefreshed = true
      completion(true)
    }
  }

  /// A lease made by a script (a take, or a put that served a waiting client) joins the view.
  func adopt(_ fields: RESPValue, redisNow: Int64) -> Lease? {
    guard let lease = remember(fields, redisNow: redisNow, now: clock()) else { return nil }
    freeList.removeAll { $0 == lease.server }
    states[lease.server] = .leased
    return lease
  }

  /// A server the dispatcher put on the free list, or took out of it.
  func noteFree(_ server: ServerAddress, _ isFree: Bool) {
    freeList.removeAll { $0 == server }
    if isFree {
      freeList.append(server)
      states[server] = .free
    } else if states[server] != .leased {
      states[server] = .out
    }
  }

  /// Runs one of the scripts with the books' prefix.
  func run(
    _ script: RedisScript, _ arguments: [String],
    completion: @escaping (Result<RESPValue, RedisError>) -> Void
  ) {
    connection.evaluate(script, keys: [prefix], arguments: arguments) { [weak self] result in
      self?.noteReachable(result)
      completion(result)
    }
  }

  /// Logs once when Redis stops answering, and once when it answers again (not every step).
  private func noteReachable(_ result: Result<RESPValue, RedisError>) {
    switch result {
    case .failure(let error) where error.code == "LOADING":
      preparesAgain = true
      if unreachableSince == nil {
        unreachableSince = clock()
        log?("shared queue: Redis is loading its data; clients get 503 meanwhile")
      }
    case .failure(let error) where error.code == nil:
      if unreachableSince == nil {
        unreachableSince = clock()
        log?("shared queue: Redis cannot be reached (\(error)); clients get 503 meanwhile")
      }
    case .failure(let error):
      log?("shared queue: Redis refused a step: \(error)")
    case .success:
      if let since = unreachableSince {
        unreachableSince = nil
        log?("shared queue: Redis answers again after \(ServerPool.seconds(clock() &- since))")
      }
      if preparesAgain {
        preparesAgain = false
        prepare(connection)
      }
    }
  }

  /// A step that did not reach Redis.
  struct Unreachable: Error, CustomStringConvertible {
    let error: RedisError
    var description: String { "the shared books (Redis) cannot be reached: \(error)" }
  }

  // MARK: - Private

  /// A lease in a script's answer, read on this machine's clock; remembered in the view.
  @discardableResult
  private func remember(_ fields: RESPValue, redisNow: Int64, now: UInt64) -> Lease? {
    guard let lease = Self.lease(fields, redisNow: redisNow, now: now) else { return nil }
    if let old = byToken[lease.token] {
      countUnclaimed(old.client, was: old.claim, now: .started)
    }
    byToken[lease.token] = lease
    tokenOf[lease.server] = lease.token
    countUnclaimed(lease.client, was: .started, now: lease.claim)
    if let parts = fields.array, parts.count > 3, let balancer = parts[3].string {
      balancerOf[lease.token] = balancer
    }
    return lease
  }

  /// The lease a script ended, taken out of the view (it is counted in the books, and in
  /// `counts` from the next read of them).
  private func ended(_ result: Result<RESPValue, RedisError>) -> Result<Lease?, Unreachable> {
    switch result {
    case .failure(let error):
      return .failure(Unreachable(error: error))
    case .success(let reply):
      guard let parts = reply.array, parts.count >= 3, parts[0].int == 1,
        let lease = Self.lease(parts[2], redisNow: parts[1].int ?? 0, now: clock())
      else { return .success(nil) }
      if let known = byToken.removeValue(forKey: lease.token) {
        countUnclaimed(known.client, was: known.claim, now: .started)
      }
      balancerOf[lease.token] = nil
      if tokenOf[lease.server] == lease.token {
        tokenOf[lease.server] = nil
        states[lease.server] = .idle(since: clock())
      }
      return .success(lease)
    }
  }

  private func setDeadline(_ token: String, _ deadline: UInt64, counted: Bool) {
    if var lease = byToken[token] {
      lease.deadline = deadline
      if counted { lease.extensions += 1 }
      lease.isBeingChecked = false
      byToken[token] = lease
    }
    let milliseconds = Self.milliseconds(deadline > clock() ? deadline - clock() : 0)
    run(SharedScripts.extend, [token, milliseconds, counted ? "1" : "0"]) { _ in }
  }

  private func takeDue(_ kind: String, completion: @escaping ([Lease]) -> Void) {
    // A mark older than 10 s was left by a coordinator that died while checking.
    run(SharedScripts.takeDue, [kind, "10000"]) { [self] result in
      guard case .success(let reply) = result, let parts = reply.array, parts.count == 2,
        let redisNow = parts[0].int
      else { return completion([]) }
      let now = clock()
      let due = (parts[1].array ?? []).compactMap { remember($0, redisNow: redisNow, now: now) }
      completion(due.sorted { ($0.issued, $0.token) < ($1.issued, $1.token) })
    }
  }

  private func countUnclaimed(_ client: String, was: Lease.Claim, now: Lease.Claim) {
    let change = (now != .started ? 1 : 0) - (was != .started ? 1 : 0)
    guard change != 0 else { return }
    let count = (unclaimedByClient[client] ?? 0) + change
    unclaimedByClient[client] = count > 0 ? count : nil
  }

  /// `[token, server, client, balancer, issued, deadline, cdl, claim, ext]` as a `Lease` on
  /// this machine's clock (`now` here is `redisNow` there).
  static func lease(_ fields: RESPValue, redisNow: Int64, now: UInt64) -> Lease? {
    guard let parts = fields.array, parts.count == 9, let token = parts[0].string,
      let server = parts[1].string.flatMap(ServerAddress.init(parsing:)),
      let issued = parts[4].int, let deadline = parts[5].int, let claimDeadline = parts[6].int
    else { return nil }
    let local = { (milliseconds: Int64) in Self.local(milliseconds, redisNow: redisNow, now: now) }
    var lease = Lease(
      token: token, server: server, issued: local(issued), deadline: local(deadline))
    lease.client = parts[2].string ?? ""
    lease.claimDeadline = claimDeadline == 0 ? .max : local(claimDeadline)
    lease.claim = claim(named: parts[7].string ?? "")
    lease.extensions = Int(parts[8].int ?? 0)
    return lease
  }

  static func name(of claim: Lease.Claim) -> String {
    switch claim {
    case .unclaimed: return "unclaimed"
    case .checking: return "checking"
    case .started: return "started"
    case .unknown: return "unknown"
    }
  }

  static func claim(named name: String) -> Lease.Claim {
    switch name {
    case "checking": return .checking
    case "started": return .started
    case "unknown": return .unknown
    default: return .unclaimed
    }
  }

  static func state(_ text: String, redisNow: Int64, now: UInt64) -> ServerState {
    if text == "free" { return .free }
    if text.hasPrefix("leased:") { return .leased }
    if text.hasPrefix("idle:"), let since = Int64(text.dropFirst(5)) {
      return .idle(since: min(now, local(since, redisNow: redisNow, now: now)))
    }
    return .out
  }

  static func pairs(_ value: RESPValue) -> [(String, String)] {
    let items = value.array ?? []
    return stride(from: 0, to: items.count - 1, by: 2).compactMap { index in
      guard let name = items[index].string, let value = items[index + 1].string else { return nil }
      return (name, value)
    }
  }

  /// A time on Redis's clock (milliseconds) on this machine's (nanoseconds; `now` here is
  /// `redisNow` there). It saturates: a time no clock reaches (a hand-edited or corrupt entry)
  /// becomes the earliest or the latest one, never an overflow.
  static func local(_ milliseconds: Int64, redisNow: Int64, now: UInt64) -> UInt64 {
    let (difference, overflow) = milliseconds.subtractingReportingOverflow(redisNow)
    if overflow { return milliseconds > redisNow ? .max : 0 }
    let (nanoseconds, tooFar) = difference.magnitude.multipliedReportingOverflow(by: 1_000_000)
    if difference >= 0 {
      let (later, past) = now.addingReportingOverflow(nanoseconds)
      return tooFar || past ? .max : later
    }
    return tooFar || nanoseconds >= now ? 0 : now - nanoseconds
  }

  static func milliseconds(_ nanoseconds: UInt64) -> String { String(nanoseconds / 1_000_000) }
}
