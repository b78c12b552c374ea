import XCTest

@testable import Balancing

/// A balancer without sockets, with its supervisor, on a clock and a health probe the test
/// drives: the fixture of the tests of checks, probes and leases over time.
class SupervisedBalancerTestCase: XCTestCase {
  let clock = FakeClock()
  let probe = ScriptedProbe()
  var balancer: Balancer!
  var supervisor: PoolSupervisor!

  /// A balancer over `ports`, up, whose supervisor sends no heartbeats (a test that wants them
  /// sets `supervisor.heartbeatInterval`).
  func setUpBalancer(_ ports: [Int]) {
    balancer = makeBalancer(ports, clock: clock)
    supervisor = PoolSupervisor(broker: balancer.broker, probe: probe)
    supervisor.heartbeatInterval = .infinity
  }

  /// Moves the clock on by `seconds`, then runs one round of the supervisor.
  func tick(after seconds: Double) {
    clock.advance(seconds)
    supervisor.tick(now: clock.now)
  }
}
