/// Writes bytes into fixed scratch space, for a message head built in pieces and then copied
/// into its array at once (one append instead of one per piece). Running out of room is a
/// programming error: size the space for the worst case.
struct ByteWriter {
  private let buffer: UnsafeMutableBufferPointer<UInt8>
  /// How many bytes were written.
  private(set) var count = 0

  init(_ buffer: UnsafeMutableBufferPointer<UInt8>) { self.buffer = buffer }

  /// The bytes written so far.
  var written: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: buffer[..<count]) }

  mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) {
    write(UnsafeRawBufferPointer(bytes))
  }

  mutating func write(_ bytes: UnsafeRawBufferPointer) {
    precondition(count + bytes.count <= buffer.count, "ByteWriter out of room")
    guard let source = bytes.baseAddress, let base = buffer.baseAddress else { return }
    UnsafeMutableRawPointer(base + count).copyMemory(from: source, byteCount: bytes.count)
    count += bytes.count
  }

  mutating func write(_ text: StaticString) {
    text.withUTF8Buffer { write($0) }
  }

  mutating func write(_ byte: UInt8) {
    precondition(count < buffer.count, "ByteWriter out of room")
    buffer[count] = byte
    count += 1
  }

  /// Writes the decimal digits of a non-negative number.
  mutating func writeDecimal(_ value: Int) {
    precondition(count + 19 <= buffer.count, "ByteWriter out of room")
    count = buffer.writeDecimal(value, at: count)
  }
}
