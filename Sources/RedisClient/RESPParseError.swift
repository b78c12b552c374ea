/// Why bytes received from Redis are not valid RESP2; the connection cannot continue after one.
public enum RESPParseError: Error, Equatable, Sendable, CustomStringConvertible {
  /// A value starts with a byte that is not one of `+ - : $ *` (RESP3 types included).
  case unknownType(UInt8)
  /// A line ends with CR not followed by LF, or holds a bare LF.
  case badLineEnding
  /// A simple string, error or header line is longer than the limit.
  case lineTooLong(limit: Int)
  /// An integer, bulk length or array count is not a decimal 64-bit integer.
  case badInteger(String)
  /// A bulk length or array count below -1.
  case negativeLength(Int64)
  /// A bulk string longer than the limit.
  case bulkTooLong(length: Int64, limit: Int)
  /// An array with more elements than the limit.
  case arrayTooLong(count: Int64, limit: Int)
  /// Arrays nested deeper than the limit.
  case nestingTooDeep(limit: Int)
  /// A bulk string's bytes are not followed by CR LF.
  case missingBulkTerminator

  public var description: String {
    switch self {
    case .unknownType(let byte): return "unknown RESP type byte 0x\(String(byte, radix: 16))"
    case .badLineEnding: return "line not terminated by CR LF"
    case .lineTooLong(let limit): return "line longer than \(limit) bytes"
    case .badInteger(let text): return "invalid integer '\(text)'"
    case .negativeLength(let value): return "invalid length \(value)"
    case .bulkTooLong(let length, let limit):
      return "bulk string of \(length) bytes exceeds the limit of \(limit)"
    case .arrayTooLong(let count, let limit):
      return "array of \(count) elements exceeds the limit of \(limit)"
    case .nestingTooDeep(let limit): return "arrays nested deeper than \(limit)"
    case .missingBulkTerminator: return "bulk string not followed by CR LF"
    }
  }
}
