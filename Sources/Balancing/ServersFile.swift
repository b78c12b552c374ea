import Foundation

/// One server as listed in servers.json: an address, and optionally a label (`"S4"`).
public struct ServerEntry: Equatable, Sendable {
  public var name: String?
  public var address: ServerAddress

  public init(name: String? = nil, address: ServerAddress) {
    self.name = name
    self.address = address
  }

  /// How the server is shown in /rep: its label, else its address.
  public var displayName: String { name ?? address.description }
}

/// The pool as written in servers.json:
/// `{"available_servers": ["5001", 5002, "host:5003", {"name": "S4", "port": 5006}]}`.
public struct ServersFile: Equatable, Sendable {
  /// Why a servers.json cannot be used; the message names the problem for a person.
  public struct Invalid: Error, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { message }
  }

  public var entries: [ServerEntry]

  public init(entries: [ServerEntry]) { self.entries = entries }

  public init(servers: [ServerAddress]) { entries = servers.map { ServerEntry(address: $0) } }

  /// The addresses, in order.
  public var servers: [ServerAddress] { entries.map(\.address) }

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
  /// ports (strings or numbers, 1–65535), `host:port` strings, or `{"name": …, "port": …}`.
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
    guard let list = value as? [Any] else {
      throw Invalid(message: "\"available_servers\" must be a list")
    }
    guard !list.isEmpty else { throw Invalid(message: "\"available_servers\" is empty") }
    var entries: [ServerEntry] = []
    for (index, item) in list.enumerated() {
      guard let entry = entry(item) else {
        throw Invalid(
          message:
            "entry \(index + 1) (\(describe(item))) is not a port from 1 to 65535, host:port, or {\"name\": …, \"port\": …}"
        )
      }
      if entries.contains(where: { $0.address == entry.address }) {
        throw Invalid(message: "entry \(index + 1) (\(entry.address)) is listed twice")
      }
      if let name = entry.name, entries.contains(where: { $0.displayName == name }) {
        throw Invalid(message: "entry \(index + 1): the name \"\(name)\" is used twice")
      }
      entries.append(entry)
    }
    return ServersFile(entries: entries)
  }

  /// The JSON text of this pool: plain ports as strings, as the original wrote them; labelled
  /// servers as objects.
  public var json: String {
    let items = entries.map { entry -> String in
      guard let name = entry.name else { return "\"\(entry.address)\"" }
      let host = entry.address.host.map { ", \"host\": \"\($0)\"" } ?? ""
      return "{\"name\": \(Self.quoted(name))\(host), \"port\": \(entry.address.port)}"
    }
    return "{\"available_servers\": [\(items.joined(separator: ", "))]}\n"
  }

  /// Writes the file atomically: a temporary file beside it, then a rename.
  public func write(to path: String) throws {
    let temporary = path + ".tmp-\(getpid())"
    try Data(json.utf8).write(to: URL(fileURLWithPath: temporary))
    guard rename(temporary, path) == 0 else {
      let code = errno
      unlink(temporary)
      throw Invalid(message: "\(path): cannot replace the file: \(String(cString: strerror(code)))")
    }
  }

  /// A JSON string literal.
  static func quoted(_ text: String) -> String {
    let data = try? JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed])
    let array = data.map { String(decoding: $0, as: UTF8.self) } ?? "[\"\"]"
    return String(array.dropFirst().dropLast())
  }

  /// Whether `name` may label a server: 1–64 printable characters that do not look like an address.
  public static func isValidName(_ name: String) -> Bool {
    !name.isEmpty && name.count <= 64 && !looksLikeAddress(name)
      && name.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F }
  }

  /// Whether `text` is written as a port or `host:port`, whether or not the port is one: `5001`,
  /// but also `70000`, `0` or `host:0`, which are mistakes in an address, not labels.
  public static func looksLikeAddress(_ text: String) -> Bool {
    let port = text.split(separator: ":", omittingEmptySubsequences: false).last ?? ""
    return ServerAddress(parsing: text) != nil
      || (!port.isEmpty && port.allSatisfy { $0.isASCII && $0.isNumber })
  }

  private static func entry(_ item: Any) -> ServerEntry? {
    if let text = item as? String {
      return ServerAddress(parsing: text).map { ServerEntry(address: $0) }
    }
    if let object = item as? [String: Any] {
      guard Set(object.keys).isSubset(of: ["name", "port", "host"]),
        let name = object["name"] as? String, isValidName(name),
        let port = port(object["port"] as Any)
      else { return nil }
      var host: String?
      if let value = object["host"] {
        guard let text = value as? String, let address = ServerAddress(parsing: "\(text):\(port)")
        else { return nil }
        host = address.host
      }
      return ServerEntry(name: name, address: ServerAddress(host: host, port: port))
    }
    return port(item).map { ServerEntry(address: ServerAddress(port: $0)) }
  }

  private static func port(_ value: Any) -> Int? {
    if let text = value as? String { return ServerAddress.parsePort(Substring(text)) }
    // JSON true/false also bridge to Int, and so does a number written with a fraction or an
    // exponent whose value is whole (48101.0, 4.8101e4): none of them is a port.
    guard !isJSONBoolean(value), !isJSONFractional(value), let port = value as? Int,
      (1...65535).contains(port)
    else {
      return nil
    }
    return port
  }

  /// Whether a number from JSONSerialization was written with a fraction or an exponent (read as
  /// a floating-point or decimal number, even when its value is whole).
  static func isJSONFractional(_ value: Any) -> Bool {
    guard let number = value as? NSNumber else { return false }
    return ["d", "f"].contains(String(cString: number.objCType))
  }

  /// Whether a value from JSONSerialization was `true` or `false` (which also bridge to numbers,
  /// and the numbers 0 and 1 to Bool, so `is Bool` cannot tell).
  static func isJSONBoolean(_ value: Any) -> Bool {
    guard let number = value as? NSNumber else { return false }
    return String(cString: number.objCType) == "c"
  }

  private static func describe(_ item: Any) -> String {
    if let text = item as? String { return "\"\(text)\"" }
    if item is NSNull { return "null" }
    if isJSONBoolean(item), let flag = item as? Bool { return flag ? "true" : "false" }
    if item is [String: Any] { return "an object" }
    if item is [Any] { return "a list" }
    return "\(item)"
  }
}
