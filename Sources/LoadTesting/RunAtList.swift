/// The commands of `--run-at N:COMMAND;N:COMMAND...`, each to run once N visits have finished.
///
/// An entry starts at the beginning of the text, or after a `;` that is followed by N and `:`
/// (blanks before N allowed); any other `;` belongs to the command before it, as in a shell's
/// list: `5:echo a; echo b` is one command, `5:echo a; 9:echo b` two. Errors quote an entry as
/// it was typed.
public enum RunAtList {
  /// Text that names no command, an entry whose N is not a whole number from 1 to the last
  /// visit, or one with no command.
  public struct Invalid: Error, CustomStringConvertible {
    public let description: String
  }

  /// The entries of `text` in the order given, for a run of `visits` visits.
  public static func parse(_ text: String, visits: Int) throws(Invalid) -> [(
    visits: Int, command: String
  )] {
    var entries: [(visits: Int, command: String)] = []
    for item in text.split(separator: ";", omittingEmptySubsequences: false) {
      guard let (digits, command) = split(item) else {
        if entries.isEmpty {
          guard item.allSatisfy(\.isWhitespace) else {
            throw Invalid(description: "'\(item)' is not N:COMMAND")
          }
        } else {
          entries[entries.count - 1].command += ";" + item
        }
        continue
      }
      guard !command.allSatisfy(\.isWhitespace) else {
        throw Invalid(description: "'\(item)' has no command")
      }
      let n = Int(digits) ?? .max  // digits too many for an Int: past any run
      guard n > 0 else { throw Invalid(description: "'\(item)' is not N:COMMAND") }
      guard n <= visits else {
        throw Invalid(description: "'\(item)' would never run: N is above --requests (\(visits))")
      }
      entries.append((n, String(command)))
    }
    guard !entries.isEmpty else { throw Invalid(description: "no N:COMMAND given in '\(text)'") }
    return entries
  }

  /// The digits of N and the command, if `item` is blanks, digits, `:` and the rest.
  private static func split(_ item: Substring) -> (Substring, Substring)? {
    guard let colon = item.firstIndex(of: ":") else { return nil }
    let digits = item[..<colon].drop(while: \.isWhitespace)
    guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
    return (digits, item[item.index(after: colon)...])
  }
}
