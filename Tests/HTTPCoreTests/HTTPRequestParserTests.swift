import TestSupport
import XCTest

@testable import HTTPCore

final class HTTPRequestParserTests: XCTestCase {
  /// Parses every complete request in `bytes`, feeding them in `chunks` as a socket would.
  private func parseAll(_ bytes: [UInt8], chunkSize: Int? = nil, limits: HTTPLimits = HTTPLimits())
    -> (requests: [HTTPRequest], error: HTTPParseError?, leftover: Int)
  {
    var parser = HTTPRequestParser(limits: limits)
    var buffer: [UInt8] = []
    var requests: [HTTPRequest] = []
    var offset = 0
    let size = chunkSize ?? bytes.count
    while offset < bytes.count {
      buffer.append(contentsOf: bytes[offset..<min(offset + size, bytes.count)])
      offset += size
      parsing: while true {
        switch buffer.withUnsafeBytes({ parser.parse($0) }) {
        case .needMore: break parsing
        case .complete(let request, let consumed):
          requests.append(request)
          buffer.removeFirst(consumed)
        case .failed(let error): return (requests, error, buffer.count)
        }
      }
    }
    return (requests, nil, buffer.count)
  }

  private func parseAll(_ text: String, chunkSize: Int? = nil, limits: HTTPLimits = HTTPLimits())
    -> (requests: [HTTPRequest], error: HTTPParseError?, leftover: Int)
  {
    parseAll(Array(text.utf8), chunkSize: chunkSize, limits: limits)
  }

  /// A request's header buffer given back to the parser holds none of its fields in the next
  /// request, and a copy of the request kept elsewhere keeps all of them.
  func testARecycledHeaderBufferCarriesNothingIntoTheNextRequest() throws {
    var parser = HTTPRequestParser()
    func parse(_ text: String) throws -> HTTPRequest {
      guard case .complete(let request, _) = Array(text.utf8).withUnsafeBytes({ parser.parse($0) })
      else { throw HTTPParseError(.badRequest, "incomplete: \(text)") }
      return request
    }
    var first = try parse(
      "GET /a HTTP/1.1\r\nHost: a\r\nX-First: 1\r\nX-Long: \(String(repeating: "x", count: 300))\r\n\r\n"
    )
    let kept = first
    parser.recycle(&first.headers)
    XCTAssertEqual(first.headers.count, 0)
    XCTAssertEqual(kept.headers.count, 3)
    XCTAssertEqual(kept.headers["X-First"], "1")
    var second = try parse("GET /b HTTP/1.1\r\nHost: b\r\n\r\n")
    XCTAssertEqual(second.headers.map(\.name), ["Host"])
    XCTAssertEqual(second.headers["Host"], "b")
    XCTAssertNil(second.headers["X-First"])
    parser.recycle(&second.headers)
    let third = try parse("GET /c HTTP/1.1\r\nHost: c\r\nX-Third: 3\r\n\r\n")
    XCTAssertEqual(third.headers.map(\.name), ["Host", "X-Third"])
    XCTAssertEqual(third.headers["X-Third"], "3")
    XCTAssertEqual(kept.headers["Host"], "a")
  }

  func testSimpleRequest() {
    let result = parseAll("GET /5001?n=12&lease=ab HTTP/1.1\r\nHost: lb:8001\r\nX-A:  b c \r\n\r\n")
    XCTAssertNil(result.error)
    let request = result.requests[0]
    XCTAssertEqual(request.method, "GET")
    XCTAssertEqual(request.path, "/5001")
    XCTAssertEqual(request.query, "n=12&lease=ab")
    XCTAssertEqual(request.queryValue("n"), "12")
    XCTAssertEqual(request.queryValue("lease"), "ab")
    XCTAssertNil(request.queryValue("x"))
    XCTAssertEqual(request.headers["host"], "lb:8001")
    XCTAssertEqual(request.headers["X-A"], "b c")
    XCTAssertEqual(request.hostName, "lb")
    XCTAssertTrue(request.keepAlive)
  }

  /// Query values percent-decoded (RFC 3986 §2.1), malformed escapes refused; the raw value
  /// stays available as sent.
  func testQueryValuesArePercentDecoded() {
    let request = HTTPRequest(
      method: "GET", target: "/?n=%35&k=a%20b%2Bc+d&e=&bad=%3&hex=%zz&u=%C3%A9&x=%FF&p=%25")
    func decoded(_ name: String) -> String? { try? request.decodedQueryValue(name) }
    XCTAssertEqual(decoded("n"), "5")
    XCTAssertEqual(request.queryValue("n"), "%35")
    XCTAssertEqual(decoded("k"), "a b+c+d", "a + stays a + (RFC 3986 is not form encoding)")
    XCTAssertEqual(decoded("e"), "")
    XCTAssertEqual(decoded("u"), "é")
    XCTAssertEqual(decoded("p"), "%")
    XCTAssertNil(try request.decodedQueryValue("missing"))
    for (name, value) in [("bad", "%3"), ("hex", "%zz"), ("x", "%FF")] {
      XCTAssertThrowsError(try request.decodedQueryValue(name)) { error in
        XCTAssertEqual(error as? MalformedQueryValue, MalformedQueryValue(name: name, value: value))
      }
    }
    func value(_ sent: String) -> String? {
      try? HTTPRequest(method: "GET", target: "/?v=\(sent)").decodedQueryValue("v")
    }
    for malformed in ["%", "%3", "%zz", "%g0", "a%", "%%"] {
      XCTAssertNil(value(malformed), malformed)
    }
    XCTAssertEqual(value("plain"), "plain")
    XCTAssertEqual(value("%2b%2B"), "++")
  }

  /// The same request split at every possible byte boundary parses the same.
  func testRequestSplitAtEveryByte() {
    let text = "POST /port_update/5001 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    for size in 1...text.utf8.count {
      let result = parseAll(text, chunkSize: size)
      XCTAssertNil(result.error, "chunk \(size)")
      XCTAssertEqual(result.requests.count, 1, "chunk \(size)")
      XCTAssertEqual(result.requests.first?.body, Array("hello".utf8))
      XCTAssertEqual(result.leftover, 0)
    }
  }

  func testPipelinedRequestsKeepTheirOrder() {
    let text = (1...50).map { "GET /\($0) HTTP/1.1\r\nHost: h\r\n\r\n" }.joined()
    for size in [1, 7, 64, 10_000] {
      let result = parseAll(text, chunkSize: size)
      XCTAssertNil(result.error)
      XCTAssertEqual(result.requests.map(\.path), (1...50).map { "/\($0)" })
    }
  }

  func testBareLineFeedsAndLeadingBlankLinesAreAccepted() {
    let result = parseAll("\r\nGET / HTTP/1.0\n\n")
    XCTAssertNil(result.error)
    XCTAssertEqual(result.requests.first?.minorVersion, 0)
    XCTAssertEqual(result.requests.first?.keepAlive, false)
  }

  func testAbsoluteFormTarget() {
    let result = parseAll("GET http://lb:8001/health?x=1 HTTP/1.1\r\nHost: lb\r\n\r\n")
    XCTAssertEqual(result.requests.first?.path, "/health")
    XCTAssertEqual(result.requests.first?.query, "x=1")
  }

  /// RFC 9112 §3.2.2: the host of an absolute-form target, not the Host header, is the one asked
  /// for (a redirect names it).
  func testAnAbsoluteFormTargetsHostStandsInForTheHostHeader() {
    for (target, host) in [
      ("http://foo:9/", "foo"), ("http://[::1]:9/x", "[::1]"), ("HTTP://bar?n=1", "bar"),
    ] {
      let request = parseAll("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n").requests.first
      XCTAssertEqual(request?.hostName, host, target)
      XCTAssertEqual(request?.headers["Host"], "x", target)
    }
    XCTAssertEqual(parseAll("GET / HTTP/1.1\r\nHost: x:1\r\n\r\n").requests.first?.hostName, "x")
  }

  /// Only what RFC 3986 calls a host, with an optional numeric port, is a Host: anything else
  /// would end up in a redirect's Location, pointing nowhere.
  func testHostValues() {
    let valid = [
      "a", "lb.example:8001", "127.0.0.1:8001", "[::1]", "[::1]:8001", "[2001:db8::7]:1", "x:",
      "a_b-c.d", "h:65535", "[::1]:",
    ]
    for host in valid {
      XCTAssertTrue(parseAll("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n").error == nil, host)
    }
    let invalid = [
      ":8001", ":", "]]]:1", "[::1", "[::1]x", "[]:1", "[1.2.3.4]", "[::g]", "x:abc", "x:99999",
      "x:123456", "x:-1", "a:b:c", "a]", "x::1", "a@b", "a%2e",
    ]
    for host in invalid {
      let result = parseAll("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")
      XCTAssertEqual(result.error?.status.code, 400, host)
      XCTAssertTrue(result.requests.isEmpty, host)
    }
    for target in ["http://:9/", "http://]]]/", "http://a:b/", "http:///x"] {
      let result = parseAll("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n")
      XCTAssertEqual(result.error?.status.code, 400, target)
    }
  }

  /// A fragment is never sent (RFC 9110 §7.1); one in a target would land in the redirect's
  /// Location, after which a browser drops the lease with it.
  func testATargetWithAFragmentIsRefused() {
    for target in ["/?n=5#frag", "/#", "http://a/x#y"] {
      let result = parseAll("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n")
      XCTAssertEqual(result.error?.status.code, 400, target)
    }
  }

  func testConnectionHeader() {
    XCTAssertFalse(
      parseAll("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").requests[0].keepAlive)
    XCTAssertTrue(
      parseAll("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").requests[0].keepAlive)
  }

  func testMalformedRequestsAreRejectedWithTheRightStatus() {
    let cases: [(String, Int)] = [
      ("GARBAGE\r\n\r\n", 400),
      ("GET /\r\n\r\n", 400),
      ("GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", 400),
      ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
      ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
      ("GET noslash HTTP/1.1\r\nHost: a\r\n\r\n", 400),
      ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
      ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
      ("GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400),
      ("GET / HTTP/1.1\r\n\r\n", 400),  // no Host
      ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
      ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
      ("GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400),
      ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
      ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
      ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{01}b\r\n\r\n", 400),
      ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
      ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400),
      ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
      ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
      ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", 413),
      ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
      (
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400
      ),
    ]
    for (text, status) in cases {
      let result = parseAll(text)
      XCTAssertEqual(result.error?.status.code, status, text.debugDescription)
      XCTAssertTrue(result.requests.isEmpty, text.debugDescription)
    }
  }

  /// RFC 9110 §10.1.1: an expectation other than 100-continue may be answered 417; here any
  /// Expect value but exactly `100-continue` (in any case) is, wherever the reads end.
  func testAnExpectationOtherThanContinueGets417() {
    let refused = [
      "100-continue, x", "x, 100-continue", "x", "", "100-continue;a=b", "100-continued",
      "100 continue",
    ]
    for expectation in refused {
      for version in ["1.1", "1.0"] {
        let text =
          "POST / HTTP/\(version)\r\nHost: a\r\nExpect: \(expectation)\r\nContent-Length: 2\r\n\r\nhi"
        for chunk in [nil, 1] {
          let result = parseAll(text, chunkSize: chunk)
          XCTAssertEqual(result.error?.status.code, 417, text.debugDescription)
          XCTAssertEqual(result.error?.status.reason, "Expectation Failed")
          XCTAssertTrue(result.requests.isEmpty, text.debugDescription)
        }
      }
    }
    // A second Expect field with another expectation is refused too.
    XCTAssertEqual(
      parseAll("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nExpect: y\r\n\r\n").error?
        .status.code, 417)
    for accepted in ["100-continue", "100-Continue", "100-CONTINUE"] {
      let result = parseAll(
        "POST / HTTP/1.1\r\nHost: a\r\nExpect: \(accepted)\r\nContent-Length: 2\r\n\r\nhi")
      XCTAssertNil(result.error, accepted)
      XCTAssertEqual(result.requests.first?.body, Array("hi".utf8), accepted)
    }
    // A broken frame is still a 400, not a 417.
    XCTAssertEqual(
      parseAll("POST / HTTP/1.1\r\nHost: a\r\nExpect: x\r\nContent-Length: 1x\r\n\r\n").error?
        .status.code, 400)
  }

  func testLimits() {
    var limits = HTTPLimits()
    limits.maxHeaderCount = 3
    let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
    XCTAssertEqual(parseAll(many, limits: limits).error?.status.code, 431)

    let longPath = "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n"
    XCTAssertEqual(parseAll(longPath).error?.status.code, 414)
    // Even before the line ends, an endless request line is cut off.
    XCTAssertEqual(parseAll("GET /" + String(repeating: "a", count: 9000)).error?.status.code, 414)

    let bigHeader =
      "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 20000) + "\r\n\r\n"
    XCTAssertEqual(parseAll(bigHeader).error?.status.code, 431)
    // An endless header, never terminated, is cut off at the limit too.
    let endless = "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X: y\r\n", count: 5000)
    XCTAssertEqual(parseAll(endless, chunkSize: 100).error?.status.code, 431)
  }

  func testIncompleteRequestNeedsMore() {
    let result = parseAll("GET / HTTP/1.1\r\nHost: a\r\n")
    XCTAssertNil(result.error)
    XCTAssertTrue(result.requests.isEmpty)
    let body = parseAll("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    XCTAssertNil(body.error)
    XCTAssertTrue(body.requests.isEmpty)
  }

  /// Random bytes and random mutations of valid requests never crash the parser, and every
  /// outcome is one of the three results with a 4xx/5xx status for failures.
  func testSeededFuzzNeverCrashes() {
    var random = SeededGenerator(seed: 2026)
    let seeds = [
      "GET /5001?n=5 HTTP/1.1\r\nHost: a:1\r\n\r\n",
      "POST /port_update/5001 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
      "GET http://x/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ].map { Array($0.utf8) }
    let alphabet = Array("\r\n :/?%HTTP1.0GETContent-Length\u{0}\u{7f}\u{ff}".utf8)
    var outcomes = [0, 0, 0]
    for iteration in 0..<20000 {
      var bytes: [UInt8]
      if iteration % 5 == 0 {
        bytes = (0..<Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
      } else {
        bytes = seeds[Int(random.next() % UInt64(seeds.count))]
        for _ in 0..<Int(1 + random.next() % 4) {
          let position = Int(random.next() % UInt64(bytes.count + 1))
          switch random.next() % 3 {
          case 0: bytes.insert(alphabet[Int(random.next() % UInt64(alphabet.count))], at: position)
          case 1: if position < bytes.count { bytes.remove(at: position) }
          default:
            if position < bytes.count { bytes[position] = UInt8(truncatingIfNeeded: random.next()) }
          }
        }
      }
      let result = parseAll(bytes, chunkSize: Int(1 + random.next() % 64))
      if let error = result.error {
        XCTAssertTrue((400...505).contains(error.status.code))
        outcomes[2] += 1
      } else if result.requests.isEmpty {
        outcomes[0] += 1
      } else {
        outcomes[1] += 1
        for request in result.requests { XCTAssertTrue(request.target.hasPrefix("/")) }
      }
    }
    // The mutations reach every outcome, so the test exercises more than one path.
    XCTAssertTrue(outcomes.allSatisfy { $0 > 100 }, "\(outcomes)")
  }

  /// The word-at-a-time check of a request target's bytes agrees with the byte-by-byte rule for
  /// every byte value at every place in a word, and in the tail after the last whole word.
  func testVisibleASCIIAgreesWithTheRuleForEveryByte() {
    for length in [8, 13, 16, 17] {
      for position in 0..<length {
        for value in 0...255 {
          var target = [UInt8](repeating: UInt8(ascii: "a"), count: length)
          target[position] = UInt8(value)
          // A byte that carries when 1 is added (0xFF) before a valid one must not hide it.
          if position + 1 < length { target[position + 1] = 0x7E }
          let expected = target.allSatisfy { $0 > 0x20 && $0 < 0x7F }
          target.withUnsafeBytes { bytes in
            XCTAssertEqual(
              HTTPRequestParser.isVisibleASCII(bytes, 0..<length), expected,
              "byte \(value) at \(position) of \(length)")
          }
        }
      }
    }
  }
}
