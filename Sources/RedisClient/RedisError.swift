/// Why a Redis command has no reply value.
public enum RedisError: Error, Equatable, Sendable, CustomStringConvertible {
  /// Redis answered with an error reply, such as `ERR unknown command` or `NOSCRIPT …`: the
  /// command ran (or was refused) and the connection is fine.
  case server(String)
  /// The command was written, then the connection ended before its reply (the server went away,
  /// or sent something that is not RESP2). It may or may not have run: the caller decides
  /// whether repeating it is safe.
  case connectionLost(String)
  /// The command was never sent: no connection to Redis within `unavailableTimeout`.
  case unavailable(String)
  /// `close()` was called before the reply came (a command already written may have run), or
  /// the command was sent after it.
  case closed
  /// The command has no arguments.
  case emptyCommand

  /// For `.server`, the error code: the message's first word, such as `ERR` or `NOSCRIPT`.
  public var code: String? {
    guard case .server(let message) = self else { return nil }
    return message.split(separator: " ", maxSplits: 1).first.map(String.init)
  }

  public var description: String {
    switch self {
    case .server(let message): return "redis error: \(message)"
    case .connectionLost(let reason):
      return "connection to redis lost before the reply (the command may or may not have run): "
        + reason
    case .unavailable(let reason): return "redis unavailable: \(reason)"
    case .closed: return "redis connection closed"
    case .emptyCommand: return "empty redis command"
    }
  }
}
