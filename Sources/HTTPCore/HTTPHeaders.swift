/// The header fields of a request or response, in order, with case-insensitive lookup.
public struct HTTPHeaders: Sendable, Sequence {
  public private(set) var fields: [(name: String, value: String)] = []

  public init(_ fields: [(name: String, value: String)] = []) { self.fields = fields }

  /// The first value of `name` (ASCII case-insensitive), if present.
  public subscript(name: String) -> String? {
    for field in fields where Self.equalsIgnoringCase(field.name, name) { return field.value }
    return nil
  }

  /// Appends a field.
  public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

  /// The number of fields.
  public var count: Int { fields.count }

  public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
    fields.makeIterator()
  }

  /// Whether a comma-separated header (such as Connection) lists `token`.
  public func contains(_ name: String, token: String) -> Bool {
    fields.contains { field in
      Self.equalsIgnoringCase(field.name, name)
        && field.value.split(separator: ",").contains {
          Self.equalsIgnoringCase($0.trimmingSpaces(), token)
        }
    }
  }

  static func equalsIgnoringCase<A: StringProtocol, B: StringProtocol>(_ a: A, _ b: B) -> Bool {
    let left = a.utf8
    let right = b.utf8
    guard left.count == right.count else { return false }
    var rightIndex = right.startIndex
    for byte in left {
      let other = right[rightIndex]
      // ASCII letters compare without case; any other bytes must be equal.
      if byte != other {
        let lower = byte | 0x20
        guard lower == other | 0x20, lower >= 0x61, lower <= 0x7A else { return false }
      }
      right.formIndex(after: &rightIndex)
    }
    return true
  }
}

extension StringProtocol {
  fileprivate func trimmingSpaces() -> Substring {
    var slice = Substring(self)
    while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
    while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
    return slice
  }
}
