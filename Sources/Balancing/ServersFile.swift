import Foundation

/// The pool as written in servers.json: `{"available_servers": ["5001", 5002, "host:5003"]}`.
public struct ServersFile: Equatable, Sendable {
  /// Why a servers.json cannot be used; the message names the problem for a person.
  public struct Invalid: Error, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { message }
  }

  public var servers: [ServerAddress]

  public init(servers: [ServerAddress]) { self.servers = servers }

  /// The default file: five local servers, 5001 to 5005.
  public static let standard = ServersFile(servers: (5001...5005).map { ServerAddress(port: $0) })

  /// Reads and validates the file at `path`; errors start with the path.
  public static func load(path: String) throws(Invalid) -> ServersFile {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw Invalid(message: "\(path): cannot read the file")
    }
    do {
      return try parse(data)
    } catch {
      throw Invalid(message: "\(path): \(error.message)")
    }
  }

  /// Validates JSON text: an object whose `available_servers` is a non-empty list of distinct
  /// ports (strings or numbers, 1–65535) or `host:port` strings.
  public static func parse(_ data: Data) throws(Invalid) -> ServersFile {
    let root: Any
    do {
      root = try JSONSerialization.jsonObject(with: data)
    } catch {
      throw Invalid(message: "not valid JSON")
    }
    guard let object = root as? [String: Any] else {
      throw Invalid(message: "expected a JSON object with the key \"available_servers\"")
    }
    guard let value = object["available_servers"] else {
      throw Invalid(message: "missing the key \"available_servers\"")
    }
    guard let entries = value as? [Any] else {
      throw Invalid(message: "\"available_servers\" must be a list")
    }
    guard !entries.isEmpty else { throw Invalid(message: "\"available_servers\" is empty") }
    var servers: [ServerAddress] = []
    for (index, entry) in entries.enumerated() {
      guard let server = address(entry) else {
        throw Invalid(
          message:
            "entry \(index + 1) (\(describe(entry))) is not a port from 1 to 65535 or host:port")
      }
      if servers.contains(server) {
        throw Invalid(message: "entry \(index + 1) (\(server)) is listed twice")
      }
      servers.append(server)
    }
    return ServersFile(servers: servers)
  }

  /// The JSON text of this pool, ports as strings as the original wrote them.
  public var json: String {
    let entries = servers.map { "\"\($0)\"" }.joined(separator: ", ")
    return "{\"available_servers\": [\(entries)]}\n"
  }

  private static func address(_ entry: Any) -> ServerAddress? {
    if let text = entry as? String { return ServerAddress(parsing: text) }
    // JSON true/false also bridge to Int; they are not ports.
    guard !(entry is Bool), let port = entry as? Int, (1...65535).contains(port) else { return nil }
    return ServerAddress(port: port)
  }

  private static func describe(_ entry: Any) -> String {
    if let text = entry as? String { return "\"\(text)\"" }
    if entry is NSNull { return "null" }
    return "\(entry)"
  }
}
