/// One RESP2 value: what Redis answers, and (as an array of bulk strings) what it is sent.
///
/// RESP2 has five types: simple strings (`+OK`), errors (`-ERR …`), integers (`:42`), bulk
/// strings (`$3 foo`, or `$-1` for null) and arrays (`*2 …`, or `*-1` for null).
public enum RESPValue: Equatable, Hashable, Sendable {
  /// A simple string (`+`): short, with no CR or LF, such as `OK` or `PONG`.
  case simple(String)
  /// An error reply (`-`): its message, starting with a code such as `ERR` or `NOSCRIPT`.
  case error(String)
  /// An integer (`:`).
  case integer(Int64)
  /// A bulk string (`$`): binary-safe bytes, or nil for the null bulk string (`$-1`).
  case bulk([UInt8]?)
  /// An array (`*`) of values, or nil for the null array (`*-1`).
  case array([RESPValue]?)

  /// A bulk string holding the UTF-8 of `text`.
  public static func bulk(_ text: String) -> RESPValue { .bulk(Array(text.utf8)) }

  /// Whether this is the null bulk string or the null array (a missing key, a timed-out BLPOP).
  public var isNull: Bool {
    switch self {
    case .bulk(nil), .array(nil): return true
    default: return false
    }
  }

  /// An integer reply, or a simple or bulk string holding a decimal integer (such as GET of a
  /// counter); nil otherwise.
  public var int: Int64? {
    switch self {
    case .integer(let value): return value
    case .simple(let text): return Int64(text)
    case .bulk(let bytes?): return Int64(String(decoding: bytes, as: UTF8.self))
    default: return nil
    }
  }

  /// A simple string, or a bulk string decoded as UTF-8; nil for nulls, errors, integers, arrays.
  public var string: String? {
    switch self {
    case .simple(let text): return text
    case .bulk(let bytes?): return String(decoding: bytes, as: UTF8.self)
    default: return nil
    }
  }

  /// The bytes of a bulk or simple string; nil otherwise.
  public var bytes: [UInt8]? {
    switch self {
    case .simple(let text): return Array(text.utf8)
    case .bulk(let bytes?): return bytes
    default: return nil
    }
  }

  /// The elements of a non-null array; nil otherwise.
  public var array: [RESPValue]? {
    if case .array(let elements?) = self { return elements }
    return nil
  }
}

extension RESPValue: CustomStringConvertible {
  /// A readable rendering for logs and test failures, such as `["list", "x"]` or `(nil)`.
  public var description: String {
    switch self {
    case .simple(let text): return text
    case .error(let message): return "(error) \(message)"
    case .integer(let value): return "(integer) \(value)"
    case .bulk(nil), .array(nil): return "(nil)"
    case .bulk(let bytes?): return "\"\(String(decoding: bytes, as: UTF8.self))\""
    case .array(let elements?):
      return "[" + elements.map(\.description).joined(separator: ", ") + "]"
    }
  }
}
