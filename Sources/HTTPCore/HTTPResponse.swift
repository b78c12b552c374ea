/// A status code and its reason phrase.
public struct HTTPStatus: Sendable, Equatable {
  public let code: Int
  public let reason: String

  public init(_ code: Int, _ reason: String) {
    self.code = code
    self.reason = reason
  }

  public static let ok = HTTPStatus(200, "OK")
  public static let noContent = HTTPStatus(204, "No Content")
  public static let found = HTTPStatus(302, "Found")
  public static let badRequest = HTTPStatus(400, "Bad Request")
  public static let forbidden = HTTPStatus(403, "Forbidden")
  public static let notFound = HTTPStatus(404, "Not Found")
  public static let methodNotAllowed = HTTPStatus(405, "Method Not Allowed")
  public static let requestTimeout = HTTPStatus(408, "Request Timeout")
  public static let conflict = HTTPStatus(409, "Conflict")
  public static let contentTooLarge = HTTPStatus(413, "Content Too Large")
  public static let uriTooLong = HTTPStatus(414, "URI Too Long")
  public static let expectationFailed = HTTPStatus(417, "Expectation Failed")
  public static let tooManyRequests = HTTPStatus(429, "Too Many Requests")
  public static let headerFieldsTooLarge = HTTPStatus(431, "Request Header Fields Too Large")
  public static let internalServerError = HTTPStatus(500, "Internal Server Error")
  public static let notImplemented = HTTPStatus(501, "Not Implemented")
  public static let serviceUnavailable = HTTPStatus(503, "Service Unavailable")
  public static let versionNotSupported = HTTPStatus(505, "HTTP Version Not Supported")
}

/// A response to send: status, headers and a body (Content-Length is added when written, but to
/// a `204 No Content`, which has neither, RFC 9110 §8.6 and §15.3.5).
public struct HTTPResponse: Sendable {
  public var status: HTTPStatus
  public var headers: HTTPHeaders
  public var body: [UInt8]

  public init(status: HTTPStatus, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
    self.status = status
    self.headers = headers
    self.body = body
  }

  /// A `text/plain` response; a line break is added to `text`.
  public static func text(_ status: HTTPStatus, _ text: String) -> HTTPResponse {
    var body: [UInt8] = []
    body.reserveCapacity(text.utf8.count + 1)
    body.append(contentsOf: text.utf8)
    body.append(UInt8(ascii: "\n"))
    return HTTPResponse(status: status, headers: textHeaders, body: body)
  }

  /// A `text/plain` response whose body, line break included, is given as bytes.
  public static func text(_ status: HTTPStatus, bytes body: [UInt8]) -> HTTPResponse {
    HTTPResponse(status: status, headers: textHeaders, body: body)
  }

  /// An `application/json` response with an already encoded body.
  public static func json(_ status: HTTPStatus, _ body: [UInt8]) -> HTTPResponse {
    HTTPResponse(status: status, headers: jsonHeaders, body: body)
  }

  /// The headers of every text and JSON response, built once.
  private static let textHeaders = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8")])
  private static let jsonHeaders = HTTPHeaders([("Content-Type", "application/json")])

  /// A `302 Found` to `location`, with an empty body.
  public static func redirect(to location: String) -> HTTPResponse {
    HTTPResponse(status: .found, headers: HTTPHeaders([("Location", location)]))
  }

  /// The response's header text value of `name`, if any.
  public subscript(header name: String) -> String? { headers[name] }

  /// Appends the wire form of the response to `buffer`.
  /// - Parameters:
  ///   - close: adds `Connection: close`.
  ///   - keepAlive: adds `Connection: keep-alive` (for an HTTP/1.0 client that asked for it),
  ///     unless `close` is set.
  ///   - omitBody: for HEAD requests: Content-Length stays, the body is left out.
  ///
  /// A 204 is written without Content-Length and without its body, if it was given one.
  public func write(
    into buffer: inout [UInt8], close: Bool, keepAlive: Bool = false, omitBody: Bool
  ) {
    // The head is written into scratch space (on the stack for a common one) and appended at
    // once: the status line, Content-Length and Connection need at most 128 bytes besides the
    // reason.
    let bound = 128 + status.reason.utf8.count + headers.wireByteBound
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bound) { scratch in
      var head = ByteWriter(scratch)
      if let line = Self.statusLine(status) {
        head.write(line)
      } else {
        head.write("HTTP/1.1 ")
        head.writeDecimal(status.code)
        head.write(UInt8(ascii: " "))
        var reason = status.reason
        reason.withUTF8 { head.write($0) }
        head.write("\r\n")
      }
      headers.write(to: &head)
      if !isNoContent {
        head.write("Content-Length: ")
        head.writeDecimal(body.count)
        head.write("\r\n")
      }
      if close {
        head.write("Connection: close\r\n\r\n")
      } else {
        head.write(keepAlive ? "Connection: keep-alive\r\n\r\n" : "\r\n")
      }
      buffer.append(contentsOf: head.written)
    }
    if !omitBody && !isNoContent { buffer.append(contentsOf: body) }
  }

  /// A 204, which is sent with neither Content-Length nor a body.
  private var isNoContent: Bool { status.code == 204 }

  /// The status lines of the lease/report cycle's answers, as constants.
  private static func statusLine(_ status: HTTPStatus) -> StaticString? {
    switch status.code {
    case 200 where status.reason == "OK": return "HTTP/1.1 200 OK\r\n"
    case 204 where status.reason == "No Content": return "HTTP/1.1 204 No Content\r\n"
    case 302 where status.reason == "Found": return "HTTP/1.1 302 Found\r\n"
    default: return nil
    }
  }
}
