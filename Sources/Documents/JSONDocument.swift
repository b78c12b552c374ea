import Foundation

/// A JSON document the programs exchange or show: encoded by the side that writes it and decoded
/// by the side that reads it, with Foundation's coders, so the two can never disagree on a field.
public protocol JSONDocument: Codable, Sendable {}

extension JSONDocument {
  /// The document as one line of JSON (keys sorted, so equal documents are equal text), with a
  /// final newline.
  public func encoded() -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    // Every document here is encodable: they hold strings, numbers, booleans and lists of them.
    var bytes = [UInt8]((try? encoder.encode(self)) ?? Data("{}".utf8))
    bytes.append(UInt8(ascii: "\n"))
    return bytes
  }

  /// Decodes a document from JSON text.
  public static func decode(_ bytes: some Collection<UInt8>) throws -> Self {
    try JSONDecoder().decode(Self.self, from: Data(bytes))
  }
}

/// Seconds as the documents show them: a number with millisecond precision.
public enum Seconds {
  /// `nanoseconds` as seconds, rounded to the millisecond.
  public static func from(nanoseconds: UInt64) -> Double {
    Double(nanoseconds / 1_000_000) / 1000
  }
}
