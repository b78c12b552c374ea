import Foundation
import Glibc
import TestSupport
import XCTest

@testable import HTTPCore

/// The HTTP core against hostile but cheap clients: bounded input, no bodies where none belong,
/// parked requests that read nothing, slow readers, and too many connections.
final class AbuseTests: XCTestCase {
  private var running: RunningServer?

  override func tearDown() {
    running?.stop()
    running = nil
  }

  private func start(_ change: (inout HTTPServer.Configuration) -> Void = { _ in }) throws
    -> RunningServer
  {
    var configuration = HTTPServer.Configuration(host: "127.0.0.1")
    change(&configuration)
    let server = try RunningServer(configuration: configuration)
    running = server
    return server
  }

  func testEmptyLinesBeforeARequestCountTowardTheHeadLimit() {
    var limits = HTTPLimits()
    limits.maxHeadBytes = 128
    var parser = HTTPRequestParser(limits: limits)
    var input = Array(repeating: UInt8(ascii: "\n"), count: 40)
    XCTAssertEqual(parse(&parser, input), "needMore")
    input += Array("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
    XCTAssertEqual(parse(&parser, input), "complete GET / 71")
    var flooded = HTTPRequestParser(limits: limits)
    var flood: [UInt8] = []
    var result = ""
    for _ in 0..<100 where !result.hasPrefix("failed") {
      flood += Array("\r\n".utf8)
      result = parse(&flooded, flood)
    }
    XCTAssertEqual(result, "failed 400 more than 128 bytes of empty lines")
    XCTAssertLessThanOrEqual(flood.count, 130, "refused as soon as the limit passed")
  }

  private func parse(_ parser: inout HTTPRequestParser, _ bytes: [UInt8]) -> String {
    switch bytes.withUnsafeBytes({ parser.parse($0) }) {
    case .needMore: return "needMore"
    case .complete(let request, let consumed):
      return "complete \(request.method) \(request.target) \(consumed)"
    case .failed(let error): return "failed \(error.status.code) \(error.message)"
    }
  }

  func testARouteThatTakesNoBodyRefusesOne() throws {
    let server = try start { $0.bodyLimit = { _, path in path == "/upload" ? 16 : 0 } }
    let client = try TestClient(port: server.port)
    try client.send("GET /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    let refused = try client.readResponse()
    XCTAssertEqual(refused.statusCode, 413)
    XCTAssertEqual(refused.text, "GET /echo takes no body\n")
    XCTAssertTrue(client.isClosedByPeer())
    let upload = try TestClient(port: server.port)
    try upload.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    XCTAssertEqual(try upload.readResponse().text, "POST /upload 5\n")
    try upload.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n")
    XCTAssertEqual(try upload.readResponse().statusCode, 413)
  }

  /// A parked request reads nothing more: what the client pipelines stays in the kernel, and
  /// is served, in order, once the parked one is answered.
  func testAParkedRequestReadsNothingUntilItIsAnswered() throws {
    let server = try start()
    let client = try TestClient(port: server.port, timeout: 5)
    try client.send("GET /park HTTP/1.1\r\nHost: a\r\n\r\n")
    Thread.sleep(forTimeInterval: 0.1)
    // More than a parked connection was ever allowed to buffer (head + body limits).
    let junk = String(repeating: "GET /echo HTTP/1.1\r\nHost: a\r\n\r\n", count: 40_000)
    let writer = Thread {
      try? client.send(junk)
    }
    writer.start()
    Thread.sleep(forTimeInterval: 0.3)
    XCTAssertEqual(server.onLoop { server.handler.parked.count }, 1)
    XCTAssertEqual(server.onLoop { server.server.connectionCount }, 1, "not closed for it")
    server.onLoop { server.handler.release() }
    XCTAssertEqual(try client.readResponse().text, "released\n")
    for _ in 0..<5 { XCTAssertEqual(try client.readResponse().text, "GET /echo 0\n") }
  }

  /// The write timeout counts from the last progress: a slow but steady reader of a large
  /// answer is not cut off.
  func testASlowSteadyReaderIsNotCutOff() throws {
    let server = try start { $0.writeTimeout = 0.3 }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(server.port).bigEndian)
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    XCTAssertEqual(connected, 0)
    let big = String(repeating: "x", count: 2_000_000)
    server.onLoop { server.handler.bodies["/big"] = big }
    let request = Array("GET /big HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    var received = 0
    var buffer = [UInt8](repeating: 0, count: 8192)
    let started = Date()
    while received < big.count && Date().timeIntervalSince(started) < 20 {
      let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if count <= 0 { break }
      received += count
      Thread.sleep(forTimeInterval: 0.003)  // steady, but slower than the server writes
    }
    XCTAssertGreaterThan(
      Date().timeIntervalSince(started), 0.6, "the read took longer than the timeout")
    XCTAssertGreaterThan(received, big.count, "the whole answer arrived")
  }

  /// A client that pipelines requests for large answers and reads none of them is served no
  /// more while its answers wait to be written (they would pile up in memory until the write
  /// timeout); once it reads, the rest are served, in order.
  func testAClientThatReadsNoAnswersIsServedNoMoreUntilItReads() throws {
    let server = try start()
    let big = String(repeating: "x", count: 1 << 20)
    server.onLoop { server.handler.bodies["/big"] = big }
    let client = try TestClient(port: server.port, timeout: 5)
    try client.send(String(repeating: "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", count: 64))
    Thread.sleep(forTimeInterval: 0.3)
    // The kernel's buffers hold a few answers; the server holds about one more.
    XCTAssertLessThan(server.onLoop { server.handler.handled }, 16)
    for _ in 0..<64 { XCTAssertEqual(try client.readResponse().body.count, big.utf8.count + 1) }
    XCTAssertEqual(server.onLoop { server.handler.handled }, 64)
    XCTAssertEqual(try client.get("/echo").text, "GET /echo 0\n")
    // Held back, they are still served when the client shuts its side after sending them.
    let leaving = try TestClient(port: server.port, timeout: 5)
    try leaving.send(String(repeating: "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", count: 64))
    shutdown(leaving.fd, Int32(SHUT_WR))
    Thread.sleep(forTimeInterval: 0.3)
    for _ in 0..<64 { XCTAssertEqual(try leaving.readResponse().body.count, big.utf8.count + 1) }
    XCTAssertTrue(leaving.isClosedByPeer(), "still open after the answers")
  }

  func testConnectionsBeyondTheLimitGet503AndClose() throws {
    let server = try start { $0.maxConnections = 2 }
    let first = try TestClient(port: server.port)
    let second = try TestClient(port: server.port)
    XCTAssertEqual(try first.get("/echo").statusCode, 200)
    XCTAssertEqual(try second.get("/echo").statusCode, 200)
    let third = try TestClient(port: server.port)
    let refused = try third.readResponse()
    XCTAssertEqual(refused.statusCode, 503)
    XCTAssertEqual(refused.headers["Retry-After"], "1")
    XCTAssertTrue(third.isClosedByPeer())
    first.close()
    Thread.sleep(forTimeInterval: 0.1)
    XCTAssertEqual(try TestClient(port: server.port).get("/echo").statusCode, 200)
    XCTAssertEqual(server.onLoop { server.server.refusedConnections }, 1)
  }
}
