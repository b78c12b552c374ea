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
  /// the contiguous bytes: no per-character work, no index arithmetic on the String.
  public func queryValue(_ name: String) -> String? {
    guard var query else { return nil }
    var name = name
    return query.withUTF8 { bytes in
      name.withUTF8 { wanted in Self.value(of: wanted, in: bytes) }
    }
  }

  /// The value of the first pair named `name` in `query`, "" for a pair without `=`.
  private static func value(
    of name: UnsafeBufferPointer<UInt8>, in query: UnsafeBufferPointer<UInt8>
  ) -> String? {
    var start = 0
    while start < query.count {
      var end = start
      while end < query.count && query[end] != UInt8(ascii: "&") { end += 1 }
      var equals = start
      while equals < end && query[equals] != UInt8(ascii: "=") { equals += 1 }
      if equals - start == name.count && Self.equal(query, from: start, name) {
        guard equals < end else { return "" }
        return String(
          decoding: UnsafeBufferPointer(rebasing: query[(equals + 1)..<end]), as: UTF8.self)
      }
      start = end + 1
    }
    return nil
  }

  private static func equal(
    _ bytes: UnsafeBufferPointer<UInt8>, from start: Int, _ other: UnsafeBufferPointer<UInt8>
  ) -> Bool {
    for index in 0..<other.count where bytes[start + index] != other[index] { return false }
    return true
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
