import HTTPCore

/// The availability queue: a client gets the oldest free server, or waits in line (first come,
/// first served, for at most `waitTimeout` seconds) until a server is freed. One lease per server.
public final class QueueDispatcher: Dispatcher {
  private struct Waiter {
    let claim: ServerClaim
    let deadline: UInt64
  }

  public let name = "queue"
  public let checksOverdueLeases = true
  public let usesKeys = false
  /// The free servers and the tickets waiting for one.
  public let queue: AvailabilityQueue<ServerAddress>
  private let issuer: LeaseIssuer
  /// Seconds a client may wait for a server before it gets 503.
  public var waitTimeout = 30.0
  /// How many clients may wait at once; more get 503 at once.
  public var maxWaiting = 10_000
  /// The current monotonic time in nanoseconds.
  public var clock: () -> UInt64 = MonotonicClock.now

  /// The clients in line by ticket, and the tickets in arrival (so deadline) order.
  private var waiters: [WaitTicket: Waiter] = [:]
  private var order = Deque<WaitTicket>()
  private var lastTicket: UInt64 = 0

  public init(queue: AvailabilityQueue<ServerAddress>, issuer: LeaseIssuer) {
    self.queue = queue
    self.issuer = issuer
  }

  public var freeServers: [ServerAddress] { queue.freeServers }
  public var waitingCount: Int { waiters.count }

  public func dispatch(_ claim: ServerClaim) {
    if waiters.count >= maxWaiting && queue.peek() == nil {
      claim.answer(.unavailable("too many clients are waiting"))
      return
    }
    lastTicket += 1
    let ticket = WaitTicket(lastTicket)
    if let server = queue.take(ticket) { return grant(server, to: claim) }
    waiters[ticket] = Waiter(
      claim: claim, deadline: clock() + MonotonicClock.nanoseconds(waitTimeout))
    order.append(ticket)
    claim.park { [weak self] in self?.leave(ticket) }
  }

  public func preview(key: String) -> ServerAddress? { queue.peek() }

  public func serverFreed(_ server: ServerAddress) {
    if let grant = queue.put(server) { serve(grant.ticket, with: grant.server) }
  }

  public func serverStopped(_ server: ServerAddress) { queue.remove(server) }

  public func expireWaiting(now: UInt64) {
    while let ticket = order.first {
      guard let waiter = waiters[ticket] else {
        _ = order.popFirst()  // served or gone already
        continue
      }
      guard waiter.deadline <= now else { return }
      _ = order.popFirst()
      waiters[ticket] = nil
      queue.cancel(ticket)
      waiter.claim.answer(
        .unavailable("no server became free within \(Self.describe(waitTimeout))"))
    }
  }

  public func shutDown(reason: String) {
    while let ticket = order.popFirst() {
      guard let waiter = waiters.removeValue(forKey: ticket) else { continue }
      queue.cancel(ticket)
      waiter.claim.answer(.unavailable(reason))
    }
  }

  /// Gives `server` to the waiter holding `ticket`; if it has gone, to the next one.
  private func serve(_ ticket: WaitTicket, with server: ServerAddress) {
    guard let waiter = waiters.removeValue(forKey: ticket) else {
      return serverFreed(server)  // left between the grant and now
    }
    grant(server, to: waiter.claim)
  }

  /// Leases `server` to `claim`; if the client has gone, the server goes to the next one. At
  /// once with the in-process ledger (no closure is built), else when the store answers.
  private func grant(_ server: ServerAddress, to claim: ServerClaim) {
    if let delivered = issuer.grantAtOnce(server, to: claim) {
      if !delivered { serverFreed(server) }
      return
    }
    issuer.grant(server, to: claim) { [unowned self] delivered in
      if !delivered { self.serverFreed(server) }
    }
  }

  private func leave(_ ticket: WaitTicket) {
    guard waiters.removeValue(forKey: ticket) != nil else { return }
    queue.cancel(ticket)
  }

  /// A wait timeout as the 503's reason says it: `30 s`, `0.5 s`.
  public static func describe(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
  }
}
