import Documents
import HTTPCore
import TestSupport
import XCTest

@testable import Balancing

final class HashRingTests: XCTestCase {
  private func servers(_ count: Int) -> [ServerAddress] {
    (0..<count).map { ServerAddress(port: 5001 + $0) }
  }
  private let keys = (0..<20_000).map { "10.0.\($0 / 256).\($0 % 256)" }

  private func owners(_ ring: HashRing) -> [ServerAddress] { keys.map { ring.server(for: $0)! } }

  /// Adding one server to N moves about 1/(N+1) of the keys, all of them to the new server;
  /// removing one moves only its own keys.
  func testAddingOrRemovingOneServerMovesAboutOneNthOfTheKeys() {
    for n in [3, 5, 8] {
      let before = owners(HashRing(slots: 4096, virtualNodes: 40, servers: servers(n)))
      let grown = owners(HashRing(slots: 4096, virtualNodes: 40, servers: servers(n + 1)))
      let moved = zip(before, grown).filter { $0 != $1 }
      let share = Double(moved.count) / Double(keys.count)
      XCTAssertEqual(share, 1 / Double(n + 1), accuracy: 0.6 / Double(n + 1), "adding to \(n)")
      XCTAssertTrue(
        moved.allSatisfy { $0.1 == ServerAddress(port: 5001 + n) }, "keys moved between old servers"
      )

      var remaining = servers(n)
      let removed = remaining.remove(at: 1)
      let shrunk = owners(HashRing(slots: 4096, virtualNodes: 40, servers: remaining))
      for (old, new) in zip(before, shrunk) where old != removed {
        XCTAssertEqual(old, new, "a key of a remaining server moved")
      }
      let lost = Double(before.filter { $0 == removed }.count) / Double(keys.count)
      XCTAssertEqual(lost, 1 / Double(n), accuracy: 0.6 / Double(n))
    }
  }

  func testTheSameKeyMapsToTheSameServerWhateverTheOrder() {
    let ring = HashRing(servers: servers(5))
    let shuffled = HashRing(servers: servers(5).reversed())
    XCTAssertEqual(owners(ring), owners(shuffled))
    XCTAssertEqual(ring.server(for: "client-a"), ring.server(for: "client-a"))
    XCTAssertNil(HashRing().server(for: "x"))
  }

  func testTheSecondDocumentsDefaultsSpreadKeys() {
    let ring = HashRing(slots: 512, virtualNodes: 9, servers: servers(3))
    let counts = Dictionary(grouping: owners(ring), by: { $0 }).mapValues(\.count)
    XCTAssertEqual(counts.count, 3)
    XCTAssertTrue(counts.values.allSatisfy { $0 > keys.count / 10 }, "\(counts)")
  }
}

final class RoutingPolicyTests: XCTestCase {
  private let servers = (5001...5003).map { ServerAddress(port: $0) }

  func testRoundRobinRandomAndLeastConnections() {
    let roundRobin = RoundRobinPolicy()
    XCTAssertEqual(
      (0..<6).map { _ in roundRobin.choose(from: servers, key: "", inFlight: { _ in 0 })!.port },
      [5001, 5002, 5003, 5001, 5002, 5003])
    let random = RandomPolicy(generator: SeededGenerator(seed: 1))
    let picks = (0..<300).map { _ in random.choose(from: servers, key: "", inFlight: { _ in 0 })! }
    XCTAssertEqual(Set(picks).count, 3)
    let least = LeastConnectionsPolicy()
    let loads = [
      ServerAddress(port: 5001): 3, ServerAddress(port: 5002): 1, ServerAddress(port: 5003): 2,
    ]
    XCTAssertEqual(least.choose(from: servers, key: "", inFlight: { loads[$0]! })?.port, 5002)
    XCTAssertNil(least.choose(from: [], key: "", inFlight: { _ in 0 }))
  }

  /// A preview (for `HEAD /`) names a server without moving a policy on: the picks that follow
  /// are the ones that would have come without it.
  func testPreviewsLeaveThePicksAsTheyWere() {
    let makers: [() -> RoutingPolicy] = [
      { RoundRobinPolicy() }, { RandomPolicy(generator: SeededGenerator(seed: 7)) },
      { LeastConnectionsPolicy() }, { ConsistentHashPolicy() },
    ]
    for make in makers {
      let (plain, previewed) = (make(), make())
      for step in 0..<50 {
        let key = "k\(step % 7)"
        let preview = previewed.preview(from: servers, key: key, inFlight: { _ in 0 })
        XCTAssertNotNil(preview)
        let pick = previewed.choose(from: servers, key: key, inFlight: { _ in 0 })
        XCTAssertEqual(pick, plain.choose(from: servers, key: key, inFlight: { _ in 0 }))
        if !(make() is RandomPolicy) { XCTAssertEqual(preview, pick, "\(type(of: make()))") }
      }
      XCTAssertNil(make().preview(from: [], key: "k", inFlight: { _ in 0 }))
    }
  }

  /// A pick while no server is up moves no policy on: after an outage the turn goes on where
  /// it stopped.
  func testAPickFromNoCandidatesMovesNothing() {
    let two = [ServerAddress(port: 5001), ServerAddress(port: 5002)]
    for make in [{ RoundRobinPolicy() as RoutingPolicy }, { LeastConnectionsPolicy() }] {
      let (policy, untouched) = (make(), make())
      XCTAssertNil(policy.choose(from: [], key: "", inFlight: { _ in 0 }))
      XCTAssertEqual(
        policy.choose(from: two, key: "", inFlight: { _ in 0 }),
        untouched.choose(from: two, key: "", inFlight: { _ in 0 }))
    }
  }

  func testBalancerWithAPolicyRedirectsAtOnceAndCountsJobs() throws {
    let balancer = makeBalancer([5001, 5002], policy: RoundRobinPolicy())
    var clients: [FakeClient] = []
    for _ in 0..<4 {
      let client = FakeClient()
      client.request(balancer, "/?n=5000&lease=forged")
      XCTAssertEqual(client.status, 302)  // never waits, though each server has a job already
      clients.append(client)
    }
    XCTAssertEqual(
      clients.map(\.server), [5001, 5002, 5001, 5002].map { "http://lb.example:\($0)/\($0)" })
    // The client's query is carried over, less its own lease.
    let location = try XCTUnwrap(clients[0].location)
    XCTAssertTrue(location.hasPrefix("http://lb.example:5001/5001?n=5000&lease="), location)
    XCTAssertFalse(location.contains("forged"))
    XCTAssertEqual(balancer.broker.store.inFlight(ServerAddress(port: 5001)), 2)

    let reporter = FakeClient()
    reporter.request(balancer, "/port_update/5001?lease=\(clients[0].lease!)")
    XCTAssertEqual(reporter.status, 200)
    reporter.request(balancer, "/port_update/5001?lease=\(clients[0].lease!)")
    XCTAssertEqual(reporter.status, 409)
    reporter.request(balancer, "/port_update/5002?lease=\(clients[2].lease!)")  // 5001's job
    XCTAssertEqual(reporter.status, 409)
    reporter.request(balancer, "/port_update/5002")  // no token: its oldest job
    XCTAssertEqual(reporter.status, 200)
    XCTAssertEqual(balancer.broker.store.inFlight(ServerAddress(port: 5001)), 1)
    XCTAssertEqual(balancer.broker.store.inFlight(ServerAddress(port: 5002)), 1)
    reporter.request(balancer, "/status")
    let status = try PoolStatus.decode(reporter.last!.body)
    XCTAssertEqual(status.servers.map(\.inFlight), [1, 1])
    XCTAssertEqual(status.servers.map(\.state), ["leased", "leased"])
    XCTAssertEqual(status.totals.leased, 4)
    XCTAssertEqual(status.totals.reported, 2)
  }

  func testQueuePolicyCarriesTheQueryToo() {
    let balancer = makeBalancer([5001])
    let client = FakeClient()
    client.request(balancer, "/?n=77")
    XCTAssertTrue(client.location!.hasPrefix("http://lb.example:5001/5001?n=77&lease="))
  }

  func testConsistentHashSendsAKeyToTheSameServer() {
    let balancer = makeBalancer([5001, 5002, 5003], policy: ConsistentHashPolicy())
    var seen = Set<String>()
    for _ in 0..<5 {
      let client = FakeClient()
      client.request(balancer, "/?key=alice")
      seen.insert(client.server!)
    }
    XCTAssertEqual(seen.count, 1)
    // Percent-encoded, the same key; a malformed escape is a 400.
    let encoded = FakeClient()
    encoded.request(balancer, "/?key=%61l%69ce")
    XCTAssertEqual(encoded.server, seen.first)
    encoded.request(balancer, "/?key=al%zzice")
    XCTAssertEqual(encoded.status, 400)
    XCTAssertTrue(encoded.text.hasPrefix("key=al%zzice is not valid"), encoded.text)
    let byAddress = (0..<40).map { index -> String in
      let client = FakeClient()
      client.request(balancer, "/", from: "10.0.0.\(index)")
      return client.server!
    }
    XCTAssertEqual(Set(byAddress).count, 3, "client addresses should spread over the servers")
    // An empty key is no key: the clients spread by address, not all onto the server of "".
    let emptyKey = (0..<40).map { index -> String in
      let client = FakeClient()
      client.request(balancer, "/?key=", from: "10.0.0.\(index)")
      return client.server!
    }
    XCTAssertEqual(emptyKey, byAddress)
  }

  func testUnreportedJobsExpireAndDownServersAreSkipped() {
    let clock = FakeClock()
    let balancer = makeBalancer(
      [5001, 5002], clock: clock, leaseTimeout: 10, policy: LeastConnectionsPolicy())
    let supervisor = PoolSupervisor(broker: balancer.broker, probe: ScriptedProbe())
    supervisor.heartbeatInterval = .infinity
    FakeClient().request(balancer, "/")
    XCTAssertEqual(balancer.counts.inFlight, 1)
    clock.advance(11)
    supervisor.tick(now: clock.now)
    XCTAssertEqual(balancer.counts.inFlight, 0)
    XCTAssertEqual(balancer.counts.expired, 1)
    // A server that goes down takes its jobs with it.
    FakeClient().request(balancer, "/")
    XCTAssertEqual(balancer.broker.store.inFlight(ServerAddress(port: 5001)), 1)
    balancer.broker.markDown(ServerAddress(port: 5001), now: clock.now)
    XCTAssertEqual(balancer.broker.store.inFlight(ServerAddress(port: 5001)), 0)
    XCTAssertEqual(balancer.counts.expired, 2)
    for _ in 0..<3 {
      let client = FakeClient()
      client.request(balancer, "/")
      XCTAssertEqual(client.server, "http://lb.example:5002/5002")
    }
    balancer.broker.markDown(ServerAddress(port: 5002), now: clock.now)
    let refused = FakeClient()
    refused.request(balancer, "/")
    XCTAssertEqual(refused.status, 503)
  }
}
