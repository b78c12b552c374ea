import XCTest

@testable import HTTPCore

final class HTTPRequestTests: XCTestCase {
  private func request(_ target: String, host: String? = nil) -> HTTPRequest {
    HTTPRequest(
      method: "GET", target: target, headers: HTTPHeaders(host.map { [("Host", $0)] } ?? []))
  }

  /// `Prefer: return=minimal` as RFC 7240 §2 writes preferences: any case, spaces around `=`, a
  /// quoted value, parameters after `;`, among other preferences; the first `return` decides,
  /// across fields too; commas and semicolons inside quotes separate nothing (helper-38's
  /// review).
  func testAMinimalReturnIsReadAsRFC7240WritesPreferences() {
    func prefers(_ values: String...) -> Bool {
      HTTPRequest(
        method: "GET", target: "/", headers: HTTPHeaders(values.map { ("Prefer", $0) })
      ).prefersMinimalReturn
    }
    for value in [
      "return=minimal", "RETURN=Minimal", "respond-async, return=minimal", "return = minimal",
      "return=\"minimal\"", "return=minimal; foo=bar", "return=minimal;foo=\"a,b\"",
      "wait=5,return=minimal", "foo=\"a,b\", return=minimal", "foo=\"x\\\",y\", return=minimal",
    ] {
      XCTAssertTrue(prefers(value), value)
    }
    for value in [
      "", "return", "return=", "return=representation", "return=minimalist",
      "return=representation, return=minimal", "foo=\"return=minimal\"",
      "foo=\"a;return=minimal\"", "returns=minimal", "x; return=minimal",
    ] {
      XCTAssertFalse(prefers(value), value)
    }
    XCTAssertTrue(prefers("wait=5", "return=minimal"))
    XCTAssertFalse(prefers("return=representation", "return=minimal"))
    XCTAssertFalse(
      HTTPRequest(method: "GET", target: "/", headers: HTTPHeaders()).prefersMinimalReturn)
  }

  func testHostValuesPutIPv6AddressesInBrackets() {
    XCTAssertEqual(HTTPHeaders.hostValue("::1", port: 80), "[::1]:80")
    XCTAssertEqual(HTTPHeaders.hostValue("[::1]", port: 80), "[::1]:80")
    XCTAssertEqual(HTTPHeaders.hostValue("127.0.0.1", port: 8001), "127.0.0.1:8001")
    XCTAssertEqual(HTTPHeaders.hostValue("lb.example", port: 1), "lb.example:1")
  }

  func testTheTargetSplitsIntoPathAndQuery() {
    XCTAssertEqual(request("/a/b?x=1").path, "/a/b")
    XCTAssertEqual(request("/a/b?x=1").query, "x=1")
    XCTAssertEqual(request("/a?").query, "")
    XCTAssertNil(request("/a").query)
    XCTAssertEqual(request("/é?ü=1").path, "/é")
  }

  func testQueryValues() {
    let sample = request("/?n=5&lease=abc&flag&empty=&n=6&é=ü&x=a=b")
    XCTAssertEqual(sample.queryValue("n"), "5", "the first of repeated names")
    XCTAssertEqual(sample.queryValue("lease"), "abc")
    XCTAssertEqual(sample.queryValue("flag"), "")
    XCTAssertEqual(sample.queryValue("empty"), "")
    XCTAssertEqual(sample.queryValue("é"), "ü")
    XCTAssertEqual(sample.queryValue("x"), "a=b")
    XCTAssertNil(sample.queryValue("le"), "a prefix of a name is not the name")
    XCTAssertNil(sample.queryValue("missing"))
    XCTAssertNil(request("/").queryValue("n"))
    XCTAssertNil(request("/?&&").queryValue("n"))
    XCTAssertEqual(request("/?&&n=1&").queryValue("n"), "1")
  }

  func testHostNameDropsThePort() {
    XCTAssertEqual(request("/", host: "lb.example:8001").hostName, "lb.example")
    XCTAssertEqual(request("/", host: "lb.example").hostName, "lb.example")
    XCTAssertEqual(request("/", host: "[::1]:8001").hostName, "[::1]")
    XCTAssertEqual(request("/", host: "[::1]").hostName, "[::1]")
    XCTAssertNil(request("/", host: "[::1").hostName)
    XCTAssertNil(request("/", host: "").hostName)
    XCTAssertNil(request("/").hostName)
  }
}
