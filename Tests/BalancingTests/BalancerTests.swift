import Documents
import Foundation
import HTTPCore
import XCTest

@testable import Balancing

/// A client of the balancer with no socket: it records what its responder receives.
final class FakeClient: ResponseSink {
  var responses: [HTTPResponse] = []
  var responder: HTTPResponder?

  func send(_ response: HTTPResponse, for responder: HTTPResponder, onComplete: (() -> Void)?) {
    responses.append(response)
    onComplete?()
  }

  /// Sends a request to `balancer`; the answer, if any, lands in `responses`.
  func request(
    _ balancer: Balancer, _ target: String, method: String = "GET",
    host: String? = "lb.example:8001", body: String = "", from remote: String = "127.0.0.1",
    headers extra: [(String, String)] = []
  ) {
    let headers = HTTPHeaders((host.map { [("Host", $0)] } ?? []) + extra.map { ($0.0, $0.1) })
    let responder = HTTPResponder(sink: self, isHead: method == "HEAD")
    self.responder = responder
    var request = HTTPRequest(
      method: method, target: target, minorVersion: host == nil ? 0 : 1, headers: headers,
      body: Array(body.utf8))
    request.remoteAddress = remote
    balancer.handle(request, responder: responder)
  }

  var last: HTTPResponse? { responses.last }
  var status: Int? { last?.status.code }
  var location: String? { last?.headers["Location"] }
  /// The Location without its lease.
  var server: String? { location?.components(separatedBy: "?").first }
  /// The lease token of the last redirect.
  var lease: String? { location?.components(separatedBy: "lease=").last }
  var text: String { last.map { String(decoding: $0.body, as: UTF8.self) } ?? "" }
}

/// A clock the test moves by hand.
final class FakeClock {
  var now: UInt64 = 1_000_000_000
  func advance(_ seconds: Double) { now += UInt64(seconds * 1e9) }
}

/// A balancer over `servers` with the availability queue, or with `policy`, on the test's clock.
func makeBalancer(
  servers: [ServerAddress], clock: FakeClock = FakeClock(), leaseTimeout: Double = 60,
  policy: RoutingPolicy? = nil
) -> Balancer {
  let issuer = LeaseIssuer(store: LeaseLedger(), leaseTimeout: leaseTimeout)
  issuer.clock = { clock.now }
  let pool = ServerPool(servers: servers)
  let dispatcher: Dispatcher
  if let policy {
    dispatcher = PolicyDispatcher(name: "test", policy: policy, pool: pool, issuer: issuer)
  } else {
    let queue = QueueDispatcher(queue: AvailabilityQueue<ServerAddress>(), issuer: issuer)
    queue.clock = { clock.now }
    dispatcher = queue
  }
  let broker = ServerBroker(pool: pool, issuer: issuer, dispatcher: dispatcher)
  broker.clock = { clock.now }
  return Balancer(broker: broker)
}

func makeBalancer(
  _ ports: [Int], clock: FakeClock = FakeClock(), leaseTimeout: Double = 60,
  policy: RoutingPolicy? = nil
) -> Balancer {
  makeBalancer(
    servers: ports.map { ServerAddress(port: $0) }, clock: clock, leaseTimeout: leaseTimeout,
    policy: policy)
}

/// What the tests read of a balancer.
extension Balancer {
  var pool: ServerPool { broker.pool }
  var counts: LeaseCounts { broker.store.counts }
  /// The free servers' ports, in queue order.
  var free: [Int] { broker.dispatcher.freeServers.map(\.port) }
  var waitingCount: Int { broker.dispatcher.waitingCount }
  var queue: QueueDispatcher { broker.dispatcher as! QueueDispatcher }
  func expireWaiting(now: UInt64) { broker.expireWaiting(now: now) }
}

final class BalancerTests: XCTestCase {
  private let ports = Array(5001...5005)

  func testRedirectsToFreeServersInOrderWithALeaseUsingTheClientsHostName() {
    let balancer = makeBalancer(ports)
    var tokens = Set<String>()
    for port in ports {
      let client = FakeClient()
      client.request(balancer, "/")
      XCTAssertEqual(client.status, 302)
      XCTAssertEqual(client.server, "http://lb.example:\(port)/\(port)")
      XCTAssertEqual(client.lease?.count, 32)
      tokens.insert(client.lease!)
    }
    XCTAssertEqual(tokens.count, 5)
    XCTAssertEqual(balancer.counts.issued, 5)
  }

  /// `?key=` is read only where it picks the server (consistent hashing): under the queue, or a
  /// policy that does not hash, a malformed escape in it is no reason to refuse the job.
  func testAKeyIsReadOnlyWhereItPicksTheServer() {
    for policy: RoutingPolicy? in [nil, RoundRobinPolicy()] {
      let client = FakeClient()
      client.request(makeBalancer([5001], policy: policy), "/?n=5&key=50%")
      XCTAssertEqual(client.status, 302, client.text)
    }
    let hashing = FakeClient()
    hashing.request(makeBalancer([5001], policy: ConsistentHashPolicy()), "/?n=5&key=50%")
    XCTAssertEqual(hashing.status, 400, hashing.text)
  }

  func testHostHeaderVariants() {
    let balancer = makeBalancer(ports)
    let client = FakeClient()
    client.request(balancer, "/", host: "[::1]:8001")
    XCTAssertEqual(client.server, "http://[::1]:5001/5001")
    client.request(balancer, "/", host: "192.168.1.20")
    XCTAssertEqual(client.server, "http://192.168.1.20:5002/5002")
    balancer.fallbackHost = "10.1.1.1"
    client.request(balancer, "/", host: nil)  // HTTP/1.0 without Host
    XCTAssertEqual(client.server, "http://10.1.1.1:5003/5003")
  }

  func testRemoteServersKeepTheirHost() {
    let balancer = makeBalancer(servers: [ServerAddress(host: "10.0.0.9", port: 6000)])
    let client = FakeClient()
    client.request(balancer, "/")
    XCTAssertEqual(client.server, "http://10.0.0.9:6000/6000")
  }

  /// Five servers busy: the sixth client waits, and the first server to report serves it.
  func testSixthClientWaitsForTheFirstReport() {
    let balancer = makeBalancer(ports)
    let firstFive = (0..<5).map { _ in FakeClient() }
    for client in firstFive { client.request(balancer, "/") }
    let sixth = FakeClient()
    let seventh = FakeClient()
    sixth.request(balancer, "/")
    seventh.request(balancer, "/")
    XCTAssertTrue(sixth.responses.isEmpty)
    XCTAssertTrue(seventh.responses.isEmpty)
    XCTAssertEqual(balancer.waitingCount, 2)

    let reporter = FakeClient()
    reporter.request(balancer, "/port_update/5003?lease=\(firstFive[2].lease!)")
    XCTAssertEqual(reporter.status, 200)
    XCTAssertEqual(sixth.server, "http://lb.example:5003/5003")
    XCTAssertTrue(seventh.responses.isEmpty)
    reporter.request(balancer, "/port_update/5001?lease=\(firstFive[0].lease!)", method: "POST")
    XCTAssertEqual(seventh.server, "http://lb.example:5001/5001")
    XCTAssertEqual(balancer.free.count, 0)
  }

  func testAWaitingClientThatLeavesConsumesNoServer() {
    let balancer = makeBalancer([5001])
    let first = FakeClient()
    first.request(balancer, "/")
    let leaving = FakeClient()
    leaving.request(balancer, "/")
    let staying = FakeClient()
    staying.request(balancer, "/")
    leaving.responder?.cancel()
    XCTAssertEqual(balancer.waitingCount, 1)
    FakeClient().request(balancer, "/port_update/5001?lease=\(first.lease!)")
    XCTAssertEqual(staying.server, "http://lb.example:5001/5001")
    XCTAssertTrue(leaving.responses.isEmpty)
    XCTAssertEqual(balancer.counts.issued, 2)
  }

  func testHeadTakesNoServer() {
    let balancer = makeBalancer([5001])
    let client = FakeClient()
    client.request(balancer, "/", method: "HEAD")
    XCTAssertEqual(client.status, 302)
    XCTAssertEqual(balancer.free.count, 1)
    XCTAssertEqual(balancer.counts.issued, 0)
    client.request(balancer, "/")
    client.request(balancer, "/", method: "HEAD")
    XCTAssertEqual(client.status, 503)
    XCTAssertEqual(client.last?.headers["Retry-After"], "1")
    XCTAssertEqual(balancer.waitingCount, 0)
  }

  /// `HEAD /` names the server the same `GET /` would get now, with the client's query carried
  /// into the redirect as a GET's is (less the lease), under every policy.
  func testHeadNamesTheServerAGetWouldGet() {
    let policies: [(String, () -> RoutingPolicy?)] = [
      ("queue", { nil }), ("round-robin", { RoundRobinPolicy() }),
      ("least-connections", { LeastConnectionsPolicy() }),
      ("consistent-hash", { ConsistentHashPolicy() }),
    ]
    for (name, policy) in policies {
      let balancer = makeBalancer(Array(5001...5008), policy: policy())
      let client = FakeClient()
      for key in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        client.request(balancer, "/?n=5&key=\(key)", method: "HEAD")
        XCTAssertEqual(client.status, 302, name)
        let head = client.location
        client.request(balancer, "/?n=5&key=\(key)")
        XCTAssertEqual(head.map { $0 + "&lease=" + (client.lease ?? "") }, client.location, name)
      }
      XCTAssertEqual(balancer.counts.issued, 8, name)
    }
  }

  func testHeadWithoutAQueryGetsNoQuestionMark() {
    let client = FakeClient()
    client.request(makeBalancer([5001]), "/", method: "HEAD")
    XCTAssertEqual(client.location, "http://lb.example:5001/5001")
    client.request(makeBalancer([5001]), "/?lease=mine&&", method: "HEAD")
    XCTAssertEqual(client.location, "http://lb.example:5001/5001")
  }

  func testReportsOnlyEndTheMatchingLeaseOnce() {
    let balancer = makeBalancer(ports)
    let client = FakeClient()
    client.request(balancer, "/")
    let token = client.lease!
    let reporter = FakeClient()
    reporter.request(balancer, "/port_update/5001?lease=wrong")
    XCTAssertEqual(reporter.status, 409)
    reporter.request(balancer, "/port_update/5002?lease=\(token)")  // not leased
    XCTAssertEqual(reporter.status, 409)
    reporter.request(balancer, "/port_update/5001?lease=\(token)")
    XCTAssertEqual(reporter.status, 200)
    reporter.request(balancer, "/port_update/5001?lease=\(token)")  // used already
    XCTAssertEqual(reporter.status, 409)
    reporter.request(balancer, "/port_update/5001")  // no token, not leased
    XCTAssertEqual(reporter.status, 409)
    // Nothing was queued twice.
    XCTAssertEqual(balancer.free, [5002, 5003, 5004, 5005, 5001])
  }

  /// A report's lease is percent-decoded, then compared exactly with the token issued: an
  /// escaped character of the token is the token; another case is not; a malformed escape is a
  /// 400 and changes nothing.
  func testAReportsLeaseIsPercentDecodedAndComparedExactly() {
    let balancer = makeBalancer([5001, 5002])
    let client = FakeClient()
    client.request(balancer, "/")
    let token = client.lease!
    let reporter = FakeClient()
    for malformed in ["%", "%4", "%zz", token + "%"] {
      reporter.request(balancer, "/port_update/5001?lease=\(malformed)")
      XCTAssertEqual(reporter.status, 400, malformed)
      XCTAssertTrue(reporter.text.hasPrefix("lease=\(malformed) is not valid"), reporter.text)
    }
    let other = token.uppercased()
    XCTAssertNotEqual(other, token)
    reporter.request(balancer, "/port_update/5001?lease=\(other)")
    XCTAssertEqual(reporter.status, 409, "not the token: \(other)")
    XCTAssertEqual(balancer.counts.reported, 0)
    XCTAssertEqual(balancer.free, [5002])
    // The first character escaped (%xx of its code): the same token.
    let first = token.utf8.first!
    let escaped = "%" + String(first, radix: 16, uppercase: true) + token.dropFirst()
    reporter.request(balancer, "/port_update/5001?lease=\(escaped)")
    XCTAssertEqual(reporter.status, 200, reporter.text)
    XCTAssertEqual(balancer.counts.reported, 1)
    XCTAssertEqual(balancer.free, [5002, 5001])
  }

  /// A report that asks for a minimal answer (`Prefer: return=minimal`, as factorial servers
  /// send theirs) is answered `204 No Content` when taken; a refusal still says why.
  func testAReportThatPrefersAMinimalReturnIsAnswered204() {
    let balancer = makeBalancer([5001, 5002])
    let client = FakeClient()
    client.request(balancer, "/")
    let token = client.lease!
    let reporter = FakeClient()
    let minimal = [("Prefer", "return=minimal")]
    reporter.request(balancer, "/port_update/5001?lease=\(token)", headers: minimal)
    XCTAssertEqual(reporter.status, 204)
    XCTAssertTrue(reporter.last?.body.isEmpty ?? false, reporter.text)
    XCTAssertNil(reporter.last?.headers["Content-Type"])
    XCTAssertEqual(balancer.free, [5002, 5001])
    reporter.request(balancer, "/port_update/5001?lease=\(token)", headers: minimal)
    XCTAssertEqual(reporter.status, 409)
    XCTAssertTrue(reporter.text.contains("holds that lease"), reporter.text)
    // Among other preferences too, in any case; without it, the answer says what happened.
    client.request(balancer, "/")
    reporter.request(
      balancer, "/port_update/5002?lease=\(client.lease!)",
      headers: [("Prefer", "wait=5, Return=Minimal")])
    XCTAssertEqual(reporter.status, 204)
    client.request(balancer, "/")
    reporter.request(balancer, "/port_update/5001?lease=\(client.lease!)")
    XCTAssertEqual(reporter.status, 200)
    XCTAssertEqual(reporter.text, "5001 reported its lease\n")
  }

  func testReportWithoutATokenIsAcceptedOnceWhileLeased() {
    let balancer = makeBalancer([5001, 5002])
    FakeClient().request(balancer, "/")
    let reporter = FakeClient()
    reporter.request(balancer, "/port_update/5001")
    XCTAssertEqual(reporter.status, 200)
    reporter.request(balancer, "/port_update/5001")
    XCTAssertEqual(reporter.status, 409)
    XCTAssertEqual(balancer.free, [5002, 5001])
  }

  func testBadReportsChangeNothing() {
    let balancer = makeBalancer(ports)
    let client = FakeClient()
    for (target, status) in [
      ("/port_update/22", 404), ("/port_update/abc", 400), ("/port_update/-1", 400),
      ("/port_update/0", 400), ("/port_update/99999", 400), ("/port_update/", 400),
      ("/port_update/5001", 409), ("/port_update/5001/x", 400),
    ] {
      client.request(balancer, target)
      XCTAssertEqual(client.status, status, target)
    }
    XCTAssertEqual(balancer.free, ports)
    XCTAssertEqual(balancer.counts.reported, 0)
  }

  func testWaitingClientsGet503AtTheirTimeout() {
    let clock = FakeClock()
    let balancer = makeBalancer([5001], clock: clock)
    balancer.queue.waitTimeout = 30
    FakeClient().request(balancer, "/")
    let early = FakeClient()
    early.request(balancer, "/")
    clock.advance(10)
    let late = FakeClient()
    late.request(balancer, "/")
    clock.advance(20.5)
    balancer.expireWaiting(now: clock.now)
    XCTAssertEqual(early.status, 503)
    XCTAssertEqual(early.last?.headers["Retry-After"], "1")
    XCTAssertTrue(late.responses.isEmpty)
    XCTAssertEqual(balancer.waitingCount, 1)
    clock.advance(10)
    balancer.expireWaiting(now: clock.now)
    XCTAssertEqual(late.status, 503)
    XCTAssertEqual(balancer.waitingCount, 0)
  }

  func testTooManyWaitingGet503AtOnce() {
    let balancer = makeBalancer([5001])
    balancer.queue.maxWaiting = 2
    FakeClient().request(balancer, "/")
    let waiting = (0..<2).map { _ in FakeClient() }
    for client in waiting { client.request(balancer, "/") }
    let refused = FakeClient()
    refused.request(balancer, "/")
    XCTAssertEqual(refused.status, 503)
    XCTAssertTrue(waiting.allSatisfy { $0.responses.isEmpty })
  }

  func testShutDownAnswersEveryWaitingClient() {
    let balancer = makeBalancer([5001])
    FakeClient().request(balancer, "/")
    let waiting = (0..<3).map { _ in FakeClient() }
    for client in waiting { client.request(balancer, "/") }
    balancer.broker.shutDown()
    XCTAssertEqual(waiting.map(\.status), [503, 503, 503])
    let after = FakeClient()
    after.request(balancer, "/")
    XCTAssertEqual(after.status, 503)
  }

  func testStatusShowsEveryServerAndTotals() throws {
    let clock = FakeClock()
    let balancer = makeBalancer([5001, 5002], clock: clock)
    let client = FakeClient()
    client.request(balancer, "/")
    clock.advance(1.5)
    client.request(balancer, "/status")
    let json = try JSONSerialization.jsonObject(with: Data(client.text.utf8)) as! [String: Any]
    let servers = json["servers"] as! [[String: Any]]
    XCTAssertEqual(servers[0]["server"] as? String, "5001")
    XCTAssertEqual(servers[0]["state"] as? String, "leased")
    XCTAssertEqual(servers[0]["lease_age"] as? Double, 1.5)
    XCTAssertEqual(servers[0]["leases"] as? Int, 1)
    XCTAssertEqual(servers[1]["state"] as? String, "free")
    let totals = json["totals"] as! [String: Int]
    XCTAssertEqual(
      totals, ["leased": 1, "reported": 0, "expired": 0, "reclaimed": 0, "in_flight": 1])
    let status = try PoolStatus.decode(client.last!.body)
    XCTAssertEqual(status.queue, ["5002"])
    XCTAssertEqual(status.policy, "queue")
  }

  func testOtherRoutes() {
    let balancer = makeBalancer(ports)
    let client = FakeClient()
    client.request(balancer, "/favicon.ico")
    XCTAssertEqual(client.status, 404)
    client.request(balancer, "/nothing")
    XCTAssertEqual(client.status, 404)
    client.request(balancer, "/", method: "POST")
    XCTAssertEqual(client.status, 405)
    XCTAssertEqual(client.last?.headers["Allow"], "GET, HEAD")
    client.request(balancer, "/port_update/5001", method: "DELETE")
    XCTAssertEqual(client.status, 405)
    XCTAssertEqual(balancer.free.count, 5)
    client.request(balancer, "/health")
    XCTAssertEqual(
      try BalancerHealth.decode(client.last!.body), BalancerHealth(free: 5, waiting: 0, servers: 5))
    XCTAssertEqual(client.last?.headers["Content-Type"], "application/json")
  }
}
