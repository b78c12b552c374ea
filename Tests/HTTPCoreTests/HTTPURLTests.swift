import HTTPCore
import XCTest

final class HTTPURLTests: XCTestCase {
  /// A URL names a host and a port a connection can go to: a port outside 1…65535, written with a
  /// sign, or a missing host is refused when the URL is read (a load test's balancer URL, a
  /// redirect's Location), not found out on every request.
  func testRefusesAPortOutOfRangeOrAMissingHost() throws {
    for text in [
      "http://127.0.0.1:99999/", "http://127.0.0.1:65536/", "http://127.0.0.1:0/",
      "http://127.0.0.1:-1/", "http://127.0.0.1:+80/", "http://:8001/", "http://[::1]:/",
    ] {
      XCTAssertThrowsError(try HTTPURL(text), text)
    }
    for (text, host, port) in [
      ("http://127.0.0.1:65535/", "127.0.0.1", 65535), ("http://[::1]:8001/x", "[::1]", 8001),
      ("http://localhost:1", "localhost", 1),
    ] {
      let url = try HTTPURL(text)
      XCTAssertEqual(url.host, host, text)
      XCTAssertEqual(url.port, port, text)
    }
  }
}
