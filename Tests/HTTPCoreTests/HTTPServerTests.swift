import Foundation
import Glibc
import Synchronization
import TestSupport
import XCTest

@testable import HTTPCore

/// Answers `/echo…` at once with the path, parks `/park` until `release()`, answers `/keep` at
/// once but keeps its responder, `/fields` with the request's header fields, one per line,
/// `/nocontent` with a 204 given a body (which must not go out), and counts requests.
final class TestHandler: HTTPHandler, @unchecked Sendable {
  var parked: [HTTPResponder] = []
  /// The responders of `/keep`, kept after they answered.
  var kept: [HTTPResponder] = []
  var cancelled = 0
  /// How many requests it was handed.
  var handled = 0
  /// Fixed answers by path.
  var bodies: [String: String] = [:]

  func handle(_ request: HTTPRequest, responder: HTTPResponder) {
    handled += 1
    if let body = bodies[request.path] {
      responder.respond(.text(.ok, body))
      return
    }
    if request.path == "/keep" {
      kept.append(responder)
      responder.respond(.text(.ok, "kept"))
      return
    }
    if request.path == "/fields" {
      let lines = request.headers.map { "\($0.name): \($0.value)" }
      responder.respond(.text(.ok, lines.joined(separator: "\n")))
      return
    }
    if request.path == "/nocontent" {
      responder.respond(HTTPResponse(status: .noContent, body: Array("not sent".utf8)))
      return
    }
    if request.path == "/park" {
      parked.append(responder)
      responder.onCancel = { [unowned self] in self.cancelled += 1 }
      return
    }
    responder.respond(.text(.ok, "\(request.method) \(request.target) \(request.body.count)"))
  }

  func release() {
    for responder in parked { responder.respond(.text(.ok, "released")) }
    parked.removeAll()
  }
}

/// An event loop with one server, running on its own thread for the length of a test.
final class RunningServer: @unchecked Sendable {
  private let thread: LoopThread
  let server: HTTPServer
  let handler = TestHandler()

  init(configuration: HTTPServer.Configuration = HTTPServer.Configuration(host: "127.0.0.1")) throws
  {
    thread = try LoopThread(start: false)
    server = try HTTPServer(loop: thread.loop, configuration: configuration, handler: handler)
    try server.start()
    thread.start()
  }

  var loop: EventLoop { thread.loop }
  var port: Int { server.port }

  /// Runs `body` on the loop and waits for it.
  func onLoop<T>(_ body: @escaping () -> T) -> T { thread.sync(body)! }

  func stop() {
    onLoop {
      self.server.stopAccepting()
      self.server.closeAllConnections()
    }
    thread.stop()
  }
}

final class HTTPServerTests: XCTestCase {
  private var running: RunningServer!

  override func setUpWithError() throws {
    var configuration = HTTPServer.Configuration(host: "127.0.0.1")
    configuration.requestTimeout = 0.4
    configuration.idleTimeout = 0.6
    running = try RunningServer(configuration: configuration)
  }

  override func tearDown() {
    running.stop()
  }

  func testKeepAliveServesManyRequestsOnOneConnection() throws {
    let client = try TestClient(port: running.port)
    for index in 0..<20 {
      let response = try client.get("/echo/\(index)")
      XCTAssertEqual(response.statusCode, 200)
      XCTAssertEqual(response.text, "GET /echo/\(index) 0\n")
    }
    XCTAssertEqual(running.onLoop { self.running.server.connectionCount }, 1)
  }

  func testPipelinedRequestsAreAnsweredInOrder() throws {
    let client = try TestClient(port: running.port)
    try client.send((1...10).map { "GET /echo/\($0) HTTP/1.1\r\nHost: a\r\n\r\n" }.joined())
    for index in 1...10 {
      XCTAssertEqual(try client.readResponse().text, "GET /echo/\(index) 0\n")
    }
  }

  func testAParkedRequestHoldsBackThePipelinedOnesBehindIt() throws {
    let client = try TestClient(port: running.port, timeout: 2)
    try client.send(
      "GET /park HTTP/1.1\r\nHost: a\r\n\r\nGET /echo/after HTTP/1.1\r\nHost: a\r\n\r\n")
    Thread.sleep(forTimeInterval: 0.2)
    XCTAssertEqual(running.onLoop { self.running.handler.parked.count }, 1)
    running.onLoop { self.running.handler.release() }
    XCTAssertEqual(try client.readResponse().text, "released\n")
    XCTAssertEqual(try client.readResponse().text, "GET /echo/after 0\n")
  }

  /// A responder a handler kept after its answer is spent: it cannot answer the connection's
  /// next request, though that request's responder reuses the state behind it.
  func testAResponderKeptAfterItsAnswerCannotAnswerTheNextRequest() throws {
    let client = try TestClient(port: running.port, timeout: 2)
    XCTAssertEqual(try client.get("/keep").text, "kept\n")
    try client.send("GET /park HTTP/1.1\r\nHost: a\r\n\r\n")
    Thread.sleep(forTimeInterval: 0.2)
    XCTAssertEqual(running.onLoop { self.running.handler.parked.count }, 1)
    let delivered = running.onLoop { self.running.handler.kept[0].respond(.text(.ok, "stale")) }
    XCTAssertFalse(delivered)
    running.onLoop { self.running.handler.release() }
    XCTAssertEqual(try client.readResponse().text, "released\n")
  }

  func testAClientThatDisconnectsWhileParkedIsCancelled() throws {
    let client = try TestClient(port: running.port)
    try client.send("GET /park HTTP/1.1\r\nHost: a\r\n\r\n")
    Thread.sleep(forTimeInterval: 0.1)
    client.close()
    let deadline = Date(timeIntervalSinceNow: 5)
    while running.onLoop({ self.running.handler.cancelled }) == 0 && Date() < deadline {
      Thread.sleep(forTimeInterval: 0.01)
    }
    XCTAssertEqual(running.onLoop { self.running.handler.cancelled }, 1)
    XCTAssertEqual(running.onLoop { self.running.server.connectionCount }, 0)
  }

  /// A server (idle timeout 30 s, so only the client's FIN can close the connection) and a
  /// client that has sent GET `paths`, pipelined, and shut its side: its requests and its FIN
  /// reach the server together (the loop is kept busy meanwhile), so a single event says both,
  /// and the read that drains the socket does not itself reach the end. The caller stops the
  /// server.
  private func sendAndShutAtOnce(_ paths: String...) throws -> (RunningServer, TestClient) {
    var configuration = HTTPServer.Configuration(host: "127.0.0.1")
    configuration.idleTimeout = 30
    let server = try RunningServer(configuration: configuration)
    do {
      let client = try TestClient(port: server.port, timeout: 3)
      server.loop.execute { Thread.sleep(forTimeInterval: 0.3) }
      try client.send(paths.map { "GET \($0) HTTP/1.1\r\nHost: a\r\n\r\n" }.joined())
      shutdown(client.fd, Int32(SHUT_WR))
      return (server, client)
    } catch {
      server.stop()
      throw error
    }
  }

  /// A client that sends its requests and shuts its side at once gets every answer, and then
  /// the connection closes: it will send nothing more.
  func testAClientThatSendsAndShutsItsSideAtOnceIsAnsweredThenClosed() throws {
    let (server, client) = try sendAndShutAtOnce("/echo/1", "/echo/2")
    defer { server.stop() }
    XCTAssertEqual(try client.readResponse().text, "GET /echo/1 0\n")
    XCTAssertEqual(try client.readResponse().text, "GET /echo/2 0\n")
    XCTAssertTrue(client.isClosedByPeer(), "still open after the answers")
    XCTAssertEqual(server.onLoop { server.server.connectionCount }, 0)
  }

  /// The same with a request parked behind an answered one: the parked one is cancelled (its
  /// client will not be there to read), the answer already given still goes out, then the
  /// connection closes.
  func testAnAnswerGivenBeforeAParkedRequestGoesOutWhenTheClientShutsItsSide() throws {
    let (server, client) = try sendAndShutAtOnce("/echo/1", "/park")
    defer { server.stop() }
    XCTAssertEqual(try client.readResponse().text, "GET /echo/1 0\n")
    XCTAssertTrue(client.isClosedByPeer(), "still open after the answer")
    XCTAssertEqual(server.onLoop { server.handler.cancelled }, 1)
    XCTAssertEqual(server.onLoop { server.handler.parked.count }, 1)
    XCTAssertEqual(server.onLoop { server.server.connectionCount }, 0)
  }

  func testBodiesAreRead() throws {
    let client = try TestClient(port: running.port)
    try client.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello")
    Thread.sleep(forTimeInterval: 0.05)
    try client.send(" world")
    XCTAssertEqual(try client.readResponse().text, "POST /echo 11\n")
  }

  /// curl sends `Expect: 100-continue` with a body over 1 KiB (or with -H) and waits a second
  /// for `100 Continue` before sending the body.
  func testARequestExpectingContinueIsToldToSendItsBody() throws {
    let client = try TestClient(port: running.port, timeout: 2)
    try client.send(
      "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n")
    let interim = try readRaw(client, 25)
    // Without it the server closes at its request timeout, and sending more would end the test
    // process (SIGPIPE).
    guard interim == "HTTP/1.1 100 Continue\r\n\r\n" else {
      return XCTFail("got \(interim.debugDescription) instead of 100 Continue")
    }
    try client.send("hel")
    Thread.sleep(forTimeInterval: 0.05)
    try client.send("lo")
    XCTAssertEqual(try client.readResponse().text, "POST /echo 5\n", "and only one 100")
    // A body sent with its head needs no 100; nor does HTTP/1.0, which does not know it.
    try client.send(
      "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
    XCTAssertEqual(try client.readResponse().text, "POST /echo 2\n")
    let old = try TestClient(port: running.port, timeout: 0.3)
    try old.send("POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    XCTAssertThrowsError(try readRaw(old, 1), "nothing before the body")
  }

  /// An expectation the server does not know is answered `417` at once (no `100 Continue`, no
  /// wait for the body), and the connection closes.
  func testAnUnknownExpectationGets417() throws {
    let client = try TestClient(port: running.port, timeout: 2)
    try client.send(
      "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x\r\nContent-Length: 5\r\n\r\n")
    let response = try client.readResponse()
    XCTAssertEqual(response.statusCode, 417, response.text)
    XCTAssertEqual(response.headers["Connection"], "close")
    XCTAssertTrue(client.isClosedByPeer())
  }

  /// Reads exactly `count` bytes as text, or throws at the client's read timeout.
  private func readRaw(_ client: TestClient, _ count: Int) throws -> String {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: count)
    while bytes.count < count {
      let read = chunk.withUnsafeMutableBytes {
        Glibc.read(client.fd, $0.baseAddress, count - bytes.count)
      }
      guard read > 0 else { throw TestFailure("read \(bytes.count) of \(count) bytes") }
      bytes += chunk[..<read]
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  func testMalformedRequestGets400AndTheConnectionCloses() throws {
    let client = try TestClient(port: running.port)
    try client.send("HELLO\r\n\r\n")
    let response = try client.readResponse()
    XCTAssertEqual(response.statusCode, 400)
    XCTAssertEqual(response.headers["Connection"], "close")
    XCTAssertTrue(client.isClosedByPeer())
  }

  func testSlowRequestGets408() throws {
    let client = try TestClient(port: running.port, timeout: 5)
    try client.send("GET /echo HTTP/1.1\r\nHo")
    let start = Date()
    // A slowloris trickle does not keep the request alive past the request timeout.
    for _ in 0..<3 {
      Thread.sleep(forTimeInterval: 0.15)
      try? client.send("x")
    }
    let response = try client.readResponse()
    XCTAssertEqual(response.statusCode, 408)
    XCTAssertLessThan(Date().timeIntervalSince(start), 3)
    // Meanwhile other clients are served normally.
    XCTAssertEqual(try TestClient(port: running.port).get("/echo").statusCode, 200)
  }

  func testIdleConnectionsAreClosed() throws {
    let client = try TestClient(port: running.port, timeout: 5)
    XCTAssertEqual(try client.get("/echo").statusCode, 200)
    let start = Date()
    XCTAssertTrue(client.isClosedByPeer())
    XCTAssertGreaterThan(Date().timeIntervalSince(start), 0.3)
  }

  /// The idle timeout counts from the connection's last activity, its answer included: a request
  /// that waited (parked) longer than the idle timeout leaves its connection open for the next
  /// one once answered. (Before, the connection was closed within one sweep of the answer, as
  /// idle since its request was read: a client reusing it lost its next request.)
  func testAConnectionAnsweredAfterALongWaitIsNotClosedAsIdle() throws {
    let client = try TestClient(port: running.port, timeout: 3)
    try client.send("GET /park HTTP/1.1\r\nHost: a\r\n\r\n")
    Thread.sleep(forTimeInterval: 1.0)  // longer than the idle timeout (0.6 s)
    running.onLoop { self.running.handler.release() }
    XCTAssertEqual(try client.readResponse().text, "released\n")
    Thread.sleep(forTimeInterval: 0.3)  // well within the idle timeout
    XCTAssertEqual(try client.get("/echo/again").text, "GET /echo/again 0\n")
  }

  func testHeadOmitsTheBody() throws {
    let client = try TestClient(port: running.port)
    let response = try client.get("/echo", method: "HEAD")
    XCTAssertEqual(response.headers["Content-Length"], "13")  // "HEAD /echo 0\n"
    XCTAssertTrue(response.body.isEmpty)
    XCTAssertEqual(try client.get("/echo").text, "GET /echo 0\n")
  }

  /// A 204 goes out with neither Content-Length nor a body (RFC 9110 §8.6, §15.3.5), even when
  /// the handler gave it one: the next answer on the connection is read whole.
  func testA204GoesOutWithoutContentLengthOrBody() throws {
    let client = try TestClient(port: running.port)
    try client.send(
      "GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\nGET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
    let noContent = try client.readResponse()
    XCTAssertEqual(noContent.statusCode, 204)
    XCTAssertNil(noContent.headers["Content-Length"])
    XCTAssertTrue(noContent.body.isEmpty)
    XCTAssertEqual(try client.readResponse().text, "GET /echo 0\n")
  }

  func testConnectionCloseIsHonoured() throws {
    let client = try TestClient(port: running.port)
    try client.send("GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    XCTAssertEqual(try client.readResponse().statusCode, 200)
    XCTAssertTrue(client.isClosedByPeer())
  }

  /// A server told to close when idle while a request is parked answers it with
  /// `Connection: close` (RFC 9112 §9.6), then closes: the client knows not to send another
  /// request on the connection.
  func testAnAnswerAfterCloseWhenIdleSaysTheConnectionCloses() throws {
    let client = try TestClient(port: running.port)
    try client.send("GET /park HTTP/1.1\r\nHost: a\r\n\r\n")
    Thread.sleep(forTimeInterval: 0.1)
    running.onLoop { self.running.server.closeWhenIdle() }
    running.onLoop { self.running.handler.release() }
    let response = try client.readResponse()
    XCTAssertEqual(response.text, "released\n")
    XCTAssertEqual(response.headers["Connection"], "close")
    XCTAssertTrue(client.isClosedByPeer())
  }

  /// An HTTP/1.0 client that asks to keep the connection is told it is kept: without the
  /// answer's `Connection: keep-alive` it takes the connection to close after the answer (ab -k
  /// then reads until the idle timeout closes it). Without the ask, the connection closes.
  func testAnHTTP10ClientThatAsksForKeepAliveIsToldItIsKept() throws {
    let client = try TestClient(port: running.port)
    for _ in 0..<2 {
      try client.send("GET /echo HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
      let response = try client.readResponse()
      XCTAssertEqual(response.text, "GET /echo 0\n")
      XCTAssertEqual(response.headers["Connection"], "keep-alive")
    }
    try client.send("GET /echo HTTP/1.0\r\n\r\n")
    XCTAssertEqual(try client.readResponse().headers["Connection"], "close")
    XCTAssertTrue(client.isClosedByPeer())
    // HTTP/1.1 keeps the connection without saying so.
    XCTAssertNil(try TestClient(port: running.port).get("/echo").headers["Connection"])
  }
}

final class HTTPClientTests: XCTestCase {
  /// The client keeps its connection, and when the server goes away and comes back on the same
  /// port, it reconnects and delivers the requests sent meanwhile.
  func testClientReconnectsWhenTheServerRestarts() throws {
    var first: RunningServer? = try RunningServer()
    let port = first!.port
    let loop = try EventLoop()
    let client = HTTPClient(loop: loop, host: "127.0.0.1", port: port)
    let results = Mutex<[String]>([])
    let clientThread = Thread { loop.run() }
    clientThread.start()
    defer { loop.stop() }

    func send(_ path: String) {
      loop.execute {
        client.send(path: path) { result in
          let text: String
          switch result {
          case .success(let response): text = response.text
          case .failure(let failure): text = "failed: \(failure)"
          }
          results.withLock { $0.append(text) }
        }
      }
    }
    func waitFor(_ count: Int) {
      let deadline = Date(timeIntervalSinceNow: 10)
      while results.withLock({ $0.count }) < count && Date() < deadline {
        Thread.sleep(forTimeInterval: 0.01)
      }
    }

    send("/echo/1")
    send("/echo/2")
    waitFor(2)
    XCTAssertEqual(results.withLock { $0 }, ["GET /echo/1 0\n", "GET /echo/2 0\n"])
    XCTAssertEqual(first!.onLoop { first!.server.connectionCount }, 1)

    first!.stop()
    first = nil
    send("/echo/3")  // sent while nothing listens: retried with back-off
    Thread.sleep(forTimeInterval: 0.3)
    var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: port)
    configuration.idleTimeout = 5
    let second = try RunningServer(configuration: configuration)
    defer { second.stop() }
    waitFor(3)
    XCTAssertEqual(results.withLock { $0 }.last, "GET /echo/3 0\n")
  }

  /// A server of one connection at a time (`connections` in turn), on a thread of its own: for
  /// each request it reads it writes the next of `answers` as they are, then closes after
  /// `linger` seconds. Returns its port.
  private func scriptedServer(_ answers: [String], linger: Double = 0, connections: Int = 1)
    throws -> Int
  {
    let listener = try Socket.listen(host: "127.0.0.1", port: 0)
    let port = Socket.localPort(listener)
    Thread.detachNewThread {
      defer { close(listener) }
      for _ in 0..<connections {
        var pollfd = Glibc.pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&pollfd, 1, 5000) == 1 else { return }
        let fd = accept(listener, nil, nil)
        var buffer = [UInt8](repeating: 0, count: 1024)
        for answer in answers {
          guard read(fd, &buffer, buffer.count) > 0 else { break }
          _ = write(fd, answer, answer.utf8.count)
        }
        if linger > 0 { Thread.sleep(forTimeInterval: linger) }
        close(fd)
      }
    }
    return port
  }

  /// What an `HTTPClient` got for `requests` (method and path), sent at once to `port`: each
  /// response as `describe` puts it, or why there was none.
  private func outcomes(
    of requests: [(method: String, path: String)], port: Int, timeout: Double = 5,
    fields: HTTPHeaders = HTTPHeaders(),
    describe: @escaping (HTTPClientResponse) -> String = { "\($0.statusCode) \($0.text)" }
  ) throws -> [String] {
    let loop = try EventLoop()
    let client = HTTPClient(loop: loop, host: "127.0.0.1", port: port, fields: fields)
    client.retryWindow = 0
    client.requestTimeout = timeout
    let outcomes = Mutex<[String]>([])
    loop.execute {
      for request in requests {
        client.send(method: request.method, path: request.path) { result in
          let count = outcomes.withLock {
            switch result {
            case .success(let response): $0.append(describe(response))
            case .failure(let failure): $0.append("failed: \(failure)")
            }
            return $0.count
          }
          if count == requests.count { loop.stop() }
        }
      }
    }
    loop.run()
    client.shutdown()
    return outcomes.withLock { $0 }
  }

  /// A client's own fields go with every request, after Host.
  func testTheClientsFieldsGoWithEveryRequest() throws {
    let server = try RunningServer()
    defer { server.stop() }
    let fields = HTTPHeaders([("Prefer", "return=minimal"), ("X-Reporter", "5001")])
    let answers = try outcomes(
      of: [("GET", "/fields"), ("GET", "/fields")], port: server.port, fields: fields)
    let expected =
      "200 Host: 127.0.0.1:\(server.port)\nPrefer: return=minimal\nX-Reporter: 5001\n"
    XCTAssertEqual(answers, [expected, expected])
  }

  /// An interim answer (`100 Continue`, `103 Early Hints`) is not the answer: the client skips
  /// it (RFC 9110 §15.2), or every later request would be matched to its predecessor's answer
  /// (a report refused with 503 taken for delivered, with the 200 of the one before).
  func testInterimAnswersAreSkipped() throws {
    let port = try scriptedServer(
      [
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
          + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 6\r\n\r\nsecond",
      ], linger: 0.5)
    XCTAssertEqual(
      try outcomes(of: [("GET", "/1"), ("GET", "/2")], port: port), ["200 first", "503 second"])
  }

  /// The blocking client (the load tester's) skips interim answers too: the load tester counted
  /// a server's `103 Early Hints` as the visit's answer, and the next visit got this one's.
  func testTheBlockingClientSkipsInterimAnswers() throws {
    let port = try scriptedServer(
      [
        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
          + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
        "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond",
      ], linger: 0.5)
    let client = try BlockingHTTPClient(port: port, timeout: 5)
    let first = try client.get("/1")
    XCTAssertEqual("\(first.statusCode) \(first.text)", "200 first")
    let second = try client.get("/2")
    XCTAssertEqual("\(second.statusCode) \(second.text)", "200 second")
  }

  /// The answer to HEAD has no body, whatever its Content-Length says (RFC 9110 §9.3.2): the
  /// client does not wait for one, and the next answer is matched to the next request.
  func testTheAnswerToHeadHasNoBody() throws {
    let port = try scriptedServer(
      [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
      ], linger: 0.5)
    let answers = try outcomes(of: [("HEAD", "/"), ("GET", "/")], port: port, timeout: 2) {
      "\($0.statusCode) \($0.headers["Content-Length"] ?? "") \($0.text)"
    }
    XCTAssertEqual(answers, ["200 5 ", "200 5 hello"])
  }

  /// An answer without Content-Length has the body the server sends before it closes the
  /// connection (RFC 9112 §6.3), even when the close comes later than the body.
  func testAnAnswerWithoutLengthEndsWhenTheServerCloses() throws {
    let port = try scriptedServer(["HTTP/1.0 200 OK\r\n\r\nhello"], linger: 0.2)
    let loop = try EventLoop()
    let client = HTTPClient(loop: loop, host: "127.0.0.1", port: port)
    client.retryWindow = 0
    client.requestTimeout = 5
    let outcome = Mutex<String?>(nil)
    loop.execute {
      client.send(path: "/") { result in
        switch result {
        case .success(let response): outcome.withLock { $0 = response.text }
        case .failure(let failure): outcome.withLock { $0 = "failed: \(failure)" }
        }
        loop.stop()
      }
    }
    loop.run()
    client.shutdown()
    XCTAssertEqual(outcome.withLock { $0 }, "hello")
  }

  /// An HTTP/1.0 answer without `Connection: keep-alive` ends its connection (RFC 9112 §9.3),
  /// even when the server closes it a moment later: the next request goes on a new one.
  func testAnHTTP10AnswerEndsTheConnection() throws {
    let port = try scriptedServer(
      ["HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"], linger: 0.3, connections: 2)
    XCTAssertEqual(
      try outcomes(of: [("GET", "/1"), ("GET", "/2")], port: port), ["200 hi", "200 hi"])
  }

  /// A server that answers with `Connection: close` and closes at once: the response and the
  /// end of the stream arrive together, and the response must still be delivered.
  func testResponseFollowedByCloseIsDelivered() throws {
    let port = try scriptedServer([
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    ])
    let loop = try EventLoop()
    let client = HTTPClient(loop: loop, host: "127.0.0.1", port: port)
    client.retryWindow = 0
    client.requestTimeout = 5
    let outcome = Mutex<String?>(nil)
    loop.execute {
      client.send(path: "/health") { result in
        switch result {
        case .success(let response): outcome.withLock { $0 = response.text }
        case .failure(let failure): outcome.withLock { $0 = "failed: \(failure)" }
        }
        loop.stop()
      }
    }
    loop.run()
    XCTAssertEqual(outcome.withLock { $0 }, "hello")
  }

  func testRequestTimeoutFailsARequestNobodyAnswers() throws {
    let listener = try Socket.listen(host: "127.0.0.1", port: 0)  // accepts, never answers
    defer { close(listener) }
    let start = Date()
    let failure = try failureOfOneRequest(port: Socket.localPort(listener)) {
      $0.requestTimeout = 0.3
    }
    XCTAssertTrue(failure?.contains("within 0.3 s") ?? false, "\(String(describing: failure))")
    XCTAssertLessThan(Date().timeIntervalSince(start), 3)
  }

  /// Sends one request with a client set up by `configure`; returns its failure, if any.
  private func failureOfOneRequest(port: Int, configure: (HTTPClient) -> Void) throws -> String? {
    let loop = try EventLoop()
    let client = HTTPClient(loop: loop, host: "127.0.0.1", port: port)
    configure(client)
    let outcome = Mutex<String?>(nil)
    loop.execute {
      client.send(path: "/x") { result in
        if case .failure(let failure) = result { outcome.withLock { $0 = "\(failure)" } }
        loop.stop()
      }
    }
    loop.run()
    return outcome.withLock { $0 }
  }

  func testRequestsFailAfterTheRetryWindow() throws {
    let start = Date()
    let failure = try failureOfOneRequest(port: try freePort()) { $0.retryWindow = 0.3 }
    XCTAssertTrue(failure?.hasPrefix("unreachable") ?? false, "\(String(describing: failure))")
    XCTAssertLessThan(Date().timeIntervalSince(start), 5)
  }
}
