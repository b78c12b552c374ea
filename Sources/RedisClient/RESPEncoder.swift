/// Writes RESP2: commands as arrays of bulk strings (what Redis expects from clients), and any
/// `RESPValue` (for tests and fakes).
public enum RESPEncoder {
  /// A command, such as `["SET", "key", "value"]`, as an array of bulk strings.
  public static func command(_ arguments: [[UInt8]]) -> [UInt8] {
    var output: [UInt8] = []
    output.reserveCapacity(16 + arguments.reduce(0) { $0 + $1.count + 16 })
    appendCommand(arguments, to: &output)
    return output
  }

  /// A command given as text arguments (each sent as its UTF-8 bytes).
  public static func command(_ arguments: [String]) -> [UInt8] {
    command(arguments.map { Array($0.utf8) })
  }

  /// Appends a command to `output` (to build one buffer for several pipelined commands).
  public static func appendCommand(_ arguments: [[UInt8]], to output: inout [UInt8]) {
    appendHeader(UInt8(ascii: "*"), arguments.count, to: &output)
    for argument in arguments {
      appendHeader(UInt8(ascii: "$"), argument.count, to: &output)
      output.append(contentsOf: argument)
      output.append(contentsOf: crlf)
    }
  }

  /// Any value. Simple strings and errors must not contain CR or LF.
  public static func encode(_ value: RESPValue) -> [UInt8] {
    var output: [UInt8] = []
    append(value, to: &output)
    return output
  }

  /// Appends any value to `output`.
  public static func append(_ value: RESPValue, to output: inout [UInt8]) {
    switch value {
    case .simple(let text):
      output.append(UInt8(ascii: "+"))
      output.append(contentsOf: text.utf8)
      output.append(contentsOf: crlf)
    case .error(let message):
      output.append(UInt8(ascii: "-"))
      output.append(contentsOf: message.utf8)
      output.append(contentsOf: crlf)
    case .integer(let number):
      output.append(UInt8(ascii: ":"))
      output.append(contentsOf: String(number).utf8)
      output.append(contentsOf: crlf)
    case .bulk(nil):
      output.append(contentsOf: "$-1\r\n".utf8)
    case .bulk(let bytes?):
      appendHeader(UInt8(ascii: "$"), bytes.count, to: &output)
      output.append(contentsOf: bytes)
      output.append(contentsOf: crlf)
    case .array(nil):
      output.append(contentsOf: "*-1\r\n".utf8)
    case .array(let elements?):
      appendHeader(UInt8(ascii: "*"), elements.count, to: &output)
      for element in elements { append(element, to: &output) }
    }
  }

  private static func appendHeader(_ type: UInt8, _ count: Int, to output: inout [UInt8]) {
    output.append(type)
    output.append(contentsOf: String(count).utf8)
    output.append(contentsOf: crlf)
  }
}

private let crlf: [UInt8] = [UInt8(ascii: "\r"), UInt8(ascii: "\n")]
