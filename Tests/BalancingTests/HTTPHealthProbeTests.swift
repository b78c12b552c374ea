import Balancing
import Documents
import HTTPCore
import Supervision
import Synchronization
import TestSupport
import XCTest

/// `HTTPHealthProbe` against a server of the test's own on a real socket: what an answer to
/// `GET /health` tells the balancer about a server.
final class HTTPHealthProbeTests: XCTestCase {
  /// Answers every request with one response.
  private final class FixedAnswer: HTTPHandler {
    let response: HTTPResponse
    init(_ response: HTTPResponse) { self.response = response }
    func handle(_ request: HTTPRequest, responder: HTTPResponder) { responder.respond(response) }
  }

  /// What the probe makes of a server that answers `/health` with `response`.
  private func check(answering response: HTTPResponse) throws -> ServerPool.CheckResult? {
    let thread = try LoopThread()
    defer { thread.stop() }
    let started = thread.sync { () -> (HTTPServer, HTTPHealthProbe)? in
      let configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
      guard
        let server = try? HTTPServer(
          loop: thread.loop, configuration: configuration, handler: FixedAnswer(response)),
        (try? server.start()) != nil
      else { return nil }
      return (server, HTTPHealthProbe(loop: thread.loop))
    }
    let (server, probe) = try XCTUnwrap(started ?? nil)
    defer { _ = thread.sync { server.stopAccepting() } }
    let result = Mutex<ServerPool.CheckResult?>(nil)
    _ = thread.sync {
      probe.check(ServerAddress(port: server.port)) { answer in result.withLock { $0 = answer } }
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
}
