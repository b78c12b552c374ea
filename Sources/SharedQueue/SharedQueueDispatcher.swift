import Balancing
import HTTPCore
import RedisClient

/// The availability queue that several balancers share: one list of free servers and one line
/// of waiting clients in Redis, served first come first served whichever balancer a client
/// waits at. Taking a server and leasing it is one atomic step (`SharedScripts.take`), and so is
/// giving a freed server to the oldest waiting client (`SharedScripts.put`): no server is ever
/// handed out twice. A server freed at another balancer for a client waiting here arrives
/// through this balancer's grants list, which a second connection reads with BLPOP.
public final class SharedQueueDispatcher: Dispatcher {
  private struct Waiter {
    let claim: ServerClaim
    let deadline: UInt64
    /// The client's entry in the shared line.
    let entry: String
  }

  public let name = "queue"
  public let checksOverdueLeases = true
  public let usesKeys = false
  public let store: SharedLeaseStore
  private let issuer: LeaseIssuer
  private let grants: RedisConnection
  /// Seconds a client may wait for a server before it gets 503.
  public var waitTimeout = 30.0
  /// How many clients may wait here at once; more get 503 at once.
  public var maxWaiting = 10_000
  /// The current monotonic time in nanoseconds.
  public var clock: () -> UInt64 = MonotonicClock.now
  /// Receives a line when something unusual happens (Redis unreachable).
  public var log: ((String) -> Void)?

  private var waiters: [UInt64: Waiter] = [:]
  private var order = Deque<UInt64>()
  private var lastTicket: UInt64 = 0
  private var tokens = LeaseTokenSource()
  /// Tickets whose take has not been answered yet, and grants that arrived for them first.
  private var takesInFlight: Set<UInt64> = []
  private var earlyGrants: [UInt64: Lease] = [:]
  /// Servers a report settled in the same step: put back, or left out because a balancer
  /// withdrew them. The broker's put in that report's completion is skipped: it would find the
  /// server taken, or clear a withdrawal that this balancer has not heard of yet (a `/rm` or a
  /// down server seen at another balancer). Any later put goes ahead.
  private var settledByReport: Set<ServerAddress> = []
  /// Leases a rejoin handed again to clients whose grant seemed lost, and when: a grant of one
  /// that was only late (read before the rejoin, answered after it) is then ignored, not given
  /// back. Kept 10 s: a late grant comes within a round trip.
  private var deliveredByRejoin: [String: UInt64] = [:]
  /// Rejoins sent and not answered yet, and the leases given to waiting clients here meanwhile:
  /// a rejoin's answer hands such a lease over again (an earlier rejoin's, or a grant read
  /// before the rejoin ran), and its client has it already: it is neither given nor given back.
  private var rejoinsInFlight = 0
  private var servedDuringRejoins: Set<String> = []
  private var isListening = false
  /// Whether the books have been read (see `open`).
  public private(set) var isOpen = false

  /// - Parameter grants: a connection of its own, for the blocking reads of the grants list.
  public init(store: SharedLeaseStore, issuer: LeaseIssuer, grants: RedisConnection) {
    self.store = store
    self.issuer = issuer
    self.grants = grants
    // After Redis was away (restarted, perhaps without its data), the clients waiting here
    // take their places in the line again.
    store.onLineLost = { [weak self] in self?.rejoin() }
    // Also when the grants connection was lost: a grant read just before may never have come.
    grants.onConnect = { [weak self] _ in self?.rejoin() }
    // A report puts its server back in the same step; the put that follows is then skipped.
    store.putArguments = { [unowned self] in [self.store.balancerID] + self.leaseTimes }
    store.onPut = { [unowned self] reply, server in
      // Unless the put leased it to a client here: its broker's put then finds it leased.
      if reply?.array?.first?.int != 2 { self.settledByReport.insert(server) }
      if let reply { self.settlePut(reply, of: server) }
    }
    store.onReportSettled = { [unowned self] server in self.settledByReport.remove(server) }
  }

  public var freeServers: [ServerAddress] { store.freeList }
  public var waitingCount: Int { waiters.count }

  public func dispatch(_ claim: ServerClaim) {
    if waiters.count >= maxWaiting && store.freeList.isEmpty {
      claim.answer(.unavailable("too many clients are waiting"))
      return
    }
    lastTicket += 1
    let ticket = lastTicket
    let deadline = clock() + MonotonicClock.nanoseconds(waitTimeout)
    let arguments =
      [
        store.balancerID, String(ticket), tokens.next(), claim.client,
      ] + leaseTimes
    takesInFlight.insert(ticket)
    store.run(SharedScripts.take, arguments) { [unowned self] result in
      takesInFlight.remove(ticket)
      // A grant read on the other connection may have overtaken this answer.
      let early = earlyGrants.removeValue(forKey: ticket)
      guard case .success(let reply) = result, let parts = reply.array, parts.count == 3 else {
        if let early { giveBack(early) }
        claim.answer(.unavailable(Self.unreachable(result)))
        return
      }
      if parts[0].int == 1 {
        guard let lease = store.adopt(parts[2], redisNow: parts[1].int ?? 0) else {
          claim.answer(.unavailable(Self.unreachable(result)))
          return
        }
        return deliver(lease, to: claim)
      }
      if let early { return deliver(early, to: claim) }
      guard let entry = parts[2].string else {
        claim.answer(.unavailable(Self.unreachable(result)))
        return
      }
      guard claim.isOpen else {
        return store.run(SharedScripts.leave, [entry]) { _ in }
      }
      waiters[ticket] = Waiter(claim: claim, deadline: deadline, entry: entry)
      order.append(ticket)
      claim.park { [weak self] in self?.leave(ticket) }
    }
  }

  public func preview(key: String) -> ServerAddress? { store.freeList.first }

  public func serverFreed(_ server: ServerAddress) {
    store.cancelRemovals(of: server)
    guard isOpen else { return }
    if settledByReport.remove(server) != nil {
      return  // its report put it back already, or found it withdrawn
    }
    store.run(SharedScripts.put, [store.balancerID, server.description] + leaseTimes) {
      [unowned self] result in
      guard case .success(let reply) = result else { return }
      settlePut(reply, of: server)
    }
  }

  /// Acts on what a put did: serves the client here it leased the server to, or notes the
  /// server free.
  private func settlePut(_ reply: RESPValue, of server: ServerAddress) {
    guard let parts = reply.array, let code = parts.first?.int else { return }
    switch code {
    case 2 where parts.count == 4:
      guard let ticket = parts[2].int.flatMap({ UInt64(exactly: $0) }),
        let lease = adoptGrant(parts[3], redisNow: parts[1].int ?? 0)
      else { return }
      serve(ticket, with: lease)
    case 3:
      store.noteFree(server, true)
    default:
      break  // free or leased already, or given to a client waiting at another balancer
    }
  }

  public func serverStopped(_ server: ServerAddress) {
    store.noteFree(server, false)
    store.runRemoval(SharedScripts.withdraw, of: server)
  }

  public func expireWaiting(now: UInt64) {
    while let ticket = order.first {
      guard let waiter = waiters[ticket] else {
        _ = order.popFirst()
        continue
      }
      guard waiter.deadline <= now else { return }
      _ = order.popFirst()
      waiters[ticket] = nil
      store.run(SharedScripts.leave, [waiter.entry]) { _ in }
      waiter.claim.answer(
        .unavailable("no server became free within \(QueueDispatcher.describe(waitTimeout))"))
    }
  }

  public func shutDown(reason: String) {
    while let ticket = order.popFirst() {
      guard let waiter = waiters.removeValue(forKey: ticket) else { continue }
      store.run(SharedScripts.leave, [waiter.entry]) { _ in }
      waiter.claim.answer(.unavailable(reason))
    }
    isListening = false
  }

  /// Starts reading the servers other balancers hand to clients waiting here.
  public func listenForGrants() {
    guard !isListening else { return }
    isListening = true
    awaitGrant()
  }

  // MARK: - Private

  private func rejoin() {
    let entries = order.compactMap { waiters[$0]?.entry }
    guard !entries.isEmpty else { return }
    rejoinsInFlight += 1
    store.run(SharedScripts.rejoin, leaseTimes + entries) { [weak self] result in
      guard let self else { return }
      defer {
        self.rejoinsInFlight -= 1
        if self.rejoinsInFlight == 0 { self.servedDuringRejoins.removeAll() }
      }
      guard case .success(let reply) = result, let parts = reply.array, parts.count == 2,
        let redisNow = parts[0].int
      else { return }
      let now = self.clock()
      self.deliveredByRejoin = self.deliveredByRejoin.filter { now &- $0.value < 10_000_000_000 }
      for grant in parts[1].array ?? [] {
        guard let pair = grant.array, pair.count >= 2,
          let ticket = pair[0].int.flatMap({ UInt64(exactly: $0) })
        else { continue }
        // Handed over again to a client served meanwhile: it holds that lease already.
        if pair.count == 3, self.waiters[ticket] == nil,
          let token = pair[1].array?.first?.string, self.servedDuringRejoins.contains(token)
        {
          continue
        }
        guard let lease = self.store.adopt(pair[1], redisNow: redisNow) else { continue }
        // A lease handed over again goes to its client if it still waits, and is given back
        // if it left meanwhile.
        if pair.count == 3 && self.waiters[ticket] != nil {
          self.deliveredByRejoin[lease.token] = now
        }
        self.serve(ticket, with: lease)
      }
    }
  }

  /// Reads the books (again after a second, until it can), then opens the queue, offering the
  /// servers of `broker`'s pool that can serve.
  public func openWhenRead(broker: ServerBroker) {
    store.refresh { [weak self] fresh in
      guard let self else { return }
      if fresh { return self.open(offering: broker) }
      _ = self.grants.loop.schedule(after: 1) { [weak self] in
        self?.openWhenRead(broker: broker)
      }
    }
  }

  /// Opens the queue once the shared books are read: until then a server freed here is not
  /// put back (the pool in Redis, and what the books say of each server, take precedence over
  /// this balancer's first view). Servers of `broker`'s pool the books have never seen are
  /// offered now, through `ServerBroker.offer`: one whose process holds a lease in the books
  /// under another spelling is held back.
  public func open(offering broker: ServerBroker? = nil) {
    guard !isOpen else { return }
    isOpen = true
    guard let broker else { return }
    for server in broker.pool.serving where store.states[server] == nil { broker.offer(server) }
  }

  /// The lease and claim timeouts, in milliseconds, as the scripts take them.
  private var leaseTimes: [String] {
    [
      String(Int(issuer.leaseTimeout * 1000)),
      String(issuer.claimTimeout > 0 ? max(1, Int(issuer.claimTimeout * 1000)) : 0),
    ]
  }

  private func awaitGrant() {
    guard isListening else { return }
    let key = "\(store.prefix):grants:\(store.balancerID)"
    // Blocks for at most a second: shorter than the connection's reply timeout (3 s), which
    // would otherwise take the wait for a hung Redis.
    grants.send(["BLPOP", key, "1"]) { [weak self] result in
      guard let self else { return }
      switch result {
      case .success(let reply):
        if let parts = reply.array, parts.count == 2, let text = parts[1].string {
          self.received(text)
        }
        self.awaitGrant()
      case .failure:
        // Redis is away: try again shortly (the connection reconnects by itself).
        _ = self.grants.loop.schedule(after: 0.5) { [weak self] in self?.awaitGrant() }
      }
    }
  }

  /// `ticket|now|token|server|issued|deadline|cdl|client`, pushed by another balancer's put.
  private func received(_ text: String) {
    let fields = text.split(separator: "|", maxSplits: 7, omittingEmptySubsequences: false)
    guard fields.count == 8, let ticket = UInt64(fields[0]), let redisNow = Int64(fields[1])
    else { return }
    let lease = RESPValue.array([
      .bulk(String(fields[2])), .bulk(String(fields[3])), .bulk(String(fields[7])),
      .bulk(store.balancerID), .bulk(String(fields[4])), .bulk(String(fields[5])),
      .bulk(String(fields[6])), .bulk("unclaimed"), .integer(0),
    ])
    guard let adopted = adoptGrant(lease, redisNow: redisNow) else { return }
    serve(ticket, with: adopted)
  }

  /// A lease made for a client here (a grant, or a put's answer) joins the view, unless a rejoin
  /// handed it to its client already and this answer came late: nil then.
  private func adoptGrant(_ fields: RESPValue, redisNow: Int64) -> Lease? {
    if let token = fields.array?.first?.string,
      deliveredByRejoin.removeValue(forKey: token) != nil
    {
      return nil
    }
    return store.adopt(fields, redisNow: redisNow)
  }

  /// Gives the lease made for the waiter holding `ticket` to its client; if it has gone, the
  /// lease ends and the server goes to the next one.
  private func serve(_ ticket: UInt64, with lease: Lease) {
    guard let waiter = waiters.removeValue(forKey: ticket) else {
      // Granted before the answer to its take arrived (the grant came on the other
      // connection): kept for that answer.
      if takesInFlight.contains(ticket) {
        earlyGrants[ticket] = lease
        return
      }
      return giveBack(lease)
    }
    if rejoinsInFlight > 0 { servedDuringRejoins.insert(lease.token) }
    deliver(lease, to: waiter.claim)
  }

  private func deliver(_ lease: Lease, to claim: ServerClaim) {
    if !claim.answer(.lease(lease)) { giveBack(lease) }
  }

  /// A lease whose client was gone: void at once, and its server is freed again.
  private func giveBack(_ lease: Lease) {
    store.expire(lease.token) { [weak self] ended in
      if ended != nil { self?.serverFreed(lease.server) }
    }
  }

  private func leave(_ ticket: UInt64) {
    guard let waiter = waiters.removeValue(forKey: ticket) else { return }
    store.run(SharedScripts.leave, [waiter.entry]) { _ in }
  }

  private static func unreachable(_ result: Result<RESPValue, RedisError>) -> String {
    if case .failure(let error) = result {
      return "the shared queue (Redis) cannot be reached: \(error)"
    }
    return "the shared queue gave an answer this balancer does not understand"
  }
}
