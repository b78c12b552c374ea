/// The Prometheus text exposition format, version 0.0.4: its content type, how sample values are
/// written, how label values and HELP text are escaped, and which names are valid.
public enum PrometheusTextFormat {
  /// The `Content-Type` of a rendered registry.
  public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

  /// A sample value (or a bucket's `le`) as the format writes it: integral values without a
  /// fraction or exponent ("0", "60", "-3"), others in the shortest form that reads back exactly
  /// ("0.005", "2.5", "1e-05"), and `+Inf`, `-Inf`, `NaN`.
  public static func formatValue(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
    // Every integer up to 2^53 is exact in a Double; beyond that the exponent form is shorter.
    if value == value.rounded(.towardZero) && abs(value) <= 9_007_199_254_740_992 {
      return String(Int64(value))  // also turns -0.0 into "0"
    }
    return value.description
  }

  /// A label value escaped for the inside of its double quotes: backslash, double quote and
  /// line feed become `\\`, `\"` and `\n`.
  public static func escapeLabelValue(_ value: String) -> String {
    escape(value, quote: true)
  }

  /// HELP text escaped for its line: backslash and line feed become `\\` and `\n`.
  public static func escapeHelp(_ text: String) -> String {
    escape(text, quote: false)
  }

  private static func escape(_ text: String, quote: Bool) -> String {
    let needsEscaping = text.utf8.contains { byte in
      byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\n")
        || (quote && byte == UInt8(ascii: "\""))
    }
    guard needsEscaping else { return text }
    var escaped = ""
    escaped.reserveCapacity(text.utf8.count + 8)
    // Scalars, not Characters: "\r\n" is one Character but only its "\n" is escaped.
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\\": escaped += "\\\\"
      case "\n": escaped += "\\n"
      case "\"" where quote: escaped += "\\\""
      default: escaped.unicodeScalars.append(scalar)
      }
    }
    return escaped
  }

  /// Whether `name` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
  public static func isValidMetricName(_ name: String) -> Bool {
    isValidName(name, allowColon: true)
  }

  /// Whether `name` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`
  /// (reserved for Prometheus' own use).
  public static func isValidLabelName(_ name: String) -> Bool {
    isValidName(name, allowColon: false) && !name.hasPrefix("__")
  }

  private static func isValidName(_ name: String, allowColon: Bool) -> Bool {
    guard !name.isEmpty else { return false }
    for (offset, byte) in name.utf8.enumerated() {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "_"):
        continue
      case UInt8(ascii: "0")...UInt8(ascii: "9") where offset > 0:
        continue
      case UInt8(ascii: ":") where allowColon:
        continue
      default:
        return false
      }
    }
    return true
  }

  /// `name="value",...` for the inside of a sample's braces, values escaped.
  static func labelPairs(names: [String], values: [String]) -> String {
    var pairs = ""
    for (name, value) in zip(names, values) {
      if !pairs.isEmpty { pairs += "," }
      pairs += name
      pairs += "=\""
      pairs += escapeLabelValue(value)
      pairs += "\""
    }
    return pairs
  }

  /// Appends one sample line: `name{labels} value` (no braces when `labels` is empty).
  static func appendSample(
    _ name: String, suffix: String = "", labels: String, value: String, to output: inout String
  ) {
    output += name
    output += suffix
    if !labels.isEmpty {
      output += "{"
      output += labels
      output += "}"
    }
    output += " "
    output += value
    output += "\n"
  }
}
