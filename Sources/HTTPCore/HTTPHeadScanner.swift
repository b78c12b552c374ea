import Glibc

/// The part of parsing that requests and responses share: finding where the head ends, even
/// across many partial reads, and splitting it into a start line and header fields.
struct HTTPHeadScanner {
  /// How far the previous calls looked without finding the end of the head.
  private var scanned = 0

  /// Forgets progress, for the next message.
  mutating func reset() { scanned = 0 }

  /// The offset just past the blank line that ends the head, or nil if it is not there yet.
  /// Accepts CRLF and bare LF line ends.
  mutating func findHeadEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
    var index = max(start, scanned - 2)
    let count = bytes.count
    while let lf = Self.lineEnd(bytes, from: index, limit: count) {
      if lf + 1 < count && bytes[lf + 1] == 0x0A { return lf + 2 }
      if lf + 2 < count && bytes[lf + 1] == 0x0D && bytes[lf + 2] == 0x0A { return lf + 3 }
      index = lf + 1
    }
    scanned = count
    return nil
  }

  /// The offset of the first LF at or after `start` and before `limit`, or nil.
  static func lineEnd(_ bytes: UnsafeRawBufferPointer, from start: Int, limit: Int) -> Int? {
    find(0x0A, in: bytes, from: start, limit: limit)
  }

  /// The offset of the first `byte` at or after `start` and before `limit`, or nil (`memchr`).
  static func find(_ byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int, limit: Int)
    -> Int?
  {
    guard start < limit, let base = bytes.baseAddress,
      let found = memchr(base + start, Int32(byte), limit - start)
    else { return nil }
    return base.distance(to: UnsafeRawPointer(found))
  }

  /// Splits a head into its start line and header fields, in one pass over its lines (no list
  /// of lines is built). Too many fields is the answer even if a field before the limit is
  /// malformed; otherwise the first malformed field is. The fields are stored in `storage`, an
  /// empty buffer (an earlier message's, with its capacity: see `SpareHeaderBuffer`).
  static func split(
    _ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, limits: HTTPLimits,
    storage: consuming [UInt8]
  ) -> Result<(startLine: Range<Int>, headers: HTTPHeaders), HTTPParseError> {
    var startLine: Range<Int>?
    var fieldCount = 0
    var storedCount = 0
    var firstError: HTTPParseError?
    // The fields are written into scratch space (on the stack for a common head), sized for the
    // worst case: a stored field takes at most three times the bytes of its line (8 bytes of
    // lengths for the 3 of `a:\n`). Then `storage` takes them at once.
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 3 * (end - start)) { scratch in
      var written = 0
      var lineStart = start
      while lineStart < end, let lf = lineEnd(bytes, from: lineStart, limit: end) {
        var lineStop = lf
        if lineStop > lineStart && bytes[lineStop - 1] == 0x0D { lineStop -= 1 }
        if lineStop == lineStart { break }  // the blank line
        let line = lineStart..<lineStop
        lineStart = lf + 1
        guard startLine != nil else {
          startLine = line
          continue
        }
        fieldCount += 1
        // Past a malformed field or the limit only the count matters.
        guard firstError == nil, fieldCount <= limits.maxHeaderCount else { continue }
        switch parseField(bytes, line) {
        case .success(let field):
          written = HTTPHeaders.store(
            name: UnsafeRawBufferPointer(rebasing: bytes[field.name]),
            value: UnsafeRawBufferPointer(rebasing: bytes[field.value]), into: scratch,
            at: written)
          storedCount += 1
        case .failure(let error): firstError = error
        }
      }
      guard written > 0 else { return }
      storage.reserveCapacity(written)
      storage.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[..<written]))
    }
    let headers = HTTPHeaders(storage: storage, count: storedCount)
    guard let startLine else {
      return .failure(HTTPParseError(.badRequest, "empty request"))
    }
    if fieldCount > limits.maxHeaderCount {
      return .failure(
        HTTPParseError(.headerFieldsTooLarge, "more than \(limits.maxHeaderCount) header fields"))
    }
    if let firstError { return .failure(firstError) }
    return .success((startLine, headers))
  }

  /// The name's and the value's ranges of a header line (the value without surrounding spaces).
  private static func parseField(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>)
    -> Result<(name: Range<Int>, value: Range<Int>), HTTPParseError>
  {
    if bytes[line.lowerBound] == 0x20 || bytes[line.lowerBound] == 0x09 {
      return .failure(HTTPParseError(.badRequest, "folded header lines are not allowed"))
    }
    var colon = line.lowerBound
    while colon < line.upperBound && bytes[colon] != 0x3A {
      guard isTokenByte(bytes[colon]) else {
        return .failure(HTTPParseError(.badRequest, "invalid character in a header name"))
      }
      colon += 1
    }
    guard colon < line.upperBound, colon > line.lowerBound else {
      return .failure(HTTPParseError(.badRequest, "header line without a name and a colon"))
    }
    var valueStart = colon + 1
    var valueEnd = line.upperBound
    while valueStart < valueEnd && isSpace(bytes[valueStart]) { valueStart += 1 }
    while valueEnd > valueStart && isSpace(bytes[valueEnd - 1]) { valueEnd -= 1 }
    for index in valueStart..<valueEnd where !isFieldValueByte(bytes[index]) {
      return .failure(HTTPParseError(.badRequest, "invalid character in a header value"))
    }
    return .success((line.lowerBound..<colon, valueStart..<valueEnd))
  }

  static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
    String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
  }

  @inline(__always) static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

  /// RFC 9110 tchar.
  @inline(__always) static func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"):
      return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"),
      UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"),
      UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
      UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
      return true
    default:
      return false
    }
  }

  /// VCHAR, obs-text, SP and HTAB: anything but control characters.
  @inline(__always) static func isFieldValueByte(_ byte: UInt8) -> Bool {
    byte >= 0x20 && byte != 0x7F || byte == 0x09
  }

  /// Parses `HTTP/1.0` or `HTTP/1.1` into its minor version.
  static func parseVersion(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>)
    -> Result<Int, HTTPParseError>
  {
    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    let start = range.lowerBound
    guard range.count == 8,
      bytes[start] == UInt8(ascii: "H"), bytes[start + 1] == UInt8(ascii: "T"),
      bytes[start + 2] == UInt8(ascii: "T"), bytes[start + 3] == UInt8(ascii: "P"),
      bytes[start + 4] == UInt8(ascii: "/"),
      isDigit(bytes[start + 5]), bytes[start + 6] == UInt8(ascii: "."), isDigit(bytes[start + 7])
    else { return .failure(HTTPParseError(.badRequest, "malformed HTTP version")) }
    let major = bytes[start + 5]
    let minor = bytes[start + 7]
    guard major == UInt8(ascii: "1"), minor <= UInt8(ascii: "1") else {
      return .failure(HTTPParseError(.versionNotSupported, "only HTTP/1.0 and HTTP/1.1 are served"))
    }
    return .success(Int(minor - UInt8(ascii: "0")))
  }

  /// The body length from Content-Length (0 when absent), or why it is unusable.
  static func contentLength(_ headers: HTTPHeaders, limits: HTTPLimits) -> Result<
    Int, HTTPParseError
  > {
    // One pass over the fields' bytes, building nothing: every message comes through here.
    var lengths = ContentLengthFields(limits: limits)
    headers.forEachField { name, value in
      guard HTTPHeaders.equalsIgnoringCase(name, "Content-Length") else { return true }
      return lengths.add(value)
    }
    return lengths.outcome
  }

  /// A message's Content-Length fields, taken one at a time as its fields are walked: repeated
  /// fields must all say the same, and the first is then judged. The first value's bytes are
  /// kept, so the walk must not outlive the fields.
  struct ContentLengthFields {
    let limits: HTTPLimits
    /// The length (0 without the field), or why the fields are refused.
    private(set) var outcome: Result<Int, HTTPParseError> = .success(0)
    private var first: UnsafeBufferPointer<UInt8>?

    init(limits: HTTPLimits) { self.limits = limits }

    /// Takes one value; false once the fields disagree (the outcome is then final).
    mutating func add(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
      guard let first else {
        first = value
        outcome = parseLength(value, limits: limits)
        return true
      }
      guard first.elementsEqual(value) else {
        outcome = .failure(invalidLength)
        return false
      }
      return true
    }
  }

  private static var invalidLength: HTTPParseError {
    HTTPParseError(.badRequest, "invalid Content-Length")
  }

  /// A Content-Length value: 1 to 18 digits, at most the body limit.
  private static func parseLength(
    _ digits: UnsafeBufferPointer<UInt8>, limits: HTTPLimits
  ) -> Result<Int, HTTPParseError> {
    guard !digits.isEmpty, digits.count <= 18 else { return .failure(invalidLength) }
    var length = 0
    for digit in digits {
      guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else {
        return .failure(invalidLength)
      }
      length = length * 10 + Int(digit - UInt8(ascii: "0"))
    }
    guard length <= limits.maxBodyBytes else {
      return .failure(
        HTTPParseError(.contentTooLarge, "bodies are limited to \(limits.maxBodyBytes) bytes"))
    }
    return .success(length)
  }
}
