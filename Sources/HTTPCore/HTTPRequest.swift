/// One parsed HTTP/1.x request.
public struct HTTPRequest: Sendable {
  /// The method token, as sent (methods are case-sensitive).
  public var method: String
  /// The request target as sent (`/path?query`); the path and the query are read from it.
  public var target: String {
    didSet { queryMark = Self.queryMark(in: target) }
  }
  /// 0 for HTTP/1.0, 1 for HTTP/1.1.
  public var minorVersion: Int
  public var headers: HTTPHeaders
  public var body: [UInt8]
  /// The client's numeric IP address, as the server saw it ("" when not from a socket).
  public var remoteAddress = ""
  /// The `host[:port]` of a target sent in absolute form (`GET http://host:port/path`), which
  /// stands in for the Host header (RFC 9112 §3.2.2); nil for the usual origin form.
  public var authority: String?
  /// The UTF-8 offset of the `?` that starts the query in `target`, if any.
  private var queryMark: Int?

  public init(
    method: String, target: String, minorVersion: Int = 1, headers: HTTPHeaders = HTTPHeaders(),
    body: [UInt8] = []
  ) {
    self.init(
      method: method, target: target, queryMark: Self.queryMark(in: target),
      minorVersion: minorVersion, headers: headers)
    self.body = body
  }

  /// A request whose target's `?` the parser already found (`queryMark`, a UTF-8 offset).
  init(
    method: String, target: String, queryMark: Int?, minorVersion: Int, headers: HTTPHeaders
  ) {
    self.method = method
    self.target = target
    self.minorVersion = minorVersion
    self.headers = headers
    body = []
    self.queryMark = queryMark
  }

  private static func queryMark(in target: String) -> Int? {
    var target = target
    return target.withUTF8 { $0.firstIndex(of: UInt8(ascii: "?")) }
  }

  /// The path part of the target, without the query.
  public var path: String {
    guard queryMark != nil else { return target }
    return String(pathView)
  }

  /// The path part of the target as a view into it: no copy.
  public var pathView: Substring {
    guard let queryMark else { return Substring(target) }
    return target[..<target.utf8.index(target.utf8.startIndex, offsetBy: queryMark)]
  }

  /// The query after `?`, if any, without the `?`.
  public var query: String? {
    guard let queryMark else { return nil }
    return String(target[target.utf8.index(target.utf8.startIndex, offsetBy: queryMark + 1)...])
  }

  /// Whether the connection may carry another request after this one.
  public var keepAlive: Bool {
    let connection: StaticString = "Connection"
    if minorVersion == 0 { return headers.contains(connection, token: "keep-alive") }
    return !headers.contains(connection, token: "close")
  }

  /// Whether the client asked for a minimal answer (`Prefer: return=minimal`, RFC 7240 §4.2):
  /// a program that only needs to know that a request succeeded.
  public var prefersMinimalReturn: Bool { headers.prefers("return", "minimal") }

  /// Whether the client connected from this machine (127.0.0.0/8 or ::1).
  public var isFromLoopback: Bool {
    remoteAddress.hasPrefix("127.") || remoteAddress == "::1"
      || remoteAddress.hasPrefix("::ffff:127.")
  }

  /// The value of `name` in the query string (`a=1&b=2`) as sent, percent-decoding not applied.
  /// Works on the target's contiguous bytes: no per-character work, no index arithmetic on the
  /// String. Values a program acts on are read with `decodedQueryValue`.
  public func queryValue(_ name: String) -> String? {
    withValue(named: name) { String(decoding: $0, as: UTF8.self) }
  }

  /// The value of `name` in the query string, percent-decoded (RFC 3986 §2.1: `%35` is `5`,
  /// `%2B` is `+`; a `+` stays a `+`); nil if the query has no such pair. Throws if a `%` is not
  /// followed by two hex digits, or escapes decode to bytes that are not UTF-8. Names are
  /// matched as sent. A value without `%` costs what `queryValue` does.
  public func decodedQueryValue(_ name: String) throws(MalformedQueryValue) -> String? {
    let decoded = withValue(named: name) { bytes -> String? in
      let escaped =
        HTTPHeadScanner.find(
          UInt8(ascii: "%"), in: UnsafeRawBufferPointer(bytes), from: 0, limit: bytes.count) != nil
      guard escaped else { return String(decoding: bytes, as: UTF8.self) }
      return Self.percentDecoded(bytes)
    }
    guard let decoded else { return nil }
    guard let value = decoded else {
      throw MalformedQueryValue(name: name, value: queryValue(name) ?? "")
    }
    return value
  }

  /// `bytes` with their percent-escapes decoded (RFC 3986 §2.1), or nil if one is malformed (a
  /// `%` not followed by two hex digits) or the result is not UTF-8.
  private static func percentDecoded(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
    var decoded: [UInt8] = []
    decoded.reserveCapacity(bytes.count)
    var index = 0
    while index < bytes.count {
      let byte = bytes[index]
      guard byte == UInt8(ascii: "%") else {
        decoded.append(byte)
        index += 1
        continue
      }
      guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]),
        let low = hexValue(bytes[index + 2])
      else { return nil }
      decoded.append(high << 4 | low)
      index += 3
    }
    return String(validating: decoded, as: UTF8.self)
  }

  private static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
  }

  /// `body` applied to the bytes of `name`'s value in the query string; nil if there is none.
  private func withValue<Value>(
    named name: String, _ body: (UnsafeBufferPointer<UInt8>) -> Value
  ) -> Value? {
    withQuery { query in
      var name = name
      return name.withUTF8 { wanted in Self.value(of: wanted, in: query, body) }
    } ?? nil
  }

  /// Calls `body` with the query's bytes (after `?`); nil if the target has no query.
  public func withQuery<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result? {
    guard let queryMark else { return nil }
    var target = target
    return target.withUTF8 { bytes in
      body(UnsafeBufferPointer(rebasing: bytes[(queryMark + 1)...]))
    }
  }

  /// Calls `body` with each `&`-separated pair of `query` (empty ones too), in order, until it
  /// returns false.
  public static func forEachQueryPair(
    _ query: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Bool
  ) {
    var start = 0
    while start < query.count {
      var end = start
      while end < query.count && query[end] != UInt8(ascii: "&") { end += 1 }
      guard body(UnsafeBufferPointer(rebasing: query[start..<end])) else { return }
      start = end + 1
    }
  }

  /// The value of the first pair named `name` in `query`, "" for a pair without `=`.
  private static func value<Value>(
    of name: UnsafeBufferPointer<UInt8>, in query: UnsafeBufferPointer<UInt8>,
    _ body: (UnsafeBufferPointer<UInt8>) -> Value
  ) -> Value? {
    var found: Value?
    forEachQueryPair(query) { pair in
      var equals = 0
      while equals < pair.count && pair[equals] != UInt8(ascii: "=") { equals += 1 }
      guard equals == name.count && Self.equal(pair, from: 0, name) else { return true }
      found = body(UnsafeBufferPointer(rebasing: pair[min(equals + 1, pair.count)...]))
      return false
    }
    return found
  }

  private static func equal(
    _ bytes: UnsafeBufferPointer<UInt8>, from start: Int, _ other: UnsafeBufferPointer<UInt8>
  ) -> Bool {
    for index in 0..<other.count where bytes[start + index] != other[index] { return false }
    return true
  }

  /// The host name the client asked for, without its port (IPv6 literals keep their brackets):
  /// from an absolute-form target if it had one, else from the Host header.
  public var hostName: String? {
    if var authority { return authority.withUTF8(Self.hostName(in:)) }
    return headers.withValue(of: "Host", Self.hostName(in:)) ?? nil
  }

  /// The host name in a Host value or an authority (`host[:port]`), nil if there is none.
  private static func hostName(in host: UnsafeBufferPointer<UInt8>) -> String? {
    hostNameEnd(host).map {
      String(decoding: UnsafeBufferPointer(rebasing: host[..<$0]), as: UTF8.self)
    }
  }

  /// Where the host name ends in a Host value (its port left out), nil if there is none.
  static func hostNameEnd(_ host: UnsafeBufferPointer<UInt8>) -> Int? {
    guard !host.isEmpty else { return nil }
    if host[0] == UInt8(ascii: "[") {
      guard let close = host.firstIndex(of: UInt8(ascii: "]")) else { return nil }
      return close + 1
    }
    return host.firstIndex(of: UInt8(ascii: ":")) ?? host.count
  }
}
