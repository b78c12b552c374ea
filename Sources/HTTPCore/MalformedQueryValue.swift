/// A query value whose percent-escapes cannot be decoded: a `%` not followed by two hex digits
/// (`%`, `%3`, `%zz`), or escapes that do not spell UTF-8 text (`%FF`).
public struct MalformedQueryValue: Error, Equatable, CustomStringConvertible, Sendable {
  /// The pair's name, and its value as sent.
  public let name: String
  public let value: String

  public init(name: String, value: String) {
    self.name = name
    self.value = value
  }

  /// What a `400` says.
  public var description: String {
    "\(name)=\(value) is not valid percent-encoding: each % must start an escape of two hex"
      + " digits (%25 for % itself) that together spell UTF-8 text"
  }
}
