import HTTPCore
import XCTest

@testable import Balancing

/// The availability queue's dispatcher: decisions settle before any client is answered.
final class QueueDispatcherTests: XCTestCase {
  /// A claim whose answer cannot be delivered gets no lease, and the server goes to the next
  /// client in line.
  func testAServerThatCannotBeDeliveredGoesToTheNextClient() {
    let balancer = makeBalancer([5001])
    let first = FakeClient()
    first.request(balancer, "/")
    var undeliverable = 0
    let lost = ServerClaim(client: "10.0.0.1", key: "") { _, _ in
      undeliverable += 1
      return false
    }
    balancer.broker.request(lost)
    let next = FakeClient()
    next.request(balancer, "/")
    FakeClient().request(balancer, "/port_update/5001?lease=\(first.lease!)")
    XCTAssertEqual(undeliverable, 1)
    XCTAssertEqual(next.server, "http://lb.example:5001/5001")
    XCTAssertEqual(balancer.counts.inFlight, 1)
    XCTAssertEqual(balancer.counts.issued, balancer.counts.reported + balancer.counts.expired + 1)
  }

  /// A client answered from inside a report may act at once (here: its server reports again at
  /// once, and another client asks): every step sees settled state, and nothing is double-booked.
  func testClientsAnsweredDuringAReportMayActAtOnce() {
    let balancer = makeBalancer([5001])
    let holder = FakeClient()
    holder.request(balancer, "/")
    let eager = EagerClient(balancer: balancer)
    eager.request(balancer, "/")
    let third = FakeClient()
    third.request(balancer, "/")
    FakeClient().request(balancer, "/port_update/5001?lease=\(holder.lease!)")
    // The eager client got 5001 and reported at once from inside its answer; the third got it next.
    XCTAssertEqual(eager.status, 302)
    XCTAssertEqual(eager.reportStatus, 200)
    XCTAssertEqual(third.server, "http://lb.example:5001/5001")
    XCTAssertEqual(balancer.counts.inFlight, 1)
    XCTAssertEqual(balancer.free, [])
    XCTAssertEqual(balancer.waitingCount, 0)
  }

  func testWaitersBeyondTheLimitAndAfterTheirDeadlineGet503() {
    let clock = FakeClock()
    let balancer = makeBalancer([5001], clock: clock)
    balancer.queue.maxWaiting = 1
    balancer.queue.waitTimeout = 0.5
    FakeClient().request(balancer, "/")
    let waiting = FakeClient()
    waiting.request(balancer, "/")
    let refused = FakeClient()
    refused.request(balancer, "/")
    XCTAssertEqual(refused.text, "too many clients are waiting\n")
    clock.advance(0.6)
    balancer.expireWaiting(now: clock.now)
    XCTAssertEqual(waiting.text, "no server became free within 0.5 s\n")
  }
}

/// A client that, as soon as it gets its redirect, plays its server and reports the lease.
final class EagerClient: ResponseSink {
  let balancer: Balancer
  var status: Int?
  var reportStatus: Int?
  private var responder: HTTPResponder?

  init(balancer: Balancer) { self.balancer = balancer }

  func request(_ balancer: Balancer, _ target: String) {
    let responder = HTTPResponder(sink: self)
    self.responder = responder
    balancer.handle(
      HTTPRequest(
        method: "GET", target: target, headers: HTTPHeaders([("Host", "lb.example:8001")])),
      responder: responder)
  }

  func send(_ response: HTTPResponse, for responder: HTTPResponder, onComplete: (() -> Void)?) {
    status = response.status.code
    onComplete?()
    guard let location = response.headers["Location"],
      let token = location.components(separatedBy: "lease=").last
    else { return }
    let reporter = FakeClient()
    reporter.request(balancer, "/port_update/5001?lease=\(token)")
    reportStatus = reporter.status
  }
}
