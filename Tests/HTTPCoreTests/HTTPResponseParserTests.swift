import XCTest

@testable import HTTPCore

final class HTTPResponseParserTests: XCTestCase {
  /// What a parse gave, in a form tests can compare.
  private enum Outcome: Equatable {
    case needMore
    case complete(Parsed, consumed: Int)
    case failed(HTTPParseError)
  }

  private struct Parsed: Equatable {
    var statusCode: Int
    var reason: String
    var headers: [String]
    var body: String

    init(_ response: HTTPClientResponse) {
      statusCode = response.statusCode
      reason = response.reason
      headers = response.headers.fields.map { "\($0.name): \($0.value)" }
      body = response.text
    }

    init(_ statusCode: Int, _ reason: String, headers: [String] = [], body: String = "") {
      self.statusCode = statusCode
      self.reason = reason
      self.headers = headers
      self.body = body
    }
  }

  private func outcome(_ result: ParseResult<HTTPClientResponse>) -> Outcome {
    switch result {
    case .needMore: return .needMore
    case .complete(let response, let consumed):
      return .complete(Parsed(response), consumed: consumed)
    case .failed(let error): return .failed(error)
    }
  }

  private func parse(
    _ bytes: [UInt8], expectBody: Bool = true, atEnd: Bool = false,
    with parser: inout HTTPResponseParser
  )
    -> Outcome
  {
    outcome(bytes.withUnsafeBytes { parser.parse($0, expectBody: expectBody, atEnd: atEnd) })
  }

  private func parse(
    _ text: String, expectBody: Bool = true, atEnd: Bool = false,
    limits: HTTPLimits = HTTPLimits()
  )
    -> Outcome
  {
    var parser = HTTPResponseParser(limits: limits)
    return parse(Array(text.utf8), expectBody: expectBody, atEnd: atEnd, with: &parser)
  }

  private func failure(_ outcome: Outcome, file: StaticString = #filePath, line: UInt = #line)
    -> HTTPParseError?
  {
    guard case .failed(let error) = outcome else {
      XCTFail("expected .failed, got \(outcome)", file: file, line: line)
      return nil
    }
    return error
  }

  private let redirect =
    "HTTP/1.1 302 Found\r\nLocation: http://lb:5001/?n=12\r\nContent-Length: 5\r\n\r\nhello"

  private var redirectParsed: Parsed {
    Parsed(
      302, "Found", headers: ["Location: http://lb:5001/?n=12", "Content-Length: 5"], body: "hello")
  }

  // MARK: - Complete responses

  func testCompleteResponseWithContentLength() {
    XCTAssertEqual(parse(redirect), .complete(redirectParsed, consumed: redirect.utf8.count))

    var parser = HTTPResponseParser()
    let bytes = Array(redirect.utf8)
    guard case .complete(let response, _) = bytes.withUnsafeBytes({ parser.parse($0) }) else {
      return XCTFail("expected a complete response")
    }
    XCTAssertEqual(response.headers["location"], "http://lb:5001/?n=12")
    XCTAssertEqual(response.headers["CONTENT-LENGTH"], "5")
    XCTAssertEqual(response.body, Array("hello".utf8))
  }

  func testHeaderValuesAreTrimmedAndRepeatedFieldsKept() {
    let text =
      "HTTP/1.1 200 OK\r\nX-A:   spaced out \t\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n"
      + "Content-Length: 0\r\n\r\n"
    guard case .complete(let parsed, _) = parse(text) else { return XCTFail("not complete") }
    XCTAssertEqual(
      parsed.headers,
      ["X-A: spaced out", "Set-Cookie: a=1", "set-cookie: b=2", "Content-Length: 0"])
  }

  func testReasonPhrases() {
    XCTAssertEqual(
      parse("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"),
      .complete(Parsed(503, "Service Unavailable", headers: ["Content-Length: 0"]), consumed: 55))
    // No reason phrase at all, and HTTP/1.0 (no length either: the server closed after it).
    XCTAssertEqual(
      parse("HTTP/1.0 200\r\n\r\n", atEnd: true), .complete(Parsed(200, ""), consumed: 16))
  }

  func testBareLineFeedsAreAccepted() {
    let text = "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi"
    XCTAssertEqual(
      parse(text),
      .complete(Parsed(200, "OK", headers: ["Content-Length: 2"], body: "hi"), consumed: 37))
  }

  /// Without Content-Length (or Transfer-Encoding) the body is what comes before the server
  /// closes the connection (RFC 9112 §6.3): not empty, and not the start of the next answer.
  func testWithoutContentLengthTheBodyRunsToTheClose() {
    let text = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"
    XCTAssertEqual(parse(text + "more"), .needMore)
    XCTAssertEqual(
      parse(text + "more", atEnd: true),
      .complete(Parsed(200, "OK", headers: ["Server: x"], body: "more"), consumed: 34))
    XCTAssertEqual(
      parse(text, atEnd: true),
      .complete(Parsed(200, "OK", headers: ["Server: x"]), consumed: text.utf8.count))
    // Answers that have no body end with their head.
    for (head, expectBody) in [
      ("HTTP/1.1 204 No Content\r\n\r\n", true), ("HTTP/1.1 304 Not Modified\r\n\r\n", true),
      ("HTTP/1.1 200 OK\r\n\r\n", false),
    ] {
      guard case .complete(_, let consumed) = parse(head + "x", expectBody: expectBody) else {
        return XCTFail(head.debugDescription)
      }
      XCTAssertEqual(consumed, head.utf8.count, head.debugDescription)
    }
    // The body limit holds before the close.
    var parser = HTTPResponseParser()
    let long = Array(text.utf8) + [UInt8](repeating: UInt8(ascii: "b"), count: (64 << 20) + 1)
    XCTAssertEqual(failure(parse(long, with: &parser))?.status, .contentTooLarge)
  }

  func testBytesAfterTheBodyAreNotConsumed() {
    XCTAssertEqual(
      parse(redirect + "HTTP/1.1 2"), .complete(redirectParsed, consumed: redirect.utf8.count))
  }

  func testBinaryBody() {
    var bytes = Array("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n".utf8)
    let headLength = bytes.count
    bytes += [0x00, 0xFF, 0x0D, 0x0A]
    var parser = HTTPResponseParser()
    guard case .complete(let response, let consumed) = bytes.withUnsafeBytes({ parser.parse($0) })
    else { return XCTFail("not complete") }
    XCTAssertEqual(response.body, [0x00, 0xFF, 0x0D, 0x0A])
    XCTAssertEqual(consumed, headLength + 4)
  }

  // MARK: - Partial input

  func testEmptyInputNeedsMore() {
    XCTAssertEqual(parse(""), .needMore)
  }

  /// Every proper prefix needs more, whether given to a fresh parser or to one that already saw
  /// the shorter prefixes; the whole gives the same response.
  func testSplitAtEveryPointGivesTheSameResponse() {
    for text in [
      redirect, "HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", "HTTP/1.0 204 No Content\r\n\r\n",
    ] {
      let bytes = Array(text.utf8)
      let expected = parse(text)
      guard case .complete(_, let consumed) = expected, consumed == bytes.count else {
        return XCTFail("\(text.debugDescription) does not parse whole: \(expected)")
      }
      var growing = HTTPResponseParser()
      for split in 0..<bytes.count {
        var fresh = HTTPResponseParser()
        XCTAssertEqual(
          parse(Array(bytes[..<split]), with: &fresh), .needMore, "fresh, split \(split)")
        XCTAssertEqual(parse(bytes, with: &fresh), expected, "fresh, split \(split)")
        XCTAssertEqual(
          parse(Array(bytes[..<split]), with: &growing), .needMore, "growing, \(split) bytes")
      }
      XCTAssertEqual(parse(bytes, with: &growing), expected, "growing, all bytes")
    }
  }

  func testHeadCompleteButBodyShortNeedsMore() {
    let text = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"
    XCTAssertEqual(parse(text), .needMore)
    XCTAssertEqual(
      parse(text + "67890"),
      .complete(
        Parsed(200, "OK", headers: ["Content-Length: 10"], body: "1234567890"),
        consumed: text.utf8.count + 5))
  }

  // MARK: - Pipelining

  func testTwoPipelinedResponses() {
    let second = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    var buffer = Array((redirect + second).utf8)
    var parser = HTTPResponseParser()

    XCTAssertEqual(
      parse(buffer, with: &parser), .complete(redirectParsed, consumed: redirect.utf8.count))
    buffer.removeFirst(redirect.utf8.count)
    XCTAssertEqual(
      parse(buffer, with: &parser),
      .complete(
        Parsed(200, "OK", headers: ["Content-Length: 3"], body: "abc"), consumed: second.utf8.count)
    )
    buffer.removeFirst(second.utf8.count)
    XCTAssertEqual(parse(buffer, with: &parser), .needMore)
  }

  func testPipelinedResponsesArrivingByteByByte() {
    let texts = [
      redirect, "HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 404 Not Found\nContent-Length: 1\n\nx",
    ]
    let all = Array(texts.joined().utf8)
    var parser = HTTPResponseParser()
    var buffer: [UInt8] = []
    var responses: [Parsed] = []
    for byte in all {
      buffer.append(byte)
      switch parse(buffer, with: &parser) {
      case .needMore: continue
      case .complete(let parsed, let consumed):
        responses.append(parsed)
        buffer.removeFirst(consumed)
      case .failed(let error): return XCTFail("failed: \(error)")
      }
    }
    XCTAssertEqual(buffer, [])
    XCTAssertEqual(
      responses,
      [
        redirectParsed, Parsed(204, "No Content"),
        Parsed(404, "Not Found", headers: ["Content-Length: 1"], body: "x"),
      ])
  }

  // MARK: - Responses without a body

  func testHeadResponseIgnoresContentLength() {
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    let expected = Outcome.complete(
      Parsed(200, "OK", headers: ["Content-Length: 1234"]), consumed: head.utf8.count)
    XCTAssertEqual(parse(head, expectBody: false), expected)
    // What follows is the next response, not a body.
    XCTAssertEqual(parse(head + "HTTP/1.1 200 OK\r\n", expectBody: false), expected)
    // The same bytes as an answer to GET wait for the 1234 bytes.
    XCTAssertEqual(parse(head), .needMore)
  }

  func testHeadResponseSplitAtEveryPoint() {
    let bytes = Array("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n".utf8)
    for split in 0..<bytes.count {
      var parser = HTTPResponseParser()
      XCTAssertEqual(parse(Array(bytes[..<split]), expectBody: false, with: &parser), .needMore)
      guard
        case .complete(let parsed, let consumed) = parse(bytes, expectBody: false, with: &parser)
      else { return XCTFail("split \(split): not complete") }
      XCTAssertEqual(consumed, bytes.count)
      XCTAssertEqual(parsed.body, "")
    }
  }

  func testStatusesThatNeverHaveABody() {
    for status in ["100 Continue", "101 Switching Protocols", "204 No Content", "304 Not Modified"]
    {
      let head = "HTTP/1.1 \(status)\r\nContent-Length: 10\r\n\r\n"
      guard case .complete(let parsed, let consumed) = parse(head + "0123456789") else {
        XCTFail("\(status): not complete")
        continue
      }
      XCTAssertEqual(consumed, head.utf8.count, status)
      XCTAssertEqual(parsed.body, "", status)
    }
    // 205 and other 2xx do have one.
    XCTAssertEqual(parse("HTTP/1.1 205 Reset Content\r\nContent-Length: 1\r\n\r\n"), .needMore)
  }

  // MARK: - Transfer-Encoding

  func testChunkedResponsesAreNotImplemented() {
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    XCTAssertEqual(failure(parse(head))?.status, .notImplemented)
    // Without a body to read, the encoding does not matter.
    guard case .complete = parse(head, expectBody: false) else {
      return XCTFail("HEAD answer with Transfer-Encoding should complete")
    }
    guard case .complete = parse("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n")
    else { return XCTFail("204 with Transfer-Encoding should complete") }
  }

  // MARK: - Malformed status lines

  func testMalformedStatusLinesFail() {
    let cases: [(line: String, status: HTTPStatus, message: String)] = [
      ("HTTP/1.1 20", .badRequest, "malformed status line"),
      ("HTTP/1.1", .badRequest, "malformed status line"),
      ("HTTP/1.1-200 OK", .badRequest, "malformed status line"),
      ("garbage that is long enough", .badRequest, "malformed status line"),
      ("HTTP/1.1 abc OK", .badRequest, "malformed status code"),
      ("HTTP/1.1 2x0 OK", .badRequest, "malformed status code"),
      ("HTTP/1.1 099 Too Low", .badRequest, "malformed status code"),
      ("HTTP/1.1 600 Too High", .badRequest, "malformed status code"),
      ("HTTP/1.1 200OK", .badRequest, "malformed status code"),
      ("HTTX/1.1 200 OK", .badRequest, "malformed HTTP version"),
      ("HTTP/1x1 200 OK", .badRequest, "malformed HTTP version"),
      ("HTTP/2.0 200 OK", .versionNotSupported, "only HTTP/1.0 and HTTP/1.1 are served"),
      ("HTTP/1.2 200 OK", .versionNotSupported, "only HTTP/1.0 and HTTP/1.1 are served"),
    ]
    for (line, status, message) in cases {
      let error = failure(parse(line + "\r\nContent-Length: 0\r\n\r\n"))
      XCTAssertEqual(error, HTTPParseError(status, message), line)
    }
  }

  func testEmptyHeadFails() {
    XCTAssertEqual(failure(parse("\r\n\r\n"))?.status, .badRequest)
  }

  func testMalformedHeaderLinesFail() {
    for field in ["no colon here", ": empty name", "Bad Name: x", " folded: x", "X: a\u{01}b"] {
      let error = failure(parse("HTTP/1.1 200 OK\r\n\(field)\r\nContent-Length: 0\r\n\r\n"))
      XCTAssertEqual(error?.status, .badRequest, field)
    }
  }

  // MARK: - Content-Length

  func testBadContentLengthFails() {
    for value in ["abc", "-1", "+5", "5 5", "0x10", "", "1234567890123456789"] {
      let error = failure(parse("HTTP/1.1 200 OK\r\nContent-Length: \(value)\r\n\r\n"))
      XCTAssertEqual(error, HTTPParseError(.badRequest, "invalid Content-Length"), value)
    }
    let conflicting = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
    XCTAssertEqual(
      failure(parse(conflicting)), HTTPParseError(.badRequest, "invalid Content-Length"))
  }

  func testRepeatedEqualContentLengthIsAccepted() {
    let text = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok"
    guard case .complete(let parsed, let consumed) = parse(text) else {
      return XCTFail("not complete")
    }
    XCTAssertEqual(parsed.body, "ok")
    XCTAssertEqual(consumed, text.utf8.count)
  }

  func testBodyLimitIsAtLeast64MiB() {
    XCTAssertEqual(HTTPResponseParser().limits.maxBodyBytes, 64 << 20)
    // Up to the limit the parser waits for the body; beyond it, it gives up.
    XCTAssertEqual(parse("HTTP/1.1 200 OK\r\nContent-Length: \(64 << 20)\r\n\r\n"), .needMore)
    XCTAssertEqual(
      failure(parse("HTTP/1.1 200 OK\r\nContent-Length: \((64 << 20) + 1)\r\n\r\n"))?.status,
      .contentTooLarge)

    var larger = HTTPLimits()
    larger.maxBodyBytes = 128 << 20
    XCTAssertEqual(HTTPResponseParser(limits: larger).limits.maxBodyBytes, 128 << 20)
    XCTAssertEqual(
      parse("HTTP/1.1 200 OK\r\nContent-Length: \(100 << 20)\r\n\r\n", limits: larger), .needMore)
  }

  // MARK: - Head size

  func testHeadLargerThanTheLimitFails() {
    var limits = HTTPLimits()
    limits.maxHeadBytes = 100
    let start = "HTTP/1.1 200 OK\r\nX-Padding: "
    let atLimit = start + String(repeating: "a", count: 100 - start.utf8.count)
    XCTAssertEqual(parse(atLimit, limits: limits), .needMore)
    XCTAssertEqual(
      failure(parse(atLimit + "a", limits: limits)),
      HTTPParseError(.badRequest, "response head too large"))
  }

  func testHeaderCountLimit() {
    var limits = HTTPLimits()
    limits.maxHeaderCount = 3
    let fields = (1...4).map { "X-\($0): v\r\n" }
    let three = "HTTP/1.1 200 OK\r\n" + fields.prefix(3).joined() + "\r\n"
    XCTAssertEqual(
      parse(three, atEnd: true, limits: limits),
      .complete(
        Parsed(200, "OK", headers: ["X-1: v", "X-2: v", "X-3: v"]), consumed: three.utf8.count))
    XCTAssertEqual(
      failure(parse("HTTP/1.1 200 OK\r\n" + fields.joined() + "\r\n", limits: limits))?.status,
      .headerFieldsTooLarge)
  }

  /// A response's header buffer given back to the parser holds none of its fields in the next
  /// response, and a copy of the response kept elsewhere keeps all of them.
  func testARecycledHeaderBufferCarriesNothingIntoTheNextResponse() throws {
    var parser = HTTPResponseParser()
    func parse(_ text: String) throws -> HTTPClientResponse {
      guard case .complete(let response, _) = Array(text.utf8).withUnsafeBytes({ parser.parse($0) })
      else { throw HTTPParseError(.badRequest, "incomplete: \(text)") }
      return response
    }
    var first = try parse("HTTP/1.1 200 OK\r\nX-First: 1\r\nContent-Length: 2\r\n\r\nok")
    let kept = first
    parser.recycle(&first.headers)
    let second = try parse("HTTP/1.1 409 Conflict\r\nContent-Length: 0\r\n\r\n")
    XCTAssertEqual(Parsed(second), Parsed(409, "Conflict", headers: ["Content-Length: 0"]))
    XCTAssertEqual(
      Parsed(kept), Parsed(200, "OK", headers: ["X-First: 1", "Content-Length: 2"], body: "ok"))
  }
}
