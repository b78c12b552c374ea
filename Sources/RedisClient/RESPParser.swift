/// The outcome of feeding bytes to a `RESPParser`.
public enum RESPParseResult: Equatable, Sendable {
  /// The bytes so far are a valid prefix of a value; call again with more.
  case needMore
  /// A whole value, and how many bytes at the start of the input it used.
  case complete(RESPValue, consumed: Int)
  /// The input is not valid RESP2.
  case failed(RESPParseError)
}

/// An incremental RESP2 parser, in the spirit of picohttpparser.
///
/// Call `parse(_:)` with the unconsumed input: bytes starting where the current value starts.
/// It answers `.needMore`, or a complete value and how many bytes it used (drop them, then call
/// again for the next pipelined value), or an error. Between calls it remembers how far it got —
/// finished elements of arrays under construction, a bulk string's announced length, how much of
/// an unterminated line it already searched — so input arriving a byte at a time is not rescanned
/// from the start. After `.needMore`, the next call must pass the same bytes with more appended.
/// Sizes are bounded by `Limits`.
public struct RESPParser: Sendable {
  /// Bounds on what the parser accepts.
  public struct Limits: Sendable {
    /// The longest bulk string, in bytes (Redis' own limit is 512 MiB).
    public var maxBulkBytes = 512 << 20
    /// The deepest nesting of arrays (an array of arrays is depth 2; an empty or null array adds
    /// none).
    public var maxDepth = 32
    /// The most elements in one array.
    public var maxArrayCount = 1 << 24
    /// The longest simple string, error or header line, CR LF excluded.
    public var maxLineBytes = 64 << 10

    public init() {}
  }

  private struct Frame: Sendable {
    var remaining: Int
    var elements: [RESPValue]
  }

  public let limits: Limits
  /// Where the next element of the current value starts, relative to the input's start.
  private var position = 0
  /// Where the search for the end of the current line resumes (0: at the line's start).
  private var lineScanned = 0
  /// The length of the bulk string whose header ends at `position`, if one is pending.
  private var pendingBulk: Int?
  /// Arrays under construction, outermost first.
  private var stack: [Frame] = []

  public init(limits: Limits = Limits()) { self.limits = limits }

  /// Forgets any partly parsed value (for example when the connection is replaced).
  public mutating func reset() {
    position = 0
    lineScanned = 0
    pendingBulk = nil
    stack.removeAll()
  }

  /// Parses the next value from `bytes`, the unconsumed input.
  public mutating func parse(_ bytes: UnsafeRawBufferPointer) -> RESPParseResult {
    precondition(bytes.count >= position, "RESPParser: input shrank between calls")
    while true {
      var value: RESPValue
      if let length = pendingBulk {
        guard bytes.count - position >= length + 2 else { return .needMore }
        let end = position + length
        guard bytes[end] == cr, bytes[end + 1] == lf else { return fail(.missingBulkTerminator) }
        value = .bulk(Array(bytes[position..<end]))
        pendingBulk = nil
        position = end + 2
      } else {
        guard position < bytes.count else { return .needMore }
        let lineEnd: Int
        switch findLineEnd(bytes) {
        case .failure(let error): return fail(error)
        case .success(nil): return .needMore
        case .success(let end?): lineEnd = end
        }
        let type = bytes[position]
        let content = UnsafeRawBufferPointer(rebasing: bytes[(position + 1)..<lineEnd])
        let next = lineEnd + 2
        switch type {
        case UInt8(ascii: "+"):
          value = .simple(String(decoding: content, as: UTF8.self))
        case UInt8(ascii: "-"):
          value = .error(String(decoding: content, as: UTF8.self))
        case UInt8(ascii: ":"):
          guard let number = Self.integer(content) else { return fail(.badInteger(text(content))) }
          value = .integer(number)
        case UInt8(ascii: "$"):
          guard let length = Self.integer(content) else { return fail(.badInteger(text(content))) }
          if length == -1 {
            value = .bulk(nil)
          } else if length < -1 {
            return fail(.negativeLength(length))
          } else if length > Int64(limits.maxBulkBytes) {
            return fail(.bulkTooLong(length: length, limit: limits.maxBulkBytes))
          } else {
            pendingBulk = Int(length)
            position = next
            continue
          }
        case UInt8(ascii: "*"):
          guard let count = Self.integer(content) else { return fail(.badInteger(text(content))) }
          if count == -1 {
            value = .array(nil)
          } else if count < -1 {
            return fail(.negativeLength(count))
          } else if count > Int64(limits.maxArrayCount) {
            return fail(.arrayTooLong(count: count, limit: limits.maxArrayCount))
          } else if count == 0 {
            value = .array([])
          } else if stack.count >= limits.maxDepth {
            return fail(.nestingTooDeep(limit: limits.maxDepth))
          } else {
            var elements: [RESPValue] = []
            elements.reserveCapacity(min(Int(count), 1024))
            stack.append(Frame(remaining: Int(count), elements: elements))
            position = next
            continue
          }
        default:
          return fail(.unknownType(type))
        }
        position = next
      }
      // Attach the finished value to the innermost array; finished arrays attach outward.
      while !stack.isEmpty {
        let last = stack.count - 1
        stack[last].elements.append(value)
        stack[last].remaining -= 1
        guard stack[last].remaining == 0 else { break }
        value = .array(stack.removeLast().elements)
      }
      if stack.isEmpty {
        let consumed = position
        reset()
        return .complete(value, consumed: consumed)
      }
    }
  }

  /// The index of the CR ending the line that starts at `position`, nil if it has not arrived.
  /// A line is too long as soon as its bytes pass the limit, whatever follows them: the same
  /// error whether the rest of the line has arrived or not.
  private mutating func findLineEnd(_ bytes: UnsafeRawBufferPointer) -> Result<Int?, RESPParseError>
  {
    var index = max(lineScanned, position + 1)
    while index < bytes.count {
      guard index - position - 1 <= limits.maxLineBytes else {
        return .failure(.lineTooLong(limit: limits.maxLineBytes))
      }
      let byte = bytes[index]
      if byte == cr {
        guard index + 1 < bytes.count else { break }
        guard bytes[index + 1] == lf else { return .failure(.badLineEnding) }
        lineScanned = 0
        return .success(index)
      }
      if byte == lf { return .failure(.badLineEnding) }
      index += 1
    }
    guard index - position - 1 <= limits.maxLineBytes else {
      return .failure(.lineTooLong(limit: limits.maxLineBytes))
    }
    lineScanned = index
    return .success(nil)
  }

  private mutating func fail(_ error: RESPParseError) -> RESPParseResult {
    reset()
    return .failed(error)
  }

  /// A strict decimal integer: an optional `-`, then 1 to 19 digits, within Int64.
  private static func integer(_ bytes: UnsafeRawBufferPointer) -> Int64? {
    var index = 0
    let negative = bytes.first == UInt8(ascii: "-")
    if negative { index = 1 }
    guard index < bytes.count, bytes.count - index <= 19 else { return nil }
    var value: Int64 = 0
    while index < bytes.count {
      let digit = bytes[index] &- UInt8(ascii: "0")
      guard digit < 10 else { return nil }
      // Accumulated with the sign, so that Int64.min parses too.
      let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) =
        negative
        ? times.subtractingReportingOverflow(Int64(digit))
        : times.addingReportingOverflow(Int64(digit))
      guard !overflow1, !overflow2 else { return nil }
      value = sum
      index += 1
    }
    return value
  }

  private func text(_ bytes: UnsafeRawBufferPointer) -> String {
    String(decoding: bytes.prefix(32), as: UTF8.self)
  }
}

private let cr = UInt8(ascii: "\r")
private let lf = UInt8(ascii: "\n")
