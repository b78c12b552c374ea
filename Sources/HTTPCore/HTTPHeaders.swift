/// The header fields of a request or response, in order, with case-insensitive lookup.
///
/// Kept as bytes in one buffer: a parsed message's fields cost one allocation, and no `String`
/// is made until one is asked for. Lookups, `contains(_:token:)` and writing work on the bytes.
public struct HTTPHeaders: Sendable, Sequence {
  /// Each field in turn: the lengths of its name and value (4 bytes each, little-endian), then
  /// the name's bytes and the value's.
  private var storage: [UInt8] = []
  /// The number of fields.
  public private(set) var count = 0

  public init(_ fields: [(name: String, value: String)] = []) {
    for field in fields { add(field.name, field.value) }
  }

  /// Fields stored already (by `store`), `count` of them.
  init(storage: [UInt8], count: Int) {
    self.storage = storage
    self.count = count
  }

  /// Empties the fields and hands back their buffer, emptied with its capacity kept, for another
  /// parsed message's fields (see `SpareHeaderBuffer`).
  mutating func takeEmptiedStorage() -> [UInt8] {
    var taken: [UInt8] = []
    swap(&taken, &storage)
    count = 0
    taken.removeAll(keepingCapacity: true)
    return taken
  }

  /// Writes a field at `offset` of `buffer`, which must have room for 8 bytes more than its
  /// name and value, and returns the offset past it.
  static func store(
    name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
    into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int
  ) -> Int {
    precondition(offset + 8 + name.count + value.count <= buffer.count, "field past the buffer")
    let base = UnsafeMutableRawPointer(buffer.baseAddress!) + offset
    base.storeBytes(of: UInt32(name.count).littleEndian, toByteOffset: 0, as: UInt32.self)
    base.storeBytes(of: UInt32(value.count).littleEndian, toByteOffset: 4, as: UInt32.self)
    if let source = name.baseAddress { (base + 8).copyMemory(from: source, byteCount: name.count) }
    if let source = value.baseAddress {
      (base + 8 + name.count).copyMemory(from: source, byteCount: value.count)
    }
    return offset + 8 + name.count + value.count
  }

  /// The fields, as strings.
  public var fields: [(name: String, value: String)] { Array(self) }

  /// The first value of `name` (ASCII case-insensitive), if present.
  public subscript(name: String) -> String? {
    withValue(of: name) { String(decoding: $0, as: UTF8.self) }
  }

  /// Calls `body` with the bytes of the first value of `name` (ASCII case-insensitive); nil if
  /// there is no such field. Builds no String.
  public func withValue<Result>(
    of name: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result
  ) -> Result? {
    var found: Result?
    var wanted = name
    wanted.withUTF8 { wanted in
      forEachField { fieldName, value in
        guard Self.equalsIgnoringCase(fieldName, wanted) else { return true }
        found = body(value)
        return false
      }
    }
    return found
  }

  /// Appends a field.
  public mutating func add(_ name: String, _ value: String) {
    var name = name
    var value = value
    name.withUTF8 { name in
      value.withUTF8 { value in
        add(name: UnsafeRawBufferPointer(name), value: UnsafeRawBufferPointer(value))
      }
    }
  }

  /// Appends a field whose value `write` appends to the bytes it is given: built in place, in
  /// one buffer with room for `capacity` bytes of value when these are the first fields.
  public mutating func add(
    _ name: String, capacity: Int, writingValue write: (inout [UInt8]) -> Void
  ) {
    var name = name
    let start = storage.count
    name.withUTF8 { name in
      if storage.isEmpty { storage.reserveCapacity(8 + name.count + capacity) }
      appendLengths(name: name.count, value: 0)
      storage.append(contentsOf: name)
    }
    let valueStart = storage.count
    write(&storage)
    let valueLength = UInt32(storage.count - valueStart).littleEndian
    storage.withUnsafeMutableBytes {
      $0.storeBytes(of: valueLength, toByteOffset: start + 4, as: UInt32.self)
    }
    count += 1
  }

  /// Appends a field from its bytes.
  mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
    if storage.isEmpty { storage.reserveCapacity(name.count + value.count + 8) }
    appendLengths(name: name.count, value: value.count)
    storage.append(contentsOf: name)
    storage.append(contentsOf: value)
    count += 1
  }

  /// Appends a field's two lengths, as `store` lays them out (little-endian UInt32s).
  private mutating func appendLengths(name: Int, value: Int) {
    let lengths = (UInt32(name).littleEndian, UInt32(value).littleEndian)
    Swift.withUnsafeBytes(of: lengths) { storage.append(contentsOf: $0) }
  }

  public func makeIterator() -> Iterator { Iterator(headers: self) }

  /// The fields in order, each as strings.
  public struct Iterator: IteratorProtocol {
    let headers: HTTPHeaders
    var offset = 0

    public mutating func next() -> (name: String, value: String)? {
      guard offset < headers.storage.count else { return nil }
      return headers.storage.withUnsafeBufferPointer { bytes in
        let (name, value) = HTTPHeaders.field(in: bytes, at: offset)
        offset = value.upperBound
        return (
          String(decoding: UnsafeBufferPointer(rebasing: bytes[name]), as: UTF8.self),
          String(decoding: UnsafeBufferPointer(rebasing: bytes[value]), as: UTF8.self)
        )
      }
    }
  }

  /// Whether a comma-separated header (such as Connection) lists `token`.
  public func contains(_ name: String, token: String) -> Bool {
    var name = name
    var token = token
    return name.withUTF8 { name in token.withUTF8 { token in lists(name, token: token) } }
  }

  /// `contains(_:token:)` for constant names and tokens (a request's Connection header).
  func contains(_ name: StaticString, token: StaticString) -> Bool {
    name.withUTF8Buffer { name in token.withUTF8Buffer { token in lists(name, token: token) } }
  }

  /// Whether a field named `name` (in any case) lists `token`.
  private func lists(_ name: UnsafeBufferPointer<UInt8>, token: UnsafeBufferPointer<UInt8>)
    -> Bool
  {
    var found = false
    forEachField { fieldName, value in
      guard Self.equalsIgnoringCase(fieldName, name) else { return true }
      found = Self.list(value, contains: token)
      return !found
    }
    return found
  }

  /// Calls `body` with each field's name and value bytes, in order, until it returns false.
  func forEachField(
    _ body: (_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) -> Bool
  ) {
    storage.withUnsafeBufferPointer { bytes in
      var offset = 0
      while offset < bytes.count {
        let (name, value) = Self.field(in: bytes, at: offset)
        offset = value.upperBound
        guard
          body(
            UnsafeBufferPointer(rebasing: bytes[name]), UnsafeBufferPointer(rebasing: bytes[value]))
        else { return }
      }
    }
  }

  /// The most bytes `write(to:)` writes: a field's `: ` and CRLF take less room than the two
  /// lengths it is stored with.
  var wireByteBound: Int { storage.count }

  /// Appends every field to `bytes` as `Name: value\r\n`.
  func append(to bytes: inout [UInt8]) {
    guard !storage.isEmpty else { return }
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: wireByteBound) { scratch in
      var writer = ByteWriter(scratch)
      write(to: &writer)
      bytes.append(contentsOf: writer.written)
    }
  }

  /// Writes every field as `Name: value\r\n`.
  func write(to writer: inout ByteWriter) {
    forEachField { name, value in
      writer.write(name)
      writer.write(": ")
      writer.write(value)
      writer.write("\r\n")
      return true
    }
  }

  /// The name's and the value's ranges of the field stored at `offset`.
  @inline(__always)
  private static func field(in bytes: UnsafeBufferPointer<UInt8>, at offset: Int) -> (
    name: Range<Int>, value: Range<Int>
  ) {
    let nameLength = readLength(bytes, offset)
    let valueLength = readLength(bytes, offset + 4)
    let nameStart = offset + 8
    let valueStart = nameStart + nameLength
    return (nameStart..<valueStart, valueStart..<(valueStart + valueLength))
  }

  @inline(__always)
  private static func readLength(_ bytes: UnsafeBufferPointer<UInt8>, _ offset: Int) -> Int {
    Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16
      | Int(bytes[offset + 3]) << 24
  }

  /// Whether the comma-separated `list` has `token` as one of its items (spaces around items
  /// ignored, ASCII case-insensitive).
  static func list(_ list: UnsafeBufferPointer<UInt8>, contains token: UnsafeBufferPointer<UInt8>)
    -> Bool
  {
    var start = 0
    while start <= list.count {
      var end = start
      while end < list.count && list[end] != UInt8(ascii: ",") { end += 1 }
      if equalsIgnoringCase(trimmed(list, start..<end), token) { return true }
      start = end + 1
    }
    return false
  }

  /// Whether the first preference named `name` in the Prefer fields has the value `value`
  /// (RFC 7240 §2: comma-separated `token [BWS "=" BWS word] *(OWS ";" [OWS parameter])`, the
  /// first of a name counting); names and values are compared without case, a quoted value
  /// without its quotes. False if no preference has that name.
  func prefers(_ name: StaticString, _ value: StaticString) -> Bool {
    name.withUTF8Buffer { name in
      value.withUTF8Buffer { value in
        var found: Bool?
        forEachField { fieldName, field in
          guard Self.equalsIgnoringCase(fieldName, "Prefer") else { return true }
          // The common form, `name=value` alone, needs no walk.
          if field.count == name.count + 1 + value.count, field[name.count] == UInt8(ascii: "="),
            Self.equalsIgnoringCase(UnsafeBufferPointer(rebasing: field[..<name.count]), name)
          {
            found = Self.equalsIgnoringCase(
              UnsafeBufferPointer(rebasing: field[(name.count + 1)...]), value)
            return false
          }
          found = Self.preference(name, in: field).map { Self.equalsIgnoringCase($0, value) }
          return found == nil
        }
        return found ?? false
      }
    }
  }

  /// The value of the first preference named `name` in a Prefer field's value, without quotes;
  /// nil if it names none. One pass over each preference, commas and semicolons in quoted
  /// strings (where `\` escapes the next byte) counting for nothing.
  private static func preference(
    _ name: UnsafeBufferPointer<UInt8>, in list: UnsafeBufferPointer<UInt8>
  ) -> UnsafeBufferPointer<UInt8>? {
    var start = 0
    while start < list.count {
      // Up to the comma that ends it: where its name ends (`=`) and its parameters start (`;`).
      var index = start
      var equals: Int?
      var parameters: Int?
      var quoted = false
      scan: while index < list.count {
        switch list[index] {
        case UInt8(ascii: "\\") where quoted: index += 1
        case UInt8(ascii: "\""): quoted.toggle()
        case UInt8(ascii: ",") where !quoted: break scan
        case UInt8(ascii: ";") where !quoted && parameters == nil: parameters = index
        case UInt8(ascii: "=") where !quoted && equals == nil && parameters == nil: equals = index
        default: break
        }
        index += 1
      }
      let stop = parameters ?? Swift.min(index, list.count)
      let nameEnd = equals ?? stop
      if equalsIgnoringCase(trimmed(list, start..<nameEnd), name) {
        let word = trimmed(list, Swift.min(nameEnd + 1, stop)..<stop)
        let isQuoted =
          word.count >= 2 && word.first == UInt8(ascii: "\"") && word.last == UInt8(ascii: "\"")
        return isQuoted ? UnsafeBufferPointer(rebasing: word[1..<(word.count - 1)]) : word
      }
      start = index + 1
    }
    return nil
  }

  /// `bytes[range]` without spaces and tabs at either end.
  private static func trimmed(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>)
    -> UnsafeBufferPointer<UInt8>
  {
    var (low, high) = (range.lowerBound, range.upperBound)
    while low < high && HTTPHeadScanner.isSpace(bytes[low]) { low += 1 }
    while high > low && HTTPHeadScanner.isSpace(bytes[high - 1]) { high -= 1 }
    return UnsafeBufferPointer(rebasing: bytes[low..<high])
  }

  /// Whether two byte strings are equal, ASCII letters compared without case.
  static func equalsIgnoringCase(
    _ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>
  )
    -> Bool
  {
    guard left.count == right.count else { return false }
    for index in 0..<left.count {
      let byte = left[index]
      let other = right[index]
      // ASCII letters compare without case; any other bytes must be equal.
      if byte != other {
        let lower = byte | 0x20
        guard lower == other | 0x20, lower >= 0x61, lower <= 0x7A else { return false }
      }
    }
    return true
  }

  /// Whether a byte string equals `text`, ASCII letters compared without case.
  static func equalsIgnoringCase(_ left: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
    text.withUTF8Buffer { equalsIgnoringCase(left, $0) }
  }
}

extension HTTPHeaders {
  /// A Host field's value for `host` and `port`: an IPv6 address goes in brackets (RFC 9110
  /// §7.2, RFC 3986 §3.2.2), as a server's parser requires.
  public static func hostValue(_ host: String, port: Int) -> String {
    host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
  }
}
