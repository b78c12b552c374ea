/// One parsed HTTP/1.x request.
public struct HTTPRequest: Sendable {
  /// The method token, as sent (methods are case-sensitive).
  public var method: String
  /// The request target as sent, for logs.
  public var target: String
  /// The path part of the target, without the query.
  public var path: String
  /// The query after `?`, if any, without the `?`.
  public var query: String?
  /// 0 for HTTP/1.0, 1 for HTTP/1.1.
  public var minorVersion: Int
  public var headers: HTTPHeaders
  public var body: [UInt8]
  /// The client's numeric IP address, as the server saw it ("" when not from a socket).
  public var remoteAddress = ""

  public init(
    method: String, target: String, minorVersion: Int = 1, headers: HTTPHeaders = HTTPHeaders(),
    body: [UInt8] = []
  ) {
    self.method = method
    self.target = target
    self.minorVersion = minorVersion
    self.headers = headers
    self.body = body
    if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
      path = String(target[..<mark])
      query = String(target[target.index(after: mark)...])
    } else {
      path = target
      query = nil
    }
  }

  /// Whether the connection may carry another request after this one.
  public var keepAlive: Bool {
    if minorVersion == 0 { return headers.contains("Connection", token: "keep-alive") }
    return !headers.contains("Connection", token: "close")
  }

  /// Whether the client connected from this machine (127.0.0.0/8 or ::1).
  public var isFromLoopback: Bool {
    remoteAddress.hasPrefix("127.") || remoteAddress == "::1"
      || remoteAddress.hasPrefix("::ffff:127.")
  }

  /// The value of `name` in the query string (`a=1&b=2`), percent-decoding not applied. Works on
  /// the bytes: no per-character work.
  public func queryValue(_ name: String) -> String? {
    guard let query else { return nil }
    let bytes = query.utf8
    var start = bytes.startIndex
    while start < bytes.endIndex {
      let end = bytes[start...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.endIndex
      let equals = bytes[start..<end].firstIndex(of: UInt8(ascii: "=")) ?? end
      if bytes[start..<equals].elementsEqual(name.utf8) {
        return equals == end ? "" : String(query[bytes.index(after: equals)..<end])
      }
      start = end == bytes.endIndex ? end : bytes.index(after: end)
    }
    return nil
  }

  /// The host name from the Host header, without its port (IPv6 literals keep their brackets).
  public var hostName: String? {
    guard let host = headers["Host"], !host.isEmpty else { return nil }
    let bytes = host.utf8
    if bytes.first == UInt8(ascii: "[") {
      guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return nil }
      return String(host[...close])
    }
    if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) { return String(host[..<colon]) }
    return host
  }
}
