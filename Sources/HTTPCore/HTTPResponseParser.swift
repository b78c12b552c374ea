/// A response as a client sees it.
public struct HTTPClientResponse: Sendable {
  public var statusCode: Int
  public var reason: String
  public var headers: HTTPHeaders
  public var body: [UInt8]
  /// 0 for HTTP/1.0, 1 for HTTP/1.1.
  public var minorVersion = 1

  /// Whether the connection may carry another request after this answer (RFC 9112 §9.3): not
  /// if it says `Connection: close`, nor if it is HTTP/1.0 and does not say `keep-alive`.
  public var keepAlive: Bool {
    if minorVersion == 0 { return headers.contains("Connection", token: "keep-alive") }
    return !headers.contains("Connection", token: "close")
  }

  /// The body as UTF-8 text.
  public var text: String { String(decoding: body, as: UTF8.self) }
}

/// An incremental HTTP/1.x response parser for Content-Length framed responses, and for those
/// whose body runs to the close of the connection (no Content-Length: RFC 9112 §6.3).
public struct HTTPResponseParser {
  public let limits: HTTPLimits
  private var scanner = HTTPHeadScanner()
  /// The header buffer of a response already handled, for the next response's fields.
  private var spareHeaders = SpareHeaderBuffer()

  public init(limits: HTTPLimits = HTTPLimits()) {
    var limits = limits
    limits.maxBodyBytes = max(limits.maxBodyBytes, 64 << 20)
    self.limits = limits
  }

  /// Parses the next response from `bytes`; `expectBody` is false for answers to HEAD.
  /// `atEnd`: the server closed the connection after `bytes`, which ends a body sent without
  /// Content-Length; until then such a response needs more.
  public mutating func parse(
    _ bytes: UnsafeRawBufferPointer, expectBody: Bool = true, atEnd: Bool = false
  ) -> ParseResult<HTTPClientResponse> {
    guard let headEnd = scanner.findHeadEnd(bytes, from: 0) else {
      if bytes.count > limits.maxHeadBytes {
        return .failed(HTTPParseError(.badRequest, "response head too large"))
      }
      return .needMore
    }
    // The same limit whether the head came in one read or many.
    if headEnd > limits.maxHeadBytes {
      return .failed(HTTPParseError(.badRequest, "response head too large"))
    }
    let head: (startLine: Range<Int>, headers: HTTPHeaders)
    switch HTTPHeadScanner.split(
      bytes, from: 0, to: headEnd, limits: limits, storage: spareHeaders.take())
    {
    case .success(let value): head = value
    case .failure(let error): return .failed(error)
    }
    // "HTTP/1.1 200 OK"
    let line = head.startLine
    guard line.count >= 12, bytes[line.lowerBound + 8] == 0x20 else {
      return .failed(HTTPParseError(.badRequest, "malformed status line"))
    }
    let minorVersion: Int
    switch HTTPHeadScanner.parseVersion(bytes, line.lowerBound..<(line.lowerBound + 8)) {
    case .success(let value): minorVersion = value
    case .failure(let error): return .failed(error)
    }
    guard let code = Self.statusCode(bytes, at: line.lowerBound + 9),
      (100...599).contains(code), line.count == 12 || bytes[line.lowerBound + 12] == 0x20
    else { return .failed(HTTPParseError(.badRequest, "malformed status code")) }
    let reason =
      line.count > 13 ? HTTPHeadScanner.string(bytes, (line.lowerBound + 13)..<line.upperBound) : ""
    var bodyLength = 0
    if expectBody && code >= 200 && code != 204 && code != 304 {
      if head.headers["Transfer-Encoding"] != nil {
        return .failed(HTTPParseError(.notImplemented, "chunked responses are not supported"))
      }
      switch HTTPHeadScanner.contentLength(head.headers, limits: limits) {
      case .success(let length): bodyLength = length
      case .failure(let error): return .failed(error)
      }
      if bodyLength == 0 && head.headers.withValue(of: "Content-Length", { _ in true }) == nil {
        // No length: the body is all the server sends before it closes the connection.
        bodyLength = bytes.count - headEnd
        if bodyLength > limits.maxBodyBytes {
          return .failed(
            HTTPParseError(.contentTooLarge, "bodies are limited to \(limits.maxBodyBytes) bytes"))
        }
        if !atEnd { return .needMore }
      }
    }
    guard bytes.count >= headEnd + bodyLength else { return .needMore }
    scanner.reset()
    let body = Array(UnsafeRawBufferPointer(rebasing: bytes[headEnd..<(headEnd + bodyLength)]))
    return .complete(
      HTTPClientResponse(
        statusCode: code, reason: reason, headers: head.headers, body: body,
        minorVersion: minorVersion),
      consumed: headEnd + bodyLength)
  }

  /// Takes back the header buffer of a response that was handled, for the next response's
  /// fields (see `SpareHeaderBuffer`).
  public mutating func recycle(_ headers: inout HTTPHeaders) { spareHeaders.keep(&headers) }

  /// The three digits at `start` as a number, or nil if they are not all digits.
  private static func statusCode(_ bytes: UnsafeRawBufferPointer, at start: Int) -> Int? {
    var code = 0
    for index in start..<(start + 3) {
      let byte = bytes[index]
      guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
      code = code * 10 + Int(byte - UInt8(ascii: "0"))
    }
    return code
  }
}
