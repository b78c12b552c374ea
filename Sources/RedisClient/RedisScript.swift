/// A Lua script for Redis: its source and the SHA-1 that EVALSHA and SCRIPT LOAD name it by.
public struct RedisScript: Hashable, Sendable {
  /// The Lua source.
  public let source: String
  /// The SHA-1 of the source, 40 lower-case hexadecimal digits (as SCRIPT LOAD answers).
  public let sha1: String

  public init(_ source: String) {
    self.source = source
    sha1 = SHA1.hexDigest(Array(source.utf8))
  }
}

extension RedisConnection {
  /// Runs `script` by its SHA-1 (EVALSHA); when Redis does not have it cached (NOSCRIPT, after
  /// a restart or SCRIPT FLUSH) sends the source with EVAL, which also caches it for next time.
  /// The EVAL goes out after the NOSCRIPT reply, so behind commands sent meanwhile.
  public func evaluate(
    _ script: RedisScript, keys: [String] = [], arguments: [String] = [],
    completion: @escaping Completion
  ) {
    let rest = [String(keys.count)] + keys + arguments
    send(["EVALSHA", script.sha1] + rest) { result in
      if case .failure(let error) = result, error.code == "NOSCRIPT" {
        self.send(["EVAL", script.source] + rest, completion: completion)
      } else {
        completion(result)
      }
    }
  }

  /// Caches `script` on the server (SCRIPT LOAD), for example from `onConnect`; the reply is
  /// its SHA-1.
  public func load(_ script: RedisScript, completion: @escaping Completion) {
    send(["SCRIPT", "LOAD", script.source], completion: completion)
  }
}
