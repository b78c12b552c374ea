import Foundation

/// A small command-line parser: `--name value`, `--name=value` and `--switch`, with `--help`.
public struct CommandLineOptions {
  /// One accepted flag.
  public struct Option {
    public let name: String
    public let valueName: String?
    public let help: String

    /// A flag that takes a value, shown as `--name VALUE`.
    public static func value(_ name: String, _ valueName: String, _ help: String) -> Option {
      Option(name: name, valueName: valueName, help: help)
    }

    /// `--log-format text|json`, which every program takes.
    public static let logFormat = Option.value(
      "log-format", "FORMAT", "text (default) or json: one JSON object a line")

    /// A flag that takes no value.
    public static func flag(_ name: String, _ help: String) -> Option {
      Option(name: name, valueName: nil, help: help)
    }
  }

  /// A bad command line, explained for a person.
  public struct UsageError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
  }

  public let program: String
  public let summary: String
  public let options: [Option]
  private var values: [String: String] = [:]

  public init(program: String, summary: String, options: [Option]) {
    self.program = program
    self.summary = summary
    self.options = options + [.flag("help", "show this help and exit")]
  }

  /// The help text.
  public var usage: String {
    var lines = ["usage: \(program) [options]", "", summary, "", "options:"]
    let shown = options.map { option in
      "--\(option.name)" + (option.valueName.map { " \($0)" } ?? "")
    }
    let width = (shown.map(\.count).max() ?? 0) + 2
    for (text, option) in zip(shown, options) {
      lines.append("  " + text.padding(toLength: width, withPad: " ", startingAt: 0) + option.help)
    }
    return lines.joined(separator: "\n")
  }

  /// Parses `arguments` (without the program name). A value that begins with `--` is taken only
  /// as `--name=value`: after `--name` it is the next option, and the value is missing. A flag
  /// that takes a value may be given once; a switch, any number of times.
  public mutating func parse(_ arguments: [String]) throws(UsageError) {
    var index = 0
    while index < arguments.count {
      let argument = arguments[index]
      index += 1
      guard argument.hasPrefix("--"), argument.count > 2 else {
        throw UsageError(description: "unexpected argument '\(argument)' (see --help)")
      }
      var name = String(argument.dropFirst(2))
      var inlineValue: String?
      if let equals = name.firstIndex(of: "=") {
        inlineValue = String(name[name.index(after: equals)...])
        name = String(name[..<equals])
      }
      guard let option = options.first(where: { $0.name == name }) else {
        throw UsageError(description: "unknown option --\(name) (see --help)")
      }
      if option.valueName == nil {
        guard inlineValue == nil else {
          throw UsageError(description: "--\(name) takes no value")
        }
        values[name] = "true"
        continue
      }
      // A second value would replace the first unseen (`--run-at 5:a --run-at 9:b` ran only b).
      guard values[name] == nil else {
        throw UsageError(description: "--\(name) is given twice; give it once (see --help)")
      }
      if let inlineValue {
        values[name] = inlineValue
      } else {
        guard index < arguments.count else {
          throw UsageError(description: "--\(name) needs a value (see --help)")
        }
        // `--admin-token --quiet`: the value was forgotten, and the next option is not it.
        let next = arguments[index]
        guard !next.hasPrefix("--") else {
          throw UsageError(
            description:
              "--\(name) needs a value, and \(next) is an option (write --\(name)=\(next) if it is the value)"
          )
        }
        values[name] = next
        index += 1
      }
    }
  }

  /// The value given for `name`, if any.
  public subscript(name: String) -> String? { values[name] }

  /// Whether the switch `name` was given.
  public func isSet(_ name: String) -> Bool { values[name] != nil }

  /// A TCP port from the flag `name`, else the variable `environment` of `variables` (the
  /// process's environment unless given), else `default`.
  public func port(
    _ name: String?, environment: String? = nil, default fallback: Int,
    in variables: [String: String] = ProcessInfo.processInfo.environment
  ) throws(UsageError) -> Int {
    let source: (text: String, origin: String)
    if let name, let value = values[name] {
      source = (value, "--" + name)
    } else if let environment, let value = variables[environment],
      !value.isEmpty
    {
      source = (value, environment)
    } else {
      return fallback
    }
    guard source.text.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(source.text),
      (0...65535).contains(port)
    else {
      throw UsageError(
        description: "\(source.origin): '\(source.text)' is not a port from 0 to 65535")
    }
    return port
  }

  /// A finite number from the flag `name` within `range`, else `default`, written in decimal
  /// (`inf`, `nan` and hexadecimal such as `0x10`, which `Double` reads, are refused whatever
  /// the range).
  public func number(_ name: String, in range: ClosedRange<Double>, default fallback: Double)
    throws(UsageError)
    -> Double
  {
    guard let text = values[name] else { return fallback }
    guard let value = Self.decimal(text), range.contains(value) else {
      throw UsageError(
        description:
          "--\(name): '\(text)' is not a number from \(range.lowerBound) to \(range.upperBound)")
    }
    return value
  }

  /// `text` as a finite decimal number (digits, one point, a sign, an exponent), or nil.
  public static func decimal<Text: StringProtocol>(_ text: Text) -> Double? {
    guard text.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }),
      let value = Double(String(text)), value.isFinite
    else { return nil }
    return value
  }

  /// A whole number from the flag `name` within `range`, else `default`.
  public func integer(_ name: String, in range: ClosedRange<Int>, default fallback: Int)
    throws(UsageError) -> Int
  {
    guard let text = values[name] else { return fallback }
    guard let value = Int(text), range.contains(value) else {
      throw UsageError(
        description:
          "--\(name): '\(text)' is not a whole number from \(range.lowerBound) to \(range.upperBound)"
      )
    }
    return value
  }

  /// The format `--log-format` names (`text` unless given).
  public func logFormat() throws(UsageError) -> LogFormat {
    guard let text = values["log-format"] else { return .text }
    guard let format = LogFormat(rawValue: text) else {
      throw UsageError(description: "--log-format: '\(text)' is not text or json")
    }
    return format
  }

  /// Parses the process's arguments: prints help and exits 0 for `--help`, or prints the
  /// problem and exits 2.
  public static func parseOrExit(
    _ options: inout CommandLineOptions,
    _ arguments: [String] = Array(CommandLine.arguments.dropFirst())
  ) {
    do {
      try options.parse(arguments)
    } catch {
      Program.fail(error.description, code: 2, program: options.program)
    }
    if options.isSet("help") {
      print(options.usage)
      exit(0)
    }
  }
}
