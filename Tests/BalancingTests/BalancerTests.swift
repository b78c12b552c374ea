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
    host: String? = "lb.example:8001"
  ) {
    let headers = HTTPHeaders(host.map { [("Host", $0)] } ?? [])
    let responder = HTTPResponder(sink: self, isHead: method == "HEAD")
    self.responder = responder
    balancer.handle(
      HTTPRequest(
        method: method, target: target, minorVersion: host == nil ? 0 : 1, headers: headers),
      responder: responder)
  }

  var last: HTTPResponse? { responses.last }
  var location: String? { last?.headers["Location"] }
}

final class BalancerTests: XCTestCase {
  private let ports = (5001...5005).map { ServerAddress(port: $0) }

  func testRedirectsToFreeServersInOrderUsingTheClientsHostName() {
    let balancer = Balancer(servers: ports)
    for port in 5001...5005 {
      let client = FakeClient()
      client.request(balancer, "/")
      XCTAssertEqual(client.last?.status.code, 302)
      XCTAssertEqual(client.location, "http://lb.example:\(port)/\(port)")
    }
  }

  func testHostHeaderVariants() {
    let balancer = Balancer(servers: ports)
    let client = FakeClient()
    client.request(balancer, "/", host: "[::1]:8001")
    XCTAssertEqual(client.location, "http://[::1]:5001/5001")
    client.request(balancer, "/", host: "192.168.1.20")
    XCTAssertEqual(client.location, "http://192.168.1.20:5002/5002")
    balancer.fallbackHost = "10.1.1.1"
    client.request(balancer, "/", host: nil)  // HTTP/1.0 without Host
    XCTAssertEqual(client.location, "http://10.1.1.1:5003/5003")
  }

  func testRemoteServersKeepTheirHost() {
    let balancer = Balancer(servers: [ServerAddress(host: "10.0.0.9", port: 6000)])
    let client = FakeClient()
    client.request(balancer, "/")
    XCTAssertEqual(client.location, "http://10.0.0.9:6000/6000")
  }

  /// Five servers busy: the sixth client waits, and the first server to report serves it.
  func testSixthClientWaitsForTheFirstReport() {
    let balancer = Balancer(servers: ports)
    let firstFive = (0..<5).map { _ in FakeClient() }
    for client in firstFive { client.request(balancer, "/") }
    let sixth = FakeClient()
    let seventh = FakeClient()
    sixth.request(balancer, "/")
    seventh.request(balancer, "/")
    XCTAssertTrue(sixth.responses.isEmpty)
    XCTAssertTrue(seventh.responses.isEmpty)
    XCTAssertEqual(balancer.queue.waitingCount, 2)

    let reporter = FakeClient()
    reporter.request(balancer, "/port_update/5003")
    XCTAssertEqual(reporter.last?.status.code, 200)
    XCTAssertEqual(sixth.location, "http://lb.example:5003/5003")
    XCTAssertTrue(seventh.responses.isEmpty)
    reporter.request(balancer, "/port_update/5001", method: "POST")
    XCTAssertEqual(seventh.location, "http://lb.example:5001/5001")
    XCTAssertEqual(balancer.queue.freeCount, 0)
  }

  func testAWaitingClientThatLeavesConsumesNoServer() {
    let balancer = Balancer(servers: [ServerAddress(port: 5001)])
    FakeClient().request(balancer, "/")
    let leaving = FakeClient()
    leaving.request(balancer, "/")
    let staying = FakeClient()
    staying.request(balancer, "/")
    leaving.responder?.cancel()
    XCTAssertEqual(balancer.queue.waitingCount, 1)
    FakeClient().request(balancer, "/port_update/5001")
    XCTAssertEqual(staying.location, "http://lb.example:5001/5001")
    XCTAssertTrue(leaving.responses.isEmpty)
  }

  func testHeadTakesNoServer() {
    let balancer = Balancer(servers: [ServerAddress(port: 5001)])
    let client = FakeClient()
    client.request(balancer, "/", method: "HEAD")
    XCTAssertEqual(client.last?.status.code, 302)
    XCTAssertEqual(balancer.queue.freeCount, 1)
    client.request(balancer, "/")
    client.request(balancer, "/", method: "HEAD")
    XCTAssertEqual(client.last?.status.code, 503)
    XCTAssertEqual(client.last?.headers["Retry-After"], "1")
    XCTAssertEqual(balancer.queue.waitingCount, 0)
  }

  func testBadReportsChangeNothing() {
    let balancer = Balancer(servers: ports)
    let client = FakeClient()
    for (target, status) in [
      ("/port_update/22", 404), ("/port_update/abc", 400), ("/port_update/-1", 400),
      ("/port_update/0", 400), ("/port_update/99999", 400), ("/port_update/", 400),
    ] {
      client.request(balancer, target)
      XCTAssertEqual(client.last?.status.code, status, target)
    }
    XCTAssertEqual(balancer.queue.freeServers, ports)
  }

  func testOtherRoutes() {
    let balancer = Balancer(servers: ports)
    let client = FakeClient()
    client.request(balancer, "/favicon.ico")
    XCTAssertEqual(client.last?.status.code, 404)
    client.request(balancer, "/nothing")
    XCTAssertEqual(client.last?.status.code, 404)
    client.request(balancer, "/", method: "POST")
    XCTAssertEqual(client.last?.status.code, 405)
    XCTAssertEqual(client.last?.headers["Allow"], "GET, HEAD")
    client.request(balancer, "/port_update/5001", method: "DELETE")
    XCTAssertEqual(client.last?.status.code, 405)
    XCTAssertEqual(balancer.queue.freeCount, 5)
    client.request(balancer, "/health")
    XCTAssertEqual(
      String(decoding: client.last!.body, as: UTF8.self),
      "{\"status\": \"ok\", \"free\": 5, \"waiting\": 0, \"servers\": 5}\n")
  }
}
