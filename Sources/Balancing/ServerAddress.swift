/// Where a factorial server listens: a port on the balancer's own host, or `host:port` elsewhere.
public struct ServerAddress: Hashable, Sendable, CustomStringConvertible, Comparable {
  /// nil for a server on the balancer's host (clients reach it by the name they used for the
  /// balancer); otherwise a host name or IP literal (IPv6 in brackets).
  public let host: String?
  public let port: Int

  public init(host: String? = nil, port: Int) {
    self.host = host
    self.port = port
  }

  /// Parses `"5001"` or `"host:5001"` (or `"[::1]:5001"`); nil if it is neither.
  public init?(parsing text: String) {
    if let port = Self.parsePort(Substring(text)) {
      self.init(port: port)
      return
    }
    guard let colon = text.lastIndex(of: ":"),
      let port = Self.parsePort(text[text.index(after: colon)...])
    else { return nil }
    let host = String(text[..<colon])
    guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || ".-_:[]".contains($0) }),
      host.unicodeScalars.allSatisfy(\.isASCII)
    else { return nil }
    if host.contains(":") && !(host.hasPrefix("[") && host.hasSuffix("]")) { return nil }
    self.init(host: host, port: port)
  }

  /// A decimal port number from 1 to 65535, with no sign or spaces.
  public static func parsePort(_ text: Substring) -> Int? {
    // On the contiguous bytes when there are some (every report's port): no index arithmetic.
    if let port = text.utf8.withContiguousStorageIfAvailable({ parsePort(digits: $0) }) {
      return port
    }
    return parsePort(digits: text.utf8)
  }

  private static func parsePort<Digits: Collection<UInt8>>(digits: Digits) -> Int? {
    guard !digits.isEmpty, digits.count <= 5 else { return nil }
    var port = 0
    for digit in digits {
      guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else { return nil }
      port = port * 10 + Int(digit - UInt8(ascii: "0"))
    }
    return (1...65535).contains(port) ? port : nil
  }

  /// `5001` or `host:5001`, as written in servers.json.
  public var description: String { host.map { "\($0):\(port)" } ?? String(port) }

  /// Appends the bytes of `description` to `bytes`.
  public func appendDescription(to bytes: inout [UInt8]) {
    if var host {
      host.withUTF8 { bytes.append(contentsOf: $0) }
      bytes.append(UInt8(ascii: ":"))
    }
    bytes.appendDecimal(port)
  }

  /// The URL a client is redirected to; `clientHost` is the name it used for the balancer.
  public func url(clientHost: String) -> String {
    var bytes: [UInt8] = []
    appendURL(clientHost: clientHost, to: &bytes)
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Appends the bytes of `url(clientHost:)`, `http://host:port/port`, to `bytes`.
  public func appendURL(clientHost: String, to bytes: inout [UInt8]) {
    ("http://" as StaticString).withUTF8Buffer { bytes.append(contentsOf: $0) }
    var host = host ?? clientHost
    host.withUTF8 { bytes.append(contentsOf: $0) }
    bytes.append(UInt8(ascii: ":"))
    bytes.appendDecimal(port)
    bytes.append(UInt8(ascii: "/"))
    bytes.appendDecimal(port)
  }

  public static func < (lhs: ServerAddress, rhs: ServerAddress) -> Bool {
    (lhs.host ?? "", lhs.port) < (rhs.host ?? "", rhs.port)
  }
}
