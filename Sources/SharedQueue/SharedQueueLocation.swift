import Balancing

/// Where the shared books live: `redis://HOST:PORT[/PREFIX]`, as `--shared-queue` takes it.
/// Balancers given the same location share one availability queue, one set of leases and one
/// pool; the prefix (default `lb`) keeps several such groups apart on one Redis.
public struct SharedQueueLocation: Equatable, Sendable, CustomStringConvertible {
  public var host: String
  public var port: Int
  public var prefix: String

  public init(host: String, port: Int = 6379, prefix: String = "lb") {
    self.host = host
    self.port = port
    self.prefix = prefix
  }

  /// Parses `redis://HOST[:PORT][/PREFIX]`; the error says what is wrong.
  public init(parsing text: String) throws(SharedQueueLocation.Invalid) {
    let scheme = "redis://"
    guard text.hasPrefix(scheme) else {
      throw Invalid("'\(text)' is not redis://HOST:PORT[/PREFIX]")
    }
    var rest = Substring(text.dropFirst(scheme.count))
    var prefix = "lb"
    if let slash = rest.firstIndex(of: "/") {
      prefix = String(rest[rest.index(after: slash)...])
      rest = rest[..<slash]
      guard !prefix.isEmpty, prefix.count <= 64,
        prefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) })
      else {
        throw Invalid(
          "'\(text)': the prefix must be 1 to 64 letters, digits or - _ . :")
      }
    }
    var host = String(rest)
    var port = 6379
    if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
      guard let parsed = ServerAddress.parsePort(rest[rest.index(after: colon)...]) else {
        throw Invalid("'\(text)': the port must be a number from 1 to 65535")
      }
      port = parsed
      host = String(rest[..<colon])
    }
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    guard !host.isEmpty else { throw Invalid("'\(text)' names no host") }
    self.init(host: host, port: port, prefix: prefix)
  }

  public var description: String {
    let named = host.contains(":") ? "[\(host)]" : host
    return "redis://\(named):\(port)/\(prefix)"
  }

  /// Why a location could not be parsed.
  public struct Invalid: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
  }
}
