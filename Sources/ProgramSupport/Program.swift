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
  public static func logger(program: String, quiet: Bool) -> ((String) -> Void)? {
    guard !quiet else { return nil }
    return { line in print("[\(program)] \(line)") }
  }
}
