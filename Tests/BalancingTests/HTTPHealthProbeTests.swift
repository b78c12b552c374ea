import Balancing
import Documents
import HTTPCore
import Supervision
import Synchronization
import TestSupport
import XCTest

/// `HTTPHealthProbe` against a server of the test's own on a real socket: what an answer to
/// `GET /health` or to `POST /revoke` tells the balancer about a server.
final class HTTPHealthProbeTests: XCTestCase {
  /// Answers every request with one response.
  private final class FixedAnswer: HTTPHandler {
    let response: HTTPResponse
    init(_ response: HTTPResponse) { self.response = response }
    func handle(_ request: HTTPRequest, responder: HTTPResponder) { responder.respond(response) }
  }

  /// What the probe makes of a server that answers `/health` with `response`.
  private func check(answering response: HTTPResponse) throws -> ServerPool.CheckResult? {
    try ask(answering: response) { probe, server, completion in
      probe.check(server, completion: completion)
    }
  }

  /// What the probe makes of a server that answers `/revoke` with `response`, or of none
  /// listening (nil).
  private func revoke(answering response: HTTPResponse?) throws -> RevokeResult? {
    try ask(answering: response) { probe, server, completion in
      let lease = Lease(token: "t1", server: server, issued: 0, deadline: 0)
      probe.revoke(lease, completion: completion)
    }
  }

  /// Runs `question` against a server of the test's that answers every request with
  /// `response` (or against a port where none listens, if nil) and returns its answer.
  private func ask<Answer: Sendable>(
    answering response: HTTPResponse?,
    _ question: @escaping (HTTPHealthProbe, ServerAddress, @escaping (Answer) -> Void) -> Void
  ) throws -> Answer? {
    let thread = try LoopThread()
    defer { thread.stop() }
    let started = thread.sync { () -> (HTTPServer, HTTPHealthProbe)? in
      let configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
      let handler = FixedAnswer(response ?? .text(.ok, ""))
      guard
        let server = try? HTTPServer(
          loop: thread.loop, configuration: configuration, handler: handler),
        (try? server.start()) != nil
      else { return nil }
      if response == nil { server.stopAccepting() }
      return (server, HTTPHealthProbe(loop: thread.loop))
    }
    let (server, probe) = try XCTUnwrap(started ?? nil)
    defer { _ = thread.sync { server.stopAccepting() } }
    let result = Mutex<Answer?>(nil)
    _ = thread.sync {
      question(probe, ServerAddress(port: server.port)) { answer in
        result.withLock { $0 = answer }
      }
    }
    thread.eventually("the probe's answer") { result.withLock { $0 } != nil }
    return result.withLock { $0 }
  }

  /// A server that answers 503 (its connections are all taken: `too many connections`) is
  /// alive but says nothing of its jobs: it may be busy, so a lease on it must not end as if it
  /// were idle (the server would be handed to the next client mid-job). Another 5xx is a server
  /// that fails on /health whatever it does (one written for the original may fail on any path
  /// it does not know): taken as busy, its lease would be extended for ever (found in review).
  func testAServerAnswering503MayBeBusy() throws {
    let full = HTTPResponse.text(.serviceUnavailable, "too many connections, retry")
    XCTAssertEqual(try check(answering: full), .busy)
    XCTAssertEqual(try check(answering: .text(.internalServerError, "oops")), .idle)
  }

  func testOurHealthAndAServerWrittenForTheOriginal() throws {
    let idle = ServerHealth(port: 5001, jobs: 0, served: 3).encoded()
    let busy = ServerHealth(port: 5001, jobs: 2, served: 3).encoded()
    XCTAssertEqual(try check(answering: .json(.ok, idle)), .idle)
    XCTAssertEqual(try check(answering: .json(.ok, busy)), .busy)
    // No /health of ours: any answer means alive, and it counts as idle, as before.
    XCTAssertEqual(try check(answering: .text(.notFound, "no such page")), .idle)
    XCTAssertEqual(try check(answering: .text(.ok, "hello")), .idle)
  }

  /// A revoke is settled by any answer of a server (ours says `revoked` or `started`; one
  /// written for the original cannot tell), but not by no answer or a 503 (all its connections
  /// taken): the server may not have heard, and a lease that ended while it was down is asked
  /// again.
  func testWhatARevokeTellsAndWhatItDoesNot() throws {
    let revoked = LeaseRevocation(lease: "t1", state: .revoked).encoded()
    let started = LeaseRevocation(lease: "t1", state: .started).encoded()
    XCTAssertEqual(try revoke(answering: .json(.ok, revoked)), .revoked)
    XCTAssertEqual(try revoke(answering: .json(.ok, started)), .started)
    XCTAssertEqual(try revoke(answering: .text(.notFound, "no such page")), .unknown)
    let full = HTTPResponse.text(.serviceUnavailable, "too many connections, retry")
    XCTAssertEqual(try revoke(answering: full), .unreachable)
    XCTAssertEqual(try revoke(answering: nil), .unreachable)
  }
}
