import Foundation
import HTTPCore

/// Process-wide set-up and exits shared by the programs.
public enum Program {
  /// Line-buffered stdout (log lines appear at once even in a pipe), SIGPIPE ignored, and the
  /// open-file limit raised so that many clients can connect.
  public static func prepare() {
    setvbuf(stdout, nil, _IOLBF, 0)
    Socket.ignoreBrokenPipe()
    Socket.raiseOpenFileLimit()
  }

  /// Prints `message` to stderr as one line and exits with `code`.
  public static func fail(_ message: String, code: Int32 = 1, program: String) -> Never {
    FileHandle.standardError.write(Data("\(program): \(message)\n".utf8))
    exit(code)
  }

  /// Prints a log line (stdout), unless `quiet`.
  public static func logger(program: String, quiet: Bool, format: LogFormat = .text)
    -> ((String) -> Void)?
  {
    guard !quiet else { return nil }
    return logger(program: program, format: format)
  }

  /// Prints log lines (stdout, or `write`): `[program] message`, or one JSON object a line.
  public static func logger(
    program: String, format: LogFormat, write: @escaping (String) -> Void = { print($0) }
  ) -> (String) -> Void {
    switch format {
    case .text:
      return { line in write("[\(program)] \(line)") }
    case .json:
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
      let clock = ISO8601DateFormatter()
      clock.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
      return { line in
        let entry = LogLine(time: clock.string(from: Date()), program: program, message: line)
        guard let data = try? encoder.encode(entry) else { return }
        write(String(decoding: data, as: UTF8.self))
      }
    }
  }
}

/// How the programs write their log lines: for people, or for machines.
public enum LogFormat: String, CaseIterable, Sendable {
  /// `[balancer] 5001: down`
  case text
  /// `{"message":"5001: down","program":"balancer","time":"2026-11-23T18:31:05.120Z"}`
  case json
}

/// One log line in the JSON format.
struct LogLine: Encodable {
  let time: String
  let program: String
  let message: String
}
