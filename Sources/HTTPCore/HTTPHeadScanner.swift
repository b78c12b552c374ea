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
    while index < count {
      if bytes[index] == 0x0A {
        if index + 1 < count && bytes[index + 1] == 0x0A { return index + 2 }
        if index + 2 < count && bytes[index + 1] == 0x0D && bytes[index + 2] == 0x0A {
          return index + 3
        }
      }
      index += 1
    }
    scanned = count
    return nil
  }

  /// The offset of the first LF at or after `start`, or nil.
  static func lineEnd(_ bytes: UnsafeRawBufferPointer, from start: Int, limit: Int) -> Int? {
    var index = start
    while index < limit {
      if bytes[index] == 0x0A { return index }
      index += 1
    }
    return nil
  }

  /// Splits a head into its start line and header fields, in one pass over its lines (no list
  /// of lines is built). Too many fields is the answer even if a field before the limit is
  /// malformed; otherwise the first malformed field is.
  static func split(
    _ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, limits: HTTPLimits
  ) -> Result<(startLine: Range<Int>, headers: HTTPHeaders), HTTPParseError> {
    var startLine: Range<Int>?
    var headers = HTTPHeaders()
    var fieldCount = 0
    var firstError: HTTPParseError?
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
      case .success(let field): headers.add(field.name, field.value)
      case .failure(let error): firstError = error
      }
    }
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

  private static func parseField(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>)
    -> Result<(name: String, value: String), HTTPParseError>
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
    return .success(
      (string(bytes, line.lowerBound..<colon), string(bytes, valueStart..<valueEnd)))
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
      zip(start..<(start + 5), "HTTP/".utf8).allSatisfy({ bytes[$0] == $1 }),
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
    // One pass over the fields, building nothing: every request comes through here.
    var value: String?
    for field in headers where HTTPHeaders.equalsIgnoringCase(field.name, "Content-Length") {
      guard value == nil || value == field.value else {
        return .failure(HTTPParseError(.badRequest, "invalid Content-Length"))
      }
      value = field.value
    }
    guard let first = value else { return .success(0) }
    guard !first.isEmpty, first.utf8.count <= 18,
      first.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
      let length = Int(first)
    else { return .failure(HTTPParseError(.badRequest, "invalid Content-Length")) }
    guard length <= limits.maxBodyBytes else {
      return .failure(
        HTTPParseError(.contentTooLarge, "bodies are limited to \(limits.maxBodyBytes) bytes"))
    }
    return .success(length)
  }
}
