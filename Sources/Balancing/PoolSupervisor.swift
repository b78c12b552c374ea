import HTTPCore

/// The balancer's periodic duties: ending waits that ran out, checking leases that were never
/// reported, asking free servers now and then whether they are alive, and probing down servers
/// until they answer. `tick` does one round; the program
/// calls it from a timer, tests call it with the time they choose.
public final class PoolSupervisor {
  public let balancer: Balancer
  private let probe: HealthProbe
  /// Seconds between checks that a free server is still alive.
  public var heartbeatInterval = 5.0

  public init(balancer: Balancer, probe: HealthProbe) {
    self.balancer = balancer
    self.probe = probe
  }

  /// One round of timeouts, lease checks and probes at time `now`.
  public func tick(now: UInt64) {
    balancer.expireWaiting(now: now)
    balancer.expireJobs(now: now)
    let pool = balancer.pool
    for lease in pool.leasesToCheck(now: now) {
      probe.check(lease.server) { [weak self] result in
        self?.balancer.pool.finishCheck(
          of: lease, result: result, now: self?.balancer.clock() ?? now)
      }
    }
    for server in heartbeatInterval.isFinite
      ? pool.serversForHeartbeat(now: now, interval: heartbeatInterval) : []
    {
      probe.check(server) { [weak self] result in
        self?.balancer.pool.finishHeartbeat(
          of: server, result: result, now: self?.balancer.clock() ?? now)
      }
    }
    for server in pool.serversToProbe(now: now) {
      probe.check(server) { [weak self] result in
        self?.balancer.pool.finishProbe(
          of: server, result: result, now: self?.balancer.clock() ?? now)
      }
    }
  }
}
