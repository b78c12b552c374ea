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
      // Hosts no connection can go to, taken apart at the last colon before (helper-39's audit:
      // `http://[::1/` was read as host `[:`, port 1).
      "http://[::1/", "http://[::1]8001/", "http://a b:8001/", "http://[]:8001/", "http://[x]:80/",
      "http://a]:80/", "http://a\u{7F}:80/", "http://h\u{E9}:80/",
      // A path that cannot go into a request line.
      "http://a:80/x y", "http://a:80/x\r\nHost: b",
    ] {
      XCTAssertThrowsError(try HTTPURL(text), text)
    }
    for (text, host, port) in [
      ("http://127.0.0.1:65535/", "127.0.0.1", 65535), ("http://[::1]:8001/x", "[::1]", 8001),
      ("http://localhost:1", "localhost", 1),
      ("http://[::ffff:127.0.0.1]:80/", "[::ffff:127.0.0.1]", 80),
      ("http://my-host_1.example:80/?a=%20", "my-host_1.example", 80),
    ] {
      let url = try HTTPURL(text)
      XCTAssertEqual(url.host, host, text)
      XCTAssertEqual(url.port, port, text)
    }
  }
}
