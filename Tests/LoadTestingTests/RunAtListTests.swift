import XCTest

@testable import LoadTesting

/// `--run-at`'s entries: a `;` starts a new one only before `N:`, so a shell list stays one
/// command (`5:echo a; echo b` was refused: "' echo b' is not N:COMMAND").
final class RunAtListTests: XCTestCase {
  private func parse(_ text: String) throws -> [String] {
    try RunAtList.parse(text, visits: 1000).map { "\($0.visits)|\($0.command)" }
  }

  func testASemicolonInACommandBelongsToIt() throws {
    XCTAssertEqual(try parse("5:echo a; echo b"), ["5|echo a; echo b"])
    XCTAssertEqual(try parse("5:echo a;echo b;9:kill %1"), ["5|echo a;echo b", "9|kill %1"])
    XCTAssertEqual(try parse("5:date;"), ["5|date;"])
    XCTAssertEqual(try parse("3:a;6:b"), ["3|a", "6|b"])
    XCTAssertEqual(try parse("1000:pkill -f 'x:y'"), ["1000|pkill -f 'x:y'"])
  }

  /// Blanks before N, a space or a tab, still start an entry (a tab made it part of the command
  /// before it).
  func testBlanksBeforeNStartAnEntry() throws {
    XCTAssertEqual(try parse("5:echo a; 9:echo b"), ["5|echo a", "9|echo b"])
    XCTAssertEqual(try parse("5:a;\t9:b"), ["5|a", "9|b"])
    XCTAssertEqual(try parse(" 5:a"), ["5|a"])
  }

  /// Each refusal quotes the entry as typed (an N too large for an Int was named as
  /// 9223372036854775807, and leading blanks were dropped); an entry with no command is refused
  /// even when a `;` follows it (`5:;echo b` ran `;echo b`, which sh refuses).
  func testBadEntriesAreRefusedAsTyped() {
    for (text, message) in [
      (";", "no N:COMMAND given in ';'"), ("", "no N:COMMAND given in ''"),
      ("echo a", "'echo a' is not N:COMMAND"), ("0:echo", "'0:echo' is not N:COMMAND"),
      ("5:a;0:b", "'0:b' is not N:COMMAND"), ("x:5", "'x:5' is not N:COMMAND"),
      ("5:", "'5:' has no command"), ("5:  ", "'5:  ' has no command"),
      ("5:;9:b", "'5:' has no command"), ("5:;echo b", "'5:' has no command"),
      ("99999999999999999999:", "'99999999999999999999:' has no command"),
      ("1001:x", "'1001:x' would never run: N is above --requests (1000)"),
      (
        "1:a; 99999999999999999999:x",
        "' 99999999999999999999:x' would never run: N is above --requests (1000)"
      ),
    ] {
      XCTAssertThrowsError(try RunAtList.parse(text, visits: 1000), text) {
        XCTAssertEqual(($0 as? RunAtList.Invalid)?.description, message, text)
      }
    }
  }
}
