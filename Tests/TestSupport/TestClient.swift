import Glibc
import HTTPCore

/// The tests' client is the core's blocking client.
public typealias TestClient = BlockingHTTPClient
public typealias TestURL = HTTPURL

/// A failure raised by test helpers.
public struct TestFailure: Error, CustomStringConvertible {
  public let description: String
  public init(_ description: String) { self.description = description }
}

extension BlockingHTTPClient {
  /// Whether the server has closed the connection (reads EOF before the read timeout).
  public func isClosedByPeer() -> Bool {
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
      if count == 0 { return true }
      if count < 0 { return errno == ECONNRESET }
    }
  }

  /// GET `url`, following redirects as curl -L does; returns the final response and every URL.
  public static func follow(_ url: String, maxRedirects: Int = 5, timeout: Double = 30) throws
    -> (response: HTTPClientResponse, urls: [String])
  {
    var urls = [url]
    var current = url
    for _ in 0...maxRedirects {
      let target = try HTTPURL(current)
      let client = try BlockingHTTPClient(host: target.host, port: target.port, timeout: timeout)
      let response = try client.get(target.path, hostHeader: target.hostHeader)
      guard (300..<400).contains(response.statusCode), let location = response.headers["Location"]
      else { return (response, urls) }
      current = location
      urls.append(location)
    }
    throw HTTPClient.Failure.protocolError("too many redirects: \(urls)")
  }
}
