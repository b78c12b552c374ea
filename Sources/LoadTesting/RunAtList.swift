/// The commands of `--run-at N:COMMAND;N:COMMAND...`, each to run once N visits have finished.
///
/// An entry starts at the beginning of the text, or after a `;` that is followed by N and `:`
/// (spaces before N allowed); any other `;` belongs to the command before it, as in a shell's
/// list: `5:echo a; echo b` is one command, `5:echo a; 9:echo b` two.
public enum RunAtList {
  /// Text that names no command, an entry whose N is not a whole number above 0, or one with
  /// no command.
  public struct Invalid: Error, CustomStringConvertible {
    public let description: String
  }

  /// The entries of `text` in the order given.
  public static func parse(_ text: String) throws(Invalid) -> [(visits: Int, command: String)] {
    var entries: [(visits: Int, command: String)] = []
    for item in text.split(separator: ";", omittingEmptySubsequences: false) {
      if let (visits, command) = entry(item) {
        guard visits > 0 else { throw Invalid(description: "'\(item)' is not N:COMMAND") }
        entries.append((visits, command))
      } else if !entries.isEmpty {
        entries[entries.count - 1].command += ";" + item
      } else if !item.allSatisfy(\.isWhitespace) {
        throw Invalid(description: "'\(item)' is not N:COMMAND")
      }
    }
    guard !entries.isEmpty else { throw Invalid(description: "no N:COMMAND given in '\(text)'") }
    if let empty = entries.first(where: { $0.command.allSatisfy(\.isWhitespace) }) {
      throw Invalid(description: "'\(empty.visits):\(empty.command)' has no command")
    }
    return entries
  }

  /// `N:COMMAND` as N and COMMAND, if `item` starts with digits (after spaces) and a colon.
  private static func entry(_ item: Substring) -> (Int, String)? {
    guard let colon = item.firstIndex(of: ":") else { return nil }
    let digits = item[..<colon].drop { $0 == " " }
    guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
    return (Int(digits) ?? Int.max, String(item[item.index(after: colon)...]))
  }
}
