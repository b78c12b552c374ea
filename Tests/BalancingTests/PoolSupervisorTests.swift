import XCTest

@testable import Balancing

/// How often the supervisor wants its rounds: often while anything is under way, once a second
/// when the balancer is idle.
final class PoolSupervisorTests: XCTestCase {
  func testRoundsAreFrequentOnlyWhileSomethingIsUnderWay() {
    let clock = FakeClock()
    let balancer = makeBalancer([5001], clock: clock)
    let supervisor = PoolSupervisor(broker: balancer.broker, probe: ScriptedProbe())
    XCTAssertEqual(supervisor.nextRoundDelay(), 1, "idle")
    // A lease is out: its checks want a fine clock.
    let first = FakeClient()
    first.request(balancer, "/")
    XCTAssertEqual(first.status, 302)
    XCTAssertEqual(supervisor.nextRoundDelay(), 0.1)
    // A client waits as well.
    let waiting = FakeClient()
    waiting.request(balancer, "/")
    XCTAssertEqual(balancer.broker.dispatcher.waitingCount, 1)
    XCTAssertEqual(supervisor.nextRoundDelay(), 0.1)
    // The lease is reported and goes to the waiting client; that one is reported too: idle.
    let token = first.lease!
    FakeClient().request(balancer, "/port_update/5001?lease=\(token)")
    XCTAssertEqual(waiting.status, 302)
    FakeClient().request(balancer, "/port_update/5001?lease=\(waiting.lease!)")
    XCTAssertEqual(supervisor.nextRoundDelay(), 1)
    // A server down is probed on the fine clock until it is back.
    balancer.broker.markDown(ServerAddress(port: 5001), now: clock.now)
    XCTAssertEqual(supervisor.nextRoundDelay(), 0.1)
    // Heartbeats more often than once a second set the idle pace.
    balancer.broker.finishProbe(of: ServerAddress(port: 5001), result: .idle, now: clock.now)
    supervisor.heartbeatInterval = 0.5
    XCTAssertEqual(supervisor.nextRoundDelay(), 0.5)
  }
}
