import Foundation
import Synchronization
import TestSupport
import XCTest

@testable import HTTPCore

/// `HTTPClient.lazyAnswerWindow`: answers read when the next request goes out or once the window
/// has passed, never lost, and a connection the server closed noticed at once. Real sockets: a
/// `RunningServer` (see HTTPServerTests) and a client on a loop of its own.
final class HTTPClientLazyAnswerTests: XCTestCase {
  private var clientThread: LoopThread!
  private var client: HTTPClient!
  /// Each completion, in order: the answer's text, or "failed: …"; with when it came.
  private let results = Results()

  /// The completions so far, shared with the client's loop.
  private final class Results: Sendable {
    private let list = Mutex<[(text: String, at: Date)]>([])
    func append(_ text: String) { list.withLock { $0.append((text, Date())) } }
    var all: [(text: String, at: Date)] { list.withLock { $0 } }
  }

  override func tearDown() {
    if let client { _ = clientThread.sync { client.shutdown() } }
    clientThread?.stop()
    client = nil
    clientThread = nil
  }

  private func startClient(port: Int, window: Double) throws {
    clientThread = try LoopThread()
    client = HTTPClient(loop: clientThread.loop, host: "127.0.0.1", port: port)
    client.lazyAnswerWindow = window
  }

  private func send(_ path: String) {
    let client = client!
    let results = results
    _ = clientThread.sync {
      client.send(path: path) { result in
        let text: String
        switch result {
        case .success(let response): text = response.text
        case .failure(let failure): text = "failed: \(failure)"
        }
        results.append(text)
      }
    }
  }

  private func waitFor(_ count: Int, timeout: Double = 10) {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while results.all.count < count && Date() < deadline {
      Thread.sleep(forTimeInterval: 0.005)
    }
  }

  private var texts: [String] { results.all.map(\.text) }

  /// With nothing sent after it, an answer is heard once the window has passed, not before:
  /// the client did not wake for it when it arrived.
  func testALoneAnswerIsHeardOnceTheWindowHasPassed() throws {
    let server = try RunningServer()
    defer { server.stop() }
    try startClient(port: server.port, window: 0.3)
    let sent = Date()
    send("/echo/1")
    waitFor(1)
    XCTAssertEqual(texts, ["GET /echo/1 0\n"])
    let heard = try XCTUnwrap(results.all.first?.at)
    XCTAssertGreaterThanOrEqual(heard.timeIntervalSince(sent), 0.25, "heard before the window")
    XCTAssertLessThan(heard.timeIntervalSince(sent), 5)
  }

  /// The next request collects the answer before it goes out, long before the window ends.
  func testTheNextRequestCollectsTheAnswerBeforeIt() throws {
    let server = try RunningServer()
    defer { server.stop() }
    try startClient(port: server.port, window: 60)
    send("/echo/1")
    Thread.sleep(forTimeInterval: 0.2)  // the answer is in, unread
    XCTAssertEqual(texts, [])
    send("/echo/2")
    XCTAssertEqual(texts, ["GET /echo/1 0\n"], "read when the next request was sent")
    Thread.sleep(forTimeInterval: 0.2)  // (sent at once, its answer would still be on its way)
    send("/echo/3")
    XCTAssertEqual(texts, ["GET /echo/1 0\n", "GET /echo/2 0\n"])
    XCTAssertEqual(server.onLoop { server.handler.parked.count }, 0)
  }

  /// Requests sent while the answer before is still being computed wait for it awake, and all
  /// are answered in order.
  func testRequestsQueuedBehindASlowAnswerAreAllAnswered() throws {
    let server = try RunningServer()
    defer { server.stop() }
    try startClient(port: server.port, window: 60)
    send("/park")
    send("/echo/2")
    send("/echo/3")
    Thread.sleep(forTimeInterval: 0.1)
    XCTAssertEqual(texts, [])
    server.onLoop { server.handler.release() }
    waitFor(2, timeout: 5)
    XCTAssertEqual(
      texts, ["released\n", "GET /echo/2 0\n"], "awake for each queued request's answer")
  }

  /// A server that goes away after answering: its close is noticed at once (not at the next
  /// request), and the next request reaches the server that took its place.
  func testAClosedConnectionIsNoticedAndTheNextRequestReconnects() throws {
    var first: RunningServer? = try RunningServer()
    let port = first!.port
    try startClient(port: port, window: 60)
    send("/echo/1")
    Thread.sleep(forTimeInterval: 0.2)  // answered, and not read
    XCTAssertEqual(texts, [])
    first!.stop()
    first = nil
    waitFor(1, timeout: 5)
    XCTAssertEqual(texts, ["GET /echo/1 0\n"], "the answer read when the connection closed")
    var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: port)
    configuration.idleTimeout = 5
    let second = try RunningServer(configuration: configuration)
    defer { second.stop() }
    send("/echo/2")
    send("/echo/3")
    waitFor(2, timeout: 10)
    XCTAssertEqual(texts, ["GET /echo/1 0\n", "GET /echo/2 0\n"])
  }
}
