/// A header buffer kept from one parsed message for the next one's fields, so that a
/// connection's messages cost no allocation for their headers. One per parser.
struct SpareHeaderBuffer {
  /// The largest buffer kept: one grown by a message with many or long fields is let go.
  static let maxKeptCapacity = 4096
  private var bytes: [UInt8] = []

  /// The kept buffer, empty, for the next message's fields (an empty array if none is kept).
  mutating func take() -> [UInt8] {
    var taken: [UInt8] = []
    swap(&taken, &bytes)
    return taken
  }

  /// Takes back the buffer of `headers`, emptied. A message still held elsewhere (a handler
  /// kept the request) keeps its fields: emptying the buffer then allocates a new one of the
  /// same capacity, as the next message would have.
  mutating func keep(_ headers: inout HTTPHeaders) {
    let storage = headers.takeEmptiedStorage()
    if storage.capacity <= Self.maxKeptCapacity { bytes = storage }
  }
}
