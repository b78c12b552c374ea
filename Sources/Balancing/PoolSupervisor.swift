/// The balancer's periodic duties: ending waits that ran out, asking servers to revoke leases
/// their clients never used, checking leases that were never reported, asking idle servers now
/// and then whether they are alive, and probing down servers until they answer (then revoking
/// there the leases that ended while they were down). `tick` does one round; the program calls
/// it from a timer, tests call it with the time they choose.
public final class PoolSupervisor {
  public let broker: ServerBroker
  private let probe: HealthProbe
  /// Seconds between checks that an idle server is still alive; infinity for none.
  public var heartbeatInterval = 5.0
  /// Whether this balancer runs the checks of leases and servers now. Several balancers that
  /// share their books take turns (one at a time); a balancer alone always does.
  public var isCoordinator: () -> Bool = { true }

  public init(broker: ServerBroker, probe: HealthProbe) {
    self.broker = broker
    self.probe = probe
  }

  /// Seconds between rounds while something is under way: clients wait, leases are out, or
  /// servers are down (their timeouts, checks and probes want a fine clock).
  public var busyInterval = 0.1
  /// Seconds between rounds otherwise (only heartbeats are due, every few seconds): an idle
  /// balancer wakes once a second, not ten times.
  public var idleInterval = 1.0

  /// When the next round is worth doing, in seconds from now (see `busyInterval`).
  public func nextRoundDelay() -> Double {
    let pool = broker.pool
    let busy =
      // Leased servers, not the counts: a shared store's counts wait for its next read.
      broker.dispatcher.waitingCount > 0 || !broker.store.leasedServers.isEmpty
      || !pool.servers.allSatisfy(pool.canServe)
    return busy ? busyInterval : min(idleInterval, heartbeatInterval)
  }

  /// One round of timeouts, lease checks and probes at time `now` (only the timeouts of this
  /// balancer's waiting clients, unless it is the coordinator).
  public func tick(now: UInt64) {
    broker.expireWaiting(now: now)
    guard isCoordinator() else { return }
    broker.overdueLeases(now: now) { [weak self] due in
      guard let self else { return }
      for lease in due {
        self.probe.check(lease.server) { [weak self] result in
          guard let broker = self?.broker else { return }
          broker.finishCheck(of: lease, result: result, now: broker.clock())
        }
      }
    }
    broker.unclaimedLeases(now: now) { [weak self] due in
      guard let self else { return }
      for lease in due {
        self.probe.revoke(lease) { [weak self] result in
          self?.broker.finishClaimCheck(of: lease, result: result)
        }
      }
    }
    if heartbeatInterval.isFinite {
      for server in broker.serversForHeartbeat(now: now, interval: heartbeatInterval) {
        probe.check(server) { [weak self] result in
          guard let broker = self?.broker else { return }
          broker.finishHeartbeat(of: server, result: result, now: broker.clock())
        }
      }
    }
    for server in broker.serversToProbe(now: now) {
      probe.check(server) { [weak self] result in
        self?.settleProbe(of: server, result: result)
      }
    }
  }

  /// A probe of a down server answered. A server that answers while leases that ended during
  /// its outage are still to be revoked there (their clients may come once a partition heals)
  /// has them revoked first, then is checked afresh: only that check can bring it back (if
  /// idle: see `ServerBroker.finishProbe`). A revoke that gets no answer keeps it down; it is
  /// asked again at the next probe, a second later (the server answered its check: no back-off).
  private func settleProbe(of server: ServerAddress, result: ServerPool.CheckResult) {
    let stranded = result == .idle || result == .busy ? broker.strandedLeases(of: server) : []
    guard !stranded.isEmpty else {
      return broker.finishProbe(of: server, result: result, now: broker.clock())
    }
    var left = stranded.count
    for lease in stranded {
      probe.revoke(lease) { [weak self] outcome in
        guard let self else { return }
        broker.finishRevocation(of: lease, result: outcome)
        left -= 1
        guard left == 0 else { return }
        guard broker.strandedLeases(of: server).isEmpty else {
          return broker.finishProbe(of: server, result: .inconclusive, now: broker.clock())
        }
        probe.check(server) { [weak self] result in
          self?.settleProbe(of: server, result: result)
        }
      }
    }
  }
}
