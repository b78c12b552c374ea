/// A status code and its reason phrase.
public struct HTTPStatus: Sendable, Equatable {
  public let code: Int
  public let reason: String

  public init(_ code: Int, _ reason: String) {
    self.code = code
    self.reason = reason
  }

  public static let ok = HTTPStatus(200, "OK")
  public static let found = HTTPStatus(302, "Found")
  public static let badRequest = HTTPStatus(400, "Bad Request")
  public static let forbidden = HTTPStatus(403, "Forbidden")
  public static let notFound = HTTPStatus(404, "Not Found")
  public static let methodNotAllowed = HTTPStatus(405, "Method Not Allowed")
  public static let requestTimeout = HTTPStatus(408, "Request Timeout")
  public static let conflict = HTTPStatus(409, "Conflict")
  public static let contentTooLarge = HTTPStatus(413, "Content Too Large")
  public static let uriTooLong = HTTPStatus(414, "URI Too Long")
  public static let tooManyRequests = HTTPStatus(429, "Too Many Requests")
  public static let headerFieldsTooLarge = HTTPStatus(431, "Request Header Fields Too Large")
  public static let internalServerError = HTTPStatus(500, "Internal Server Error")
  public static let notImplemented = HTTPStatus(501, "Not Implemented")
  public static let serviceUnavailable = HTTPStatus(503, "Service Unavailable")
  public static let versionNotSupported = HTTPStatus(505, "HTTP Version Not Supported")
}

/// A response to send: status, headers and a body (Content-Length is added when written).
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
    HTTPResponse(
      status: status, headers: HTTPHeaders([("Content-Type", "text/plain; charset=utf-8")]),
      body: Array((text + "\n").utf8))
  }

  /// An `application/json` response with an already encoded body.
  public static func json(_ status: HTTPStatus, _ body: [UInt8]) -> HTTPResponse {
    HTTPResponse(
      status: status, headers: HTTPHeaders([("Content-Type", "application/json")]), body: body)
  }

  /// A `302 Found` to `location`, with an empty body.
  public static func redirect(to location: String) -> HTTPResponse {
    HTTPResponse(status: .found, headers: HTTPHeaders([("Location", location)]))
  }

  /// The response's header text value of `name`, if any.
  public subscript(header name: String) -> String? { headers[name] }

  /// Appends the wire form of the response to `buffer`.
  /// - Parameters:
  ///   - close: adds `Connection: close`.
  ///   - omitBody: for HEAD requests: Content-Length stays, the body is left out.
  public func write(into buffer: inout [UInt8], close: Bool, omitBody: Bool) {
    buffer.append(contentsOf: "HTTP/1.1 ".utf8)
    Self.appendDecimal(status.code, to: &buffer)
    buffer.append(UInt8(ascii: " "))
    buffer.append(contentsOf: status.reason.utf8)
    buffer.append(contentsOf: "\r\n".utf8)
    for field in headers.fields {
      buffer.append(contentsOf: field.name.utf8)
      buffer.append(contentsOf: ": ".utf8)
      buffer.append(contentsOf: field.value.utf8)
      buffer.append(contentsOf: "\r\n".utf8)
    }
    buffer.append(contentsOf: "Content-Length: ".utf8)
    Self.appendDecimal(body.count, to: &buffer)
    buffer.append(contentsOf: "\r\n".utf8)
    if close { buffer.append(contentsOf: "Connection: close\r\n".utf8) }
    buffer.append(contentsOf: "\r\n".utf8)
    if !omitBody { buffer.append(contentsOf: body) }
  }

  /// Appends the decimal digits of a non-negative number without building a String.
  static func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
    if value < 10 {
      buffer.append(UInt8(ascii: "0") + UInt8(value))
      return
    }
    appendDecimal(value / 10, to: &buffer)
    buffer.append(UInt8(ascii: "0") + UInt8(value % 10))
  }
}
