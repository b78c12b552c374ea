/// Why a message could not be parsed, with the status a server answers it with.
public struct HTTPParseError: Error, Equatable, CustomStringConvertible, Sendable {
  public let status: HTTPStatus
  public let message: String

  public init(_ status: HTTPStatus, _ message: String) {
    self.status = status
    self.message = message
  }

  public var description: String { "\(status.code) \(status.reason): \(message)" }
}

/// The outcome of feeding bytes to an incremental parser.
public enum ParseResult<Message> {
  /// The bytes so far are a valid prefix; call again with more.
  case needMore
  /// A whole message, and how many bytes of the input it used.
  case complete(Message, consumed: Int)
  /// The input is not valid; the connection cannot continue.
  case failed(HTTPParseError)
}

/// Size limits that protect a server from oversized or endless input.
public struct HTTPLimits: Sendable {
  /// The longest request line (method, target, version); longer is 414.
  public var maxRequestLineBytes = 8192
  /// The longest head (request line and header fields); longer is 431.
  public var maxHeadBytes = 16384
  /// The most header fields; more is 431.
  public var maxHeaderCount = 100
  /// The largest Content-Length accepted; larger is 413.
  public var maxBodyBytes = 1 << 20

  public init() {}
}
