import Glibc

/// A blocking HTTP/1.1 client: one keep-alive connection, every read and write bounded by a
/// timeout. For tools and tests that run one request at a time per thread.
public final class BlockingHTTPClient {
  public let host: String
  public let port: Int
  /// The connection's socket (-1 once closed).
  public private(set) var fd: Int32 = -1
  private var buffer: [UInt8] = []
  private var chunk = [UInt8](repeating: 0, count: 65536)

  /// Connects to `host:port` (blocking), with `timeout` seconds for each read.
  public init(host: String = "127.0.0.1", port: Int, timeout: Double = 10) throws {
    self.host = host
    self.port = port
    let address = try SocketAddress(host: host, port: port)
    fd = socket(address.family, Int32(SOCK_STREAM.rawValue), 0)
    // No descriptor (EMFILE): say so, rather than connect -1 and report EBADF.
    guard fd >= 0 else { throw SocketError.system("socket", errno) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let connected = address.withSockaddr { Glibc.connect(fd, $0, $1) }
    guard connected == 0 else {
      let code = errno
      // Closed here, and marked closed: the object goes away as init throws, and its deinit
      // must not close the number again (another thread may hold it by then).
      Glibc.close(fd)
      fd = -1
      throw SocketError.system("connect", code)
    }
    Socket.setNoDelay(fd)
  }

  /// Whether the connection is still open on this side.
  public var isOpen: Bool { fd >= 0 }

  deinit { close() }

  public func close() {
    if fd >= 0 { Glibc.close(fd) }
    fd = -1
  }

  /// Sends raw bytes.
  public func send(_ text: String) throws { try send(Array(text.utf8)) }

  public func send(_ bytes: [UInt8]) throws {
    var offset = 0
    while offset < bytes.count {
      let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      guard written > 0 else { throw SocketError.system("write", errno) }
      offset += written
    }
  }

  /// Sends `GET path` with the given Host header (default `host:port`, `[host]:port` for IPv6).
  public func get(_ path: String, hostHeader: String? = nil, method: String = "GET") throws
    -> HTTPClientResponse
  {
    let hostValue = hostHeader ?? HTTPHeaders.hostValue(host, port: port)
    try send("\(method) \(path) HTTP/1.1\r\nHost: \(hostValue)\r\n\r\n")
    return try readResponse(expectBody: method != "HEAD")
  }

  /// Reads one response, past any interim ones (1xx: not the answer, RFC 9110 §15.2); throws
  /// on timeout or if the server closes first (unless the close ends a body sent without
  /// Content-Length).
  public func readResponse(expectBody: Bool = true) throws -> HTTPClientResponse {
    var parser = HTTPResponseParser()
    var atEnd = false
    while true {
      let result = buffer.withUnsafeBytes {
        parser.parse($0, expectBody: expectBody, atEnd: atEnd)
      }
      switch result {
      case .complete(let response, let consumed):
        buffer.removeFirst(consumed)
        if response.statusCode < 200 {
          parser = HTTPResponseParser()
          continue
        }
        return response
      case .failed(let error):
        throw error
      case .needMore:
        if atEnd { throw HTTPClient.Failure.unreachable("connection closed by the server") }
        atEnd = try !fill()
      }
    }
  }

  /// Reads what arrives next; false if the server closed the connection.
  private func fill() throws -> Bool {
    let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
    if count > 0 {
      buffer.append(contentsOf: chunk[0..<count])
      return true
    } else if count == 0 {
      return false
    } else {
      throw HTTPClient.Failure.unreachable(
        "read failed or timed out: \(String(cString: strerror(errno)))")
    }
  }
}

/// An `http://host:port/path` URL, split for a client: a host, and a port from 1 to 65535 in
/// digits.
public struct HTTPURL: Sendable, CustomStringConvertible {
  public let host: String
  public let port: Int
  public var path: String
  public var hostHeader: String { "\(host):\(port)" }
  public var description: String { "http://\(host):\(port)\(path)" }

  public init(_ text: String) throws {
    guard text.hasPrefix("http://") else {
      throw HTTPClient.Failure.protocolError("not an http URL: \(text)")
    }
    let rest = text.dropFirst(7)
    let slash = rest.firstIndex(of: "/") ?? rest.endIndex
    let authority = rest[..<slash]
    path = slash == rest.endIndex ? "/" : String(rest[slash...])
    guard let colon = authority.lastIndex(of: ":"),
      case let digits = authority[authority.index(after: colon)...],
      digits.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(digits),
      (1...65535).contains(port), colon > authority.startIndex
    else { throw HTTPClient.Failure.protocolError("URL without a host and a port: \(text)") }
    // The authority is what a Host field holds, and is checked as one.
    var hostField = String(authority)
    guard hostField.withUTF8(HTTPRequestParser.isValidHost) else {
      throw HTTPClient.Failure.protocolError("URL whose host is not a name or an address: \(text)")
    }
    guard path.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
      throw HTTPClient.Failure.protocolError("URL with a space or a control character: \(text)")
    }
    host = String(authority[..<colon])
    self.port = port
  }
}
