import Documents
import HTTPCore
import XCTest

@testable import FactorialService

/// Collects what a handler answers, with no sockets.
final class CollectingSink: ResponseSink {
  var responses: [HTTPResponse] = []
  func send(_ response: HTTPResponse, for responder: HTTPResponder, onComplete: (() -> Void)?) {
    responses.append(response)
    onComplete?()
  }
}

final class FactorialHandlerTests: XCTestCase {
  private var sink = CollectingSink()
  private var reports: [String] = []

  private func makeHandler() -> FactorialHandler {
    let handler = FactorialHandler(port: 5001) { work, deliver in deliver(work()) }
    handler.report = { [unowned self] in self.reports.append($0) }
    return handler
  }

  private func get(_ handler: FactorialHandler, _ target: String, method: String = "GET")
    -> HTTPResponse
  {
    handler.handle(
      HTTPRequest(method: method, target: target, headers: HTTPHeaders([("Host", "x")])),
      responder: HTTPResponder(sink: sink))
    return sink.responses.removeLast()
  }

  func testJobOnOwnPortAnswersThenReportsItsLease() {
    let handler = makeHandler()
    let response = get(handler, "/5001?n=10&lease=t1")
    XCTAssertEqual(response.status.code, 200)
    XCTAssertEqual(String(decoding: response.body, as: UTF8.self), "Factorial of 10 = 3628800\n")
    XCTAssertEqual(reports, ["/port_update/5001?lease=t1"])
    XCTAssertEqual(handler.completedJobs, 1)
    XCTAssertEqual(handler.activeJobs, 0)
  }

  /// HEAD is safe (RFC 9110 §9.2.1): with a lease it gets what a GET would, and uses up
  /// nothing: the lease stays the client's, no report. (Before, a HEAD, a link checker's or a
  /// prefetch, used the lease, and the client's GET was sent back to the balancer.)
  func testAHeadWithALeaseUsesNothingUp() throws {
    let handler = makeHandler()
    handler.balancerLocation = { _ in "http://x:8001/" }
    let head = get(handler, "/5001?n=10&lease=t1", method: "HEAD")
    XCTAssertEqual(head.status.code, 200)
    XCTAssertEqual(reports, [])
    let revocation = get(handler, "/revoke?lease=t1", method: "POST")
    XCTAssertEqual(try LeaseRevocation.decode(revocation.body).state, .revoked)
    // A revoked lease gets the same answer by HEAD as by GET.
    XCTAssertEqual(get(handler, "/5001?lease=t1", method: "HEAD").status.code, 302)
    let job = get(handler, "/5001?n=10&lease=t2", method: "HEAD")
    XCTAssertEqual(job.body, get(handler, "/5001?n=10&lease=t2").body)
    XCTAssertEqual(reports, ["/port_update/5001?lease=t2"])
    XCTAssertEqual(get(handler, "/5001?lease=t2", method: "HEAD").status.code, 302)
  }

  /// Small jobs are computed at once, without a hand-off to the workers.
  func testSmallJobsAreComputedWithoutAHandOff() {
    var handedOff = 0
    let handler = FactorialHandler(port: 5001) { work, deliver in
      handedOff += 1
      deliver(work())
    }
    XCTAssertEqual(get(handler, "/?n=1000").status.code, 200)
    XCTAssertEqual(handedOff, 0)
    XCTAssertEqual(get(handler, "/?n=1001").status.code, 200)
    XCTAssertEqual(handedOff, 1)
  }

  /// A visit without a lease (by hand, or a client that skipped the balancer) gets its job, and
  /// no report is sent: only a lease's holder may end it.
  func testAJobWithoutALeaseSendsNoReport() {
    let handler = makeHandler()
    XCTAssertEqual(get(handler, "/5001?n=10").status.code, 200)
    XCTAssertEqual(reports, [])
  }

  /// The claim check: a lease whose client has not come is revoked for good; one whose client
  /// came is not; a lease is used once.
  func testRevokedAndUsedLeasesGetNoJobAndNoReport() throws {
    let handler = makeHandler()
    handler.balancerLocation = { request in "http://\(request.hostName ?? "?"):8001/" }
    let revoked = get(handler, "/revoke?lease=unused", method: "POST")
    XCTAssertEqual(
      try LeaseRevocation.decode(revoked.body), LeaseRevocation(lease: "unused", state: .revoked))
    let late = get(handler, "/5001?lease=unused")
    XCTAssertEqual(late.status.code, 302)
    XCTAssertEqual(late.headers["Location"], "http://x:8001/")
    // The client's own query goes back with it (its job stays the one it asked for).
    XCTAssertEqual(get(handler, "/revoke?lease=second", method: "POST").status.code, 200)
    let asked = get(handler, "/5001?n=23&lease=second&key=k")
    XCTAssertEqual(asked.headers["Location"], "http://x:8001/?n=23&key=k")
    XCTAssertEqual(get(handler, "/5001?lease=used").status.code, 200)
    let again = get(handler, "/revoke?lease=used", method: "POST")
    XCTAssertEqual(try LeaseRevocation.decode(again.body).state, .started)
    handler.balancerLocation = nil
    let twice = get(handler, "/5001?lease=used")
    XCTAssertEqual(twice.status.code, 409)
    XCTAssertTrue(String(decoding: twice.body, as: UTF8.self).contains("ask the balancer"))
    XCTAssertEqual(reports, ["/port_update/5001?lease=used"])
    XCTAssertEqual(get(handler, "/revoke?lease=x").status.code, 405)
    XCTAssertEqual(get(handler, "/revoke", method: "POST").status.code, 400)
  }

  func testLeaseIsPassedBackInTheReport() {
    let handler = makeHandler()
    _ = get(handler, "/5001?lease=abc123&n=3")
    XCTAssertEqual(reports, ["/port_update/5001?lease=abc123"])
  }

  func testRootDoesTheJobWithoutReporting() {
    let handler = makeHandler()
    let response = get(handler, "/")
    let text = String(decoding: response.body, as: UTF8.self)
    XCTAssertTrue(text.hasPrefix("Factorial of "), text)
    let n = Int(text.dropFirst("Factorial of ".count).prefix { $0 != " " })!
    XCTAssertTrue((100...1000).contains(n))
    XCTAssertEqual(reports, [])
  }

  func testInvalidNIsA400NamingTheRange() {
    let handler = makeHandler()
    for bad in ["-1", "100001", "abc", "", "1e3", "99999999999999999999"] {
      let response = get(handler, "/?n=\(bad)")
      XCTAssertEqual(response.status.code, 400, bad)
      XCTAssertTrue(String(decoding: response.body, as: UTF8.self).contains("from 0 to 100000"))
    }
    XCTAssertEqual(get(handler, "/?n=0").body, Array("Factorial of 0 = 1\n".utf8))
  }

  /// Leading zeros are a whole number's like any other (`int("0000005")` in the original):
  /// however many, they count for nothing against the range.
  func testLeadingZerosInNAreTheSameNumber() {
    let handler = makeHandler()
    for (sent, n) in [("0000005", 5), ("00", 0), ("000000000000000000000100000", 100_000)] {
      let response = get(handler, "/?n=\(sent)")
      XCTAssertEqual(response.status.code, 200, sent)
      XCTAssertTrue(
        String(decoding: response.body, as: UTF8.self).hasPrefix("Factorial of \(n) = "), sent)
    }
    XCTAssertEqual(get(handler, "/?n=0000100001").status.code, 400)
  }

  /// A browser or client that percent-encodes the query (RFC 3986 §2.1) gets the same job; an
  /// escape that is malformed is a 400 that says so; what an escape decodes to passes the same
  /// strict digit check as any other text.
  func testPercentEncodedNIsDecodedAndMalformedEscapesAre400() {
    let handler = makeHandler()
    for (encoded, n) in [("%35", 5), ("1%30", 10), ("%31%32", 12), ("%30", 0)] {
      let response = get(handler, "/?n=\(encoded)")
      XCTAssertEqual(response.status.code, 200, encoded)
      XCTAssertTrue(
        String(decoding: response.body, as: UTF8.self).hasPrefix("Factorial of \(n) = "), encoded)
    }
    XCTAssertEqual(get(handler, "/5001?n=%35").body, Array("Factorial of 5 = 120\n".utf8))
    for sneaky in [
      "%2B5", "%2b5", "%2D1", "%20%35", "%35%20", "%35%00", "1%2E0", "%EF%BC%95", "+5",
    ] {
      let response = get(handler, "/?n=\(sneaky)")
      XCTAssertEqual(response.status.code, 400, sneaky)
      let text = String(decoding: response.body, as: UTF8.self)
      XCTAssertTrue(text.contains("from 0 to 100000, not '\(sneaky)'"), text)
    }
    for malformed in ["%", "%3", "%zz", "%3g", "5%", "%%35", "%FF"] {
      let response = get(handler, "/?n=\(malformed)")
      XCTAssertEqual(response.status.code, 400, malformed)
      let text = String(decoding: response.body, as: UTF8.self)
      XCTAssertTrue(text.hasPrefix("n=\(malformed) is not valid percent-encoding"), text)
    }
    XCTAssertEqual(reports, [])
  }

  /// A lease is decoded too, and then compared exactly as issued; a malformed escape in it is a
  /// 400 (no job, no report).
  func testAPercentEncodedLeaseIsTheSameLeaseAndAMalformedOneIs400() throws {
    let handler = makeHandler()
    XCTAssertEqual(get(handler, "/5001?n=3&lease=%61bc%2D1").status.code, 200)
    XCTAssertEqual(reports, ["/port_update/5001?lease=abc-1"])
    // Used: the same token however it is written.
    handler.balancerLocation = nil
    XCTAssertEqual(get(handler, "/5001?lease=abc-1").status.code, 409)
    XCTAssertEqual(get(handler, "/5001?lease=ab%63-1").status.code, 409)
    // Exactly as issued: another case is another token.
    XCTAssertEqual(get(handler, "/5001?n=3&lease=ABC-1").status.code, 200)
    XCTAssertEqual(reports.last, "/port_update/5001?lease=ABC-1")
    let revoked = get(handler, "/revoke?lease=%75nused", method: "POST")
    XCTAssertEqual(
      try LeaseRevocation.decode(revoked.body), LeaseRevocation(lease: "unused", state: .revoked))
    XCTAssertEqual(get(handler, "/5001?lease=unused").status.code, 409)
    let reportCount = reports.count
    for malformed in ["%", "%6", "%zz"] {
      let job = get(handler, "/5001?n=3&lease=\(malformed)")
      XCTAssertEqual(job.status.code, 400, malformed)
      XCTAssertTrue(
        String(decoding: job.body, as: UTF8.self).hasPrefix("lease=\(malformed) is not valid"))
      XCTAssertEqual(get(handler, "/revoke?lease=\(malformed)", method: "POST").status.code, 400)
    }
    XCTAssertEqual(reports.count, reportCount)
  }

  func testOtherRoutes() throws {
    let handler = makeHandler()
    XCTAssertEqual(get(handler, "/favicon.ico").status.code, 404)
    XCTAssertEqual(get(handler, "/5002").status.code, 404)
    XCTAssertEqual(get(handler, "/x", method: "POST").status.code, 405)
    XCTAssertEqual(get(handler, "/heartbeat").status.code, 200)
    let health = get(handler, "/health")
    XCTAssertEqual(health.status.code, 200)
    XCTAssertEqual(
      try ServerHealth.decode(health.body), ServerHealth(port: 5001, jobs: 0, served: 0))
    XCTAssertEqual(reports, [])
  }

  func testHealthSaysBusyWhileAJobRuns() throws {
    var pending: (() -> Void)?
    let handler = FactorialHandler(port: 5001) { work, deliver in pending = { deliver(work()) } }
    handler.inlineLimit = -1  // every job goes to the (test's) workers
    handler.handle(
      HTTPRequest(method: "GET", target: "/5001?n=5", headers: HTTPHeaders([("Host", "x")])),
      responder: HTTPResponder(sink: sink))
    XCTAssertTrue(sink.responses.isEmpty)
    XCTAssertEqual(try ServerHealth.decode(get(handler, "/health").body).busy, true)
    pending?()
    XCTAssertEqual(sink.responses.count, 1)
    let after = try ServerHealth.decode(get(handler, "/health").body)
    XCTAssertEqual(after.busy, false)
    XCTAssertEqual(after.served, 1)
  }
}

final class LeaseBookTests: XCTestCase {
  func testALeaseIsAdmittedOnceAndARevokedOneNever() {
    var book = LeaseBook()
    XCTAssertTrue(book.revoke("a"))
    XCTAssertEqual(book.admit("a"), .revoked)
    XCTAssertEqual(book.admit("b"), .start)
    XCTAssertEqual(book.admit("b"), .usedAlready)
    XCTAssertFalse(book.revoke("b"))
  }

  func testMemoryIsBounded() {
    var book = LeaseBook(capacity: 3)
    for token in ["a", "b", "c", "d"] { XCTAssertEqual(book.admit(token), .start) }
    XCTAssertEqual(book.admit("a"), .start, "the oldest was forgotten")
    XCTAssertEqual(book.admit("d"), .usedAlready)
  }
}

/// The factorial server under a flood: a bounded job queue, and jobs of clients that left
/// dropped before they cost anything.
final class FactorialQueueTests: XCTestCase {
  private final class Sink: ResponseSink {
    var responses: [HTTPResponse] = []
    func send(_ response: HTTPResponse, for responder: HTTPResponder, onComplete: (() -> Void)?) {
      responses.append(response)
      onComplete?()
    }
  }

  func testBeyondMaxQueueClientsGet503AndAbandonedJobsAreDropped() {
    var queued: [() -> Void] = []
    var computed = 0
    let handler = FactorialHandler(port: 5001) { work, deliver in
      queued.append {
        let body = work()
        if body != nil { computed += 1 }
        deliver(body)
      }
    }
    handler.maxQueue = 2
    handler.inlineLimit = -1  // every job goes to the (test's) workers
    var reports: [String] = []
    handler.report = { reports.append($0) }
    let sink = Sink()
    var responders: [HTTPResponder] = []
    for index in 0..<3 {
      let responder = HTTPResponder(sink: sink)
      responders.append(responder)
      handler.handle(
        HTTPRequest(
          method: "GET", target: "/5001?n=5&lease=t\(index)", headers: HTTPHeaders([("Host", "x")])),
        responder: responder)
    }
    XCTAssertEqual(sink.responses.map(\.status.code), [503], "the third is refused at once")
    XCTAssertEqual(sink.responses[0].headers["Retry-After"], "1")
    responders[0].cancel()  // its client left before the job started
    for job in queued { job() }
    XCTAssertEqual(computed, 1, "the abandoned job was not computed")
    XCTAssertEqual(handler.droppedJobs, 1)
    XCTAssertEqual(sink.responses.map(\.status.code), [503, 200])
    // Both leases are reported: the server is free either way.
    XCTAssertEqual(Set(reports), ["/port_update/5001?lease=t0", "/port_update/5001?lease=t1"])
    XCTAssertEqual(handler.activeJobs, 0)
  }

  /// A client that leaves while its job runs (a reset or a FIN after a large request): nobody
  /// gets the answer, but the lease was used and the server is free again, so the job leaves the
  /// queue and its lease is reported. (Before, the finished job was kept as active for ever, so
  /// `/health` said busy and the balancer extended the lease without end.)
  func testAJobWhoseClientLeftWhileItRanIsStillReported() {
    var work: (() -> [UInt8]?)?
    var deliver: (([UInt8]?) -> Void)?
    let handler = FactorialHandler(port: 5001) { job, done in
      work = job
      deliver = done
    }
    handler.inlineLimit = -1
    var reports: [String] = []
    handler.report = { reports.append($0) }
    let sink = Sink()
    let responder = HTTPResponder(sink: sink)
    handler.handle(
      HTTPRequest(
        method: "GET", target: "/5001?n=5&lease=t0", headers: HTTPHeaders([("Host", "x")])),
      responder: responder)
    let body = work?()  // a worker starts the job
    XCTAssertNotNil(body)
    responder.cancel()  // its client leaves meanwhile
    XCTAssertEqual(handler.droppedJobs, 0, "too late to drop: it started")
    deliver?(body)
    XCTAssertTrue(sink.responses.isEmpty, "nobody to answer")
    XCTAssertEqual(reports, ["/port_update/5001?lease=t0"])
    XCTAssertEqual(handler.activeJobs, 0)
  }
}
