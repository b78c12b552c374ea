/// An incremental HTTP/1.x request parser.
///
/// Feed it the unconsumed bytes of a connection, from the start of the next request, each time more
/// arrive. It answers `.needMore` until a whole request (head and Content-Length body) is there,
/// then `.complete` with the number of bytes used; what follows may be a pipelined request. It
/// never blocks and remembers how far it looked, so a request trickling in byte by byte costs
/// linear time.
public struct HTTPRequestParser {
  public let limits: HTTPLimits
  /// The largest body a request may carry, by method and path (its head is parsed first); more
  /// is 413 and the connection closes. By default `limits.maxBodyBytes` for every request.
  public var bodyLimit: @Sendable (_ method: String, _ path: String) -> Int
  private var scanner = HTTPHeadScanner()
  /// How many empty line bytes before the request line were seen already (never rescanned).
  private var skipped = 0
  /// Where the request line ends, once seen, and how far it was looked for (never rescanned).
  private var lineEnd: Int?
  private var lineScanned = 0
  /// A parsed head waiting for its body: the request so far, the head's length and body length.
  private var pending: (request: HTTPRequest, headLength: Int, bodyLength: Int)?
  /// The header buffer of a request already handled, for the next request's fields.
  private var spareHeaders = SpareHeaderBuffer()

  /// The head parsed so far asked to be told to send its body (`Expect: 100-continue`, HTTP/1.1)
  /// and the body has not all arrived: the server answers `100 Continue` (RFC 9110 §10.1.1).
  public var expectsContinue: Bool {
    guard let request = pending?.request, request.minorVersion == 1 else { return false }
    return request.headers["Expect"]?.lowercased() == "100-continue"
  }

  public init(
    limits: HTTPLimits = HTTPLimits(),
    bodyLimit: (@Sendable (_ method: String, _ path: String) -> Int)? = nil
  ) {
    self.limits = limits
    let maxBody = limits.maxBodyBytes
    self.bodyLimit = bodyLimit ?? { _, _ in maxBody }
  }

  /// Parses the next request from `bytes`, which must start where the previous one ended.
  public mutating func parse(_ bytes: UnsafeRawBufferPointer) -> ParseResult<HTTPRequest> {
    if let pending { return completeBody(bytes, pending) }

    // RFC 9112 §2.2: ignore empty lines before the request line. They count toward the head's
    // limit, and bytes already known to be empty are not looked at again.
    var start = min(skipped, bytes.count)
    while start < bytes.count && (bytes[start] == 0x0D || bytes[start] == 0x0A) { start += 1 }
    skipped = start
    if start > limits.maxHeadBytes {
      return .failed(
        HTTPParseError(.badRequest, "more than \(limits.maxHeadBytes) bytes of empty lines"))
    }
    if start == bytes.count { return .needMore }

    // Where the reads happen to end must never change the answer. So the two size limits are
    // judged by where in the byte stream each is first exceeded, as a byte-by-byte reader would
    // see it, and the earlier one wins: the request line (its length without a final CR) or the
    // head as a whole (empty lines before it included).
    let headEnd = scanner.findHeadEnd(bytes, from: start)
    if lineEnd == nil {
      lineEnd = HTTPHeadScanner.lineEnd(
        bytes, from: max(start, lineScanned), limit: headEnd ?? bytes.count)
      lineScanned = bytes.count
    }
    var lineLength = (lineEnd ?? bytes.count) - start
    if lineLength > 0 && bytes[start + lineLength - 1] == 0x0D { lineLength -= 1 }
    let maxLine = limits.maxRequestLineBytes
    // The byte count at which a reader first sees each limit passed, if it is passed at all.
    let linePassedAt =
      lineLength > maxLine ? start + maxLine + 1 + (bytes[start + maxLine] == 0x0D ? 1 : 0) : nil
    let headPassedAt =
      (headEnd.map { $0 > limits.maxHeadBytes } ?? (bytes.count > limits.maxHeadBytes))
      ? limits.maxHeadBytes + 1 : nil
    if let linePassedAt, linePassedAt <= (headPassedAt ?? Int.max) {
      return .failed(HTTPParseError(.uriTooLong, "request line longer than \(maxLine) bytes"))
    }
    if headPassedAt != nil {
      return .failed(
        HTTPParseError(.headerFieldsTooLarge, "head longer than \(limits.maxHeadBytes) bytes"))
    }
    guard let headEnd else { return .needMore }
    scanner.reset()
    skipped = 0
    lineEnd = nil
    lineScanned = 0

    let head: (startLine: Range<Int>, headers: HTTPHeaders)
    switch HTTPHeadScanner.split(
      bytes, from: start, to: headEnd, limits: limits, storage: spareHeaders.take())
    {
    case .success(let value): head = value
    case .failure(let error): return .failed(error)
    }
    let request: HTTPRequest
    switch Self.parseRequestLine(bytes, head.startLine, headers: head.headers) {
    case .success(let value): request = value
    case .failure(let error): return .failed(error)
    }
    switch Self.validate(request.headers, minorVersion: request.minorVersion, limits: limits) {
    case .failure(let error):
      return .failed(error)
    case .success(0):
      return .complete(request, consumed: headEnd)
    case .success(let length) where length > bodyLimit(request.method, request.path):
      let allowed = bodyLimit(request.method, request.path)
      return .failed(
        HTTPParseError(
          .contentTooLarge,
          allowed == 0
            ? "\(request.method) \(request.path) takes no body"
            : "body longer than \(allowed) bytes"))
    case .success(let length):
      let waiting = (request, headEnd, length)
      pending = waiting
      return completeBody(bytes, waiting)
    }
  }

  /// Takes back the header buffer of a request that was handled, for the next request's fields
  /// (see `SpareHeaderBuffer`).
  public mutating func recycle(_ headers: inout HTTPHeaders) { spareHeaders.keep(&headers) }

  private mutating func completeBody(
    _ bytes: UnsafeRawBufferPointer,
    _ waiting: (request: HTTPRequest, headLength: Int, bodyLength: Int)
  ) -> ParseResult<HTTPRequest> {
    let end = waiting.headLength + waiting.bodyLength
    guard bytes.count >= end else { return .needMore }
    var request = waiting.request
    request.body = Array(UnsafeRawBufferPointer(rebasing: bytes[waiting.headLength..<end]))
    pending = nil
    return .complete(request, consumed: end)
  }

  private static func parseRequestLine(
    _ bytes: UnsafeRawBufferPointer, _ line: Range<Int>, headers: HTTPHeaders
  ) -> Result<HTTPRequest, HTTPParseError> {
    // METHOD SP target SP version: exactly two spaces, found without building a list.
    let first = HTTPHeadScanner.find(0x20, in: bytes, from: line.lowerBound, limit: line.upperBound)
    let second = first.flatMap {
      HTTPHeadScanner.find(0x20, in: bytes, from: $0 + 1, limit: line.upperBound)
    }
    let third = second.flatMap {
      HTTPHeadScanner.find(0x20, in: bytes, from: $0 + 1, limit: line.upperBound)
    }
    let spaces = (first: first ?? -1, second: third == nil ? second ?? -1 : -2)
    guard spaces.first > line.lowerBound, spaces.second > spaces.first + 1,
      spaces.second + 1 < line.upperBound
    else {
      return .failure(HTTPParseError(.badRequest, "request line must be 'METHOD target HTTP/1.x'"))
    }
    let parts = (
      line.lowerBound..<spaces.first, (spaces.first + 1)..<spaces.second,
      (spaces.second + 1)..<line.upperBound
    )
    guard parts.0.allSatisfy({ HTTPHeadScanner.isTokenByte(bytes[$0]) }) else {
      return .failure(HTTPParseError(.badRequest, "invalid method"))
    }
    guard Self.isVisibleASCII(bytes, parts.1) else {
      return .failure(HTTPParseError(.badRequest, "invalid character in the request target"))
    }
    // A fragment is the client's own (RFC 9110 §7.1): one sent would end up in a redirect.
    guard
      HTTPHeadScanner.find(
        UInt8(ascii: "#"), in: bytes, from: parts.1.lowerBound, limit: parts.1.upperBound) == nil
    else {
      return .failure(HTTPParseError(.badRequest, "a request target has no fragment ('#')"))
    }
    let minorVersion: Int
    switch HTTPHeadScanner.parseVersion(bytes, parts.2) {
    case .success(let value): minorVersion = value
    case .failure(let error): return .failure(error)
    }
    let method = Self.method(bytes, parts.0)
    if bytes[parts.1.lowerBound] == UInt8(ascii: "/") {
      // The origin form: nearly every request.
      let target = HTTPHeadScanner.string(bytes, parts.1)
      let queryMark = HTTPHeadScanner.find(
        UInt8(ascii: "?"), in: bytes, from: parts.1.lowerBound, limit: parts.1.upperBound)
      return .success(
        HTTPRequest(
          method: method, target: target, queryMark: queryMark.map { $0 - parts.1.lowerBound },
          minorVersion: minorVersion, headers: headers))
    }
    guard let form = otherForm(HTTPHeadScanner.string(bytes, parts.1), method: method) else {
      return .failure(HTTPParseError(.badRequest, "request target must start with '/'"))
    }
    var request = HTTPRequest(
      method: method, target: form.target, minorVersion: minorVersion, headers: headers)
    if let authority = form.authority {
      guard authority.utf8.withContiguousStorageIfAvailable({ isValidHost($0) }) == true else {
        return .failure(HTTPParseError(.badRequest, "invalid host in the request target"))
      }
      request.authority = authority
    }
    return .success(request)
  }

  /// Whether every byte in `range` is visible ASCII (0x21…0x7E), as a request target's must be.
  /// Eight bytes at a time: a word has a byte below 0x21 exactly when subtracting 0x21 from each
  /// byte borrows into a byte whose high bit was clear, and one above 0x7E exactly when adding 1
  /// to each byte, or the byte itself, sets a high bit.
  static func isVisibleASCII(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highBits: UInt64 = 0x8080_8080_8080_8080
    var index = range.lowerBound
    while index + 8 <= range.upperBound {
      let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
      let below = (word &- ones &* 0x21) & ~word & highBits
      let above = ((word &+ ones) | word) & highBits
      if below | above != 0 { return false }
      index += 8
    }
    while index < range.upperBound {
      guard bytes[index] > 0x20 && bytes[index] < 0x7F else { return false }
      index += 1
    }
    return true
  }

  /// The method's name: the common ones as constants, others read from the bytes.
  private static func method(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
    let name = UnsafeRawBufferPointer(rebasing: bytes[range])
    switch name.first {
    case UInt8(ascii: "G") where equal(name, "GET"): return "GET"
    case UInt8(ascii: "H") where equal(name, "HEAD"): return "HEAD"
    case UInt8(ascii: "P") where equal(name, "POST"): return "POST"
    case UInt8(ascii: "P") where equal(name, "PUT"): return "PUT"
    case UInt8(ascii: "D") where equal(name, "DELETE"): return "DELETE"
    case UInt8(ascii: "O") where equal(name, "OPTIONS"): return "OPTIONS"
    default: return HTTPHeadScanner.string(bytes, range)
    }
  }

  private static func equal(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
    text.withUTF8Buffer { bytes.elementsEqual($0) }
  }

  /// A target in absolute form (`http://host:port/path?query`) as its origin form and its
  /// authority (`host:port`), or the asterisk form of OPTIONS; nil for anything else.
  private static func otherForm(_ target: String, method: String)
    -> (target: String, authority: String?)?
  {
    if target == "*" && method == "OPTIONS" { return (target, nil) }
    for scheme in ["http://", "https://"] where target.lowercased().hasPrefix(scheme) {
      let rest = target.dropFirst(scheme.count)
      guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else {
        return ("/", String(rest))
      }
      let tail = rest[slash...]
      return (tail.hasPrefix("?") ? "/" + tail : String(tail), String(rest[..<slash]))
    }
    return nil
  }

  /// Checks the rules of RFC 9112 that a request's headers must follow, on their bytes, in the
  /// same pass that reads the body's length (Content-Length). An Expect field whose value is not
  /// exactly `100-continue` (in any case) asks for something no route here does: `417` (RFC 9110
  /// §10.1.1), once the message's framing is known to be sound.
  private static func validate(_ headers: HTTPHeaders, minorVersion: Int, limits: HTTPLimits)
    -> Result<Int, HTTPParseError>
  {
    var hosts = 0
    var validHost = true
    var hasTransferEncoding = false
    var hasContentLength = false
    var lengths = HTTPHeadScanner.ContentLengthFields(limits: limits)
    var unmetExpectation = false
    headers.forEachField { name, value in
      if HTTPHeaders.equalsIgnoringCase(name, "Host") {
        hosts += 1
        if hosts == 1 { validHost = isValidHost(value) }
      } else if HTTPHeaders.equalsIgnoringCase(name, "Transfer-Encoding") {
        hasTransferEncoding = true
      } else if HTTPHeaders.equalsIgnoringCase(name, "Content-Length") {
        hasContentLength = true
        _ = lengths.add(value)  // (past a disagreement its outcome stays; the walk goes on)
      } else if HTTPHeaders.equalsIgnoringCase(name, "Expect"),
        !HTTPHeaders.equalsIgnoringCase(value, "100-continue")
      {
        unmetExpectation = true
      }
      return true
    }
    if hosts > 1 { return .failure(HTTPParseError(.badRequest, "more than one Host header")) }
    if minorVersion == 1 && hosts == 0 {
      return .failure(HTTPParseError(.badRequest, "HTTP/1.1 requests need a Host header"))
    }
    if !validHost { return .failure(HTTPParseError(.badRequest, "invalid Host header")) }
    if hasTransferEncoding {
      if hasContentLength {
        return .failure(HTTPParseError(.badRequest, "both Transfer-Encoding and Content-Length"))
      }
      return .failure(
        HTTPParseError(.notImplemented, "Transfer-Encoding is not supported; send Content-Length"))
    }
    let outcome = lengths.outcome
    if unmetExpectation, case .success = outcome {
      return .failure(
        HTTPParseError(.expectationFailed, "the only expectation supported is 100-continue"))
    }
    return outcome
  }

  /// A Host value's bytes (RFC 9110 §7.2, RFC 3986 §3.2.2): a name or IPv4 address (letters,
  /// digits, `.`, `-`, `_`), or an IPv6 address in brackets (hex digits, `:` and `.`), then an
  /// optional `:` and port (digits, at most 65535).
  static func isValidHost(_ host: UnsafeBufferPointer<UInt8>) -> Bool {
    guard !host.isEmpty, host.count <= 255 else { return false }
    var index = 0
    if host[0] == UInt8(ascii: "[") {
      index = 1
      var hasColon = false
      while index < host.count, host[index] != UInt8(ascii: "]") {
        switch host[index] {
        case UInt8(ascii: ":"): hasColon = true
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
          UInt8(ascii: "A")...UInt8(ascii: "F"), UInt8(ascii: "."):
          break
        default: return false
        }
        index += 1
      }
      guard index < host.count, hasColon else { return false }
      index += 1
    } else {
      while index < host.count, host[index] != UInt8(ascii: ":") {
        switch host[index] {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
          UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"),
          UInt8(ascii: "_"):
          index += 1
        default: return false
        }
      }
      guard index > 0 else { return false }
    }
    guard index < host.count else { return true }
    // `:` then the port: digits, possibly none (RFC 3986: `port = *DIGIT`).
    guard host[index] == UInt8(ascii: ":"), host.count - index - 1 <= 5 else { return false }
    var port = 0
    for byte in host[(index + 1)...] {
      guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return false }
      port = port * 10 + Int(byte - UInt8(ascii: "0"))
    }
    return port <= 65535
  }
}
