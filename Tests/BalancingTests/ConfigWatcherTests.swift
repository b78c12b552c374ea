import Foundation
import XCTest

@testable import Balancing

final class ConfigWatcherTests: XCTestCase {
  private var directory: URL!
  private var lastWrittenSize: Int?
  private var path: String { directory.appendingPathComponent("servers.json").path }

  override func setUpWithError() throws {
    directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("ConfigWatcherTests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    lastWrittenSize = nil
  }

  override func tearDownWithError() throws {
    if let directory { try? FileManager.default.removeItem(at: directory) }
    directory = nil
  }

  // MARK: - Helpers

  /// Replaces the file as an editor or `ServersFile.write` does: a temporary file, then a rename.
  /// Successive edits in a test use texts of different lengths, so that the size part of the
  /// watcher's stamp changes even when the modification time does not (coarse timestamps).
  private func replace(
    with text: String, sameSizeAllowed: Bool = false, file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    if !sameSizeAllowed, let lastSize = lastWrittenSize {
      XCTAssertNotEqual(
        text.utf8.count, lastSize, "test bug: an edit of the same size may look unchanged",
        file: file, line: line)
    }
    lastWrittenSize = text.utf8.count
    let temporary = path + ".tmp"
    try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
    XCTAssertEqual(rename(temporary, path), 0, "rename: \(String(cString: strerror(errno)))")
  }

  /// Sets the file's modification time, to make the stamp repeat exactly.
  private func setModificationDate(_ date: Date) throws {
    try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: path)
  }

  private func servers(
    _ change: ConfigWatcher.Change, file: StaticString = #filePath, line: UInt = #line
  )
    -> [ServerAddress]?
  {
    guard case .valid(let serversFile) = change else {
      XCTFail("expected .valid, got \(change)", file: file, line: line)
      return nil
    }
    return serversFile.servers
  }

  private func message(
    _ change: ConfigWatcher.Change, file: StaticString = #filePath, line: UInt = #line
  )
    -> String?
  {
    guard case .invalid(let message) = change else {
      XCTFail("expected .invalid, got \(change)", file: file, line: line)
      return nil
    }
    return message
  }

  private func assertUnchanged(
    _ change: ConfigWatcher.Change, file: StaticString = #filePath, line: UInt = #line
  ) {
    guard case .unchanged = change else {
      XCTFail("expected .unchanged, got \(change)", file: file, line: line)
      return
    }
  }

  private func ports(_ ports: Int...) -> [ServerAddress] { ports.map { ServerAddress(port: $0) } }

  // MARK: - Tests

  func testUnchangedFileIsUnchanged() throws {
    try replace(with: #"{"available_servers": ["5001", "5002"]}"#)
    let watcher = ConfigWatcher(path: path)
    XCTAssertEqual(watcher.path, path)
    assertUnchanged(watcher.poll())
    assertUnchanged(watcher.poll())
  }

  func testEditIsValidWithTheNewServers() throws {
    try replace(with: #"{"available_servers": ["5001"]}"#)
    let watcher = ConfigWatcher(path: path)

    try replace(with: #"{"available_servers": ["5001", 5002, "10.0.0.7:5003"]}"#)
    XCTAssertEqual(
      servers(watcher.poll()),
      ports(5001, 5002) + [ServerAddress(host: "10.0.0.7", port: 5003)])
    // The edit has been seen: polling again reports nothing new.
    assertUnchanged(watcher.poll())

    try replace(with: #"{"available_servers": [5004]}"#)
    XCTAssertEqual(servers(watcher.poll()), ports(5004))
    assertUnchanged(watcher.poll())
  }

  func testEditWrittenByServersFileIsPickedUp() throws {
    try ServersFile(servers: ports(5001)).write(to: path)
    let watcher = ConfigWatcher(path: path)
    let edited = ServersFile(entries: [
      ServerEntry(address: ServerAddress(port: 5001)),
      ServerEntry(name: "S4", address: ServerAddress(port: 5006)),
    ])
    try edited.write(to: path)
    guard case .valid(let file) = watcher.poll() else { return XCTFail("expected .valid") }
    XCTAssertEqual(file, edited)
  }

  func testRewritingTheSameContentIsUnchanged() throws {
    let text = #"{"available_servers": ["5001", "5002"]}"#
    try replace(with: text)
    try setModificationDate(Date(timeIntervalSince1970: 1_600_000_000))
    let watcher = ConfigWatcher(path: path)
    // A new file with a new modification time but the same bytes is not an edit.
    try replace(with: text, sameSizeAllowed: true)
    try setModificationDate(Date(timeIntervalSince1970: 1_600_000_100))
    assertUnchanged(watcher.poll())
    assertUnchanged(watcher.poll())
  }

  func testInvalidJSONNamesThePathAndTheNextValidEditIsPickedUp() throws {
    try replace(with: #"{"available_servers": ["5001"]}"#)
    let watcher = ConfigWatcher(path: path)

    try replace(with: #"{"available_servers": ["#)
    let problem = message(watcher.poll())
    XCTAssertEqual(problem, "\(path): not valid JSON")
    XCTAssertTrue(problem?.hasPrefix(path) ?? false, problem ?? "nil")
    // The broken file is reported once, not on every poll.
    assertUnchanged(watcher.poll())

    try replace(with: #"{"available_servers": ["5001", "5002", "5003"]}"#)
    XCTAssertEqual(servers(watcher.poll()), ports(5001, 5002, 5003))
  }

  /// The watcher remembers whether the version on disk could be loaded, until the file changes.
  func testThePendingProblemLastsAsLongAsTheVersionOnDisk() throws {
    try replace(with: #"{"available_servers": ["5001"]}"#)
    let watcher = ConfigWatcher(path: path)
    XCTAssertNil(watcher.pendingProblem)

    try replace(with: #"{"available_servers": ["#)
    XCTAssertEqual(message(watcher.poll()), "\(path): not valid JSON")
    XCTAssertEqual(watcher.pendingProblem, "\(path): not valid JSON")
    assertUnchanged(watcher.poll())
    XCTAssertEqual(watcher.pendingProblem, "\(path): not valid JSON", "still on disk")

    // Valid JSON whose pool the balancer refuses: pending too, until the next edit.
    try replace(with: #"{"available_servers": ["5001", "5002"]}"#)
    XCTAssertEqual(servers(watcher.poll()), ports(5001, 5002))
    XCTAssertNil(watcher.pendingProblem)
    watcher.reject("\(path): refused")
    assertUnchanged(watcher.poll())
    XCTAssertEqual(watcher.pendingProblem, "\(path): refused")

    try replace(with: #"{"available_servers": ["5001"]}"#)
    XCTAssertEqual(servers(watcher.poll()), ports(5001))
    XCTAssertNil(watcher.pendingProblem)

    // No file: nothing a rewrite would lose.
    try FileManager.default.removeItem(atPath: path)
    XCTAssertEqual(message(watcher.poll()), "\(path): cannot read the file")
    XCTAssertNil(watcher.pendingProblem)
  }

  /// The file unreadable for a while (a directory in its place here; permissions, for a
  /// balancer that is not root), then back as it was: loaded again, nothing left pending (found
  /// by a user's audit: its text matched the last one read, and the problem stayed until a
  /// SIGHUP, so `/add` and `/rm` answered 409).
  func testAFileUnreadableForAWhileThenBackAsItWasIsLoadedAgain() throws {
    try replace(with: #"{"available_servers": ["5001"]}"#)
    let watcher = ConfigWatcher(path: path)
    let aside = path + ".aside"
    XCTAssertEqual(rename(path, aside), 0)
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    XCTAssertEqual(message(watcher.poll()), "\(path): cannot read the file")
    XCTAssertEqual(watcher.pendingProblem, "\(path): cannot read the file")
    try FileManager.default.removeItem(atPath: path)
    XCTAssertEqual(rename(aside, path), 0)
    XCTAssertEqual(servers(watcher.poll()), ports(5001))
    XCTAssertNil(watcher.pendingProblem)
  }

  /// The balancer's own rewrite (`/add`, `/rm`) is the text it compares the next edit with: an
  /// edit back to the text before the rewrite is an edit.
  func testAnEditBackToTheTextBeforeTheBalancersRewriteIsAnEdit() throws {
    let original = #"{"available_servers": ["5001", "5002"]}"#
    try replace(with: original)
    let watcher = ConfigWatcher(path: path)
    let rewritten = ServersFile(servers: ports(5002))
    try rewritten.write(to: path)
    watcher.wrote(rewritten)
    assertUnchanged(watcher.poll())
    try replace(with: original, sameSizeAllowed: true)
    XCTAssertEqual(servers(watcher.poll()), ports(5001, 5002))
  }

  func testValidJSONThatIsNotAPoolIsInvalid() throws {
    try replace(with: #"{"available_servers": ["5001"]}"#)
    let watcher = ConfigWatcher(path: path)

    try replace(with: #"{"available_servers": []}"#)
    XCTAssertEqual(message(watcher.poll()), "\(path): \"available_servers\" is empty")

    try replace(with: #"{"available_servers": ["5001", 5001]}"#)
    let problem = message(watcher.poll())
    XCTAssertTrue(problem?.hasPrefix("\(path): ") ?? false, problem ?? "nil")
    XCTAssertTrue(problem?.contains("listed twice") ?? false, problem ?? "nil")
  }

  func testForcedPollRereadsAnUnchangedFile() throws {
    try replace(with: #"{"available_servers": ["5001", "5002"]}"#)
    let watcher = ConfigWatcher(path: path)
    assertUnchanged(watcher.poll())
    XCTAssertEqual(servers(watcher.poll(force: true)), ports(5001, 5002))
    XCTAssertEqual(servers(watcher.poll(force: true)), ports(5001, 5002))
    assertUnchanged(watcher.poll())
  }

  func testAnEditOfTheSameSizeAndModificationTimeIsSeen() throws {
    let stamp = Date(timeIntervalSince1970: 1_600_000_000)
    try replace(with: #"{"available_servers": ["5001"]}"#)
    try setModificationDate(stamp)
    let watcher = ConfigWatcher(path: path)

    // Same size and same modification time, but another file (renamed over it).
    try replace(with: #"{"available_servers": ["5009"]}"#, sameSizeAllowed: true)
    try setModificationDate(stamp)
    XCTAssertEqual(servers(watcher.poll()), ports(5009))
    XCTAssertEqual(servers(watcher.poll(force: true)), ports(5009))
    assertUnchanged(watcher.poll())
  }

  /// servers.json a symbolic link to one of two versions of the same size and modification time
  /// (as files in a Nix store, all dated 1970), the link swapped to the other: an edit.
  func testASymlinkSwappedToAnotherFileOfTheSameStampIsAnEdit() throws {
    let stamp = Date(timeIntervalSince1970: 1)
    let first = directory.appendingPathComponent("first.json").path
    let second = directory.appendingPathComponent("second.json").path
    for (target, port) in [(first, 5001), (second, 5002)] {
      try Data(#"{"available_servers": ["\#(port)"]}"#.utf8).write(to: URL(fileURLWithPath: target))
      try FileManager.default.setAttributes([.modificationDate: stamp], ofItemAtPath: target)
    }
    XCTAssertEqual(symlink(first, path), 0)
    let watcher = ConfigWatcher(path: path)
    assertUnchanged(watcher.poll())

    // Swapped atomically, as `ln -sfn` through a temporary link does.
    let link = path + ".link"
    XCTAssertEqual(symlink(second, link), 0)
    XCTAssertEqual(rename(link, path), 0)
    XCTAssertEqual(servers(watcher.poll()), ports(5002))
    assertUnchanged(watcher.poll())
  }

  func testForcedPollReportsAnInvalidFileAgain() throws {
    try replace(with: "not json at all")
    let watcher = ConfigWatcher(path: path)
    assertUnchanged(watcher.poll())
    XCTAssertEqual(message(watcher.poll(force: true)), "\(path): not valid JSON")
    XCTAssertEqual(message(watcher.poll(force: true)), "\(path): not valid JSON")
  }

  func testMissingFileCannotBeRead() throws {
    let watcher = ConfigWatcher(path: path)
    let problem = message(watcher.poll())
    XCTAssertEqual(problem, "\(path): cannot read the file")
    XCTAssertTrue(problem?.contains("cannot read") ?? false, problem ?? "nil")
    XCTAssertEqual(message(watcher.poll(force: true)), "\(path): cannot read the file")
  }

  func testDeletedFileCannotBeReadAndItsReturnIsPickedUp() throws {
    try replace(with: #"{"available_servers": ["5001"]}"#)
    let watcher = ConfigWatcher(path: path)

    try FileManager.default.removeItem(atPath: path)
    XCTAssertEqual(message(watcher.poll()), "\(path): cannot read the file")
    // Said once: the balancer logs every problem a check finds, and it checks every second.
    assertUnchanged(watcher.poll())
    assertUnchanged(watcher.poll())
    XCTAssertEqual(message(watcher.poll(force: true)), "\(path): cannot read the file")

    try replace(with: #"{"available_servers": ["5001", "5002"]}"#)
    XCTAssertEqual(servers(watcher.poll()), ports(5001, 5002))
    assertUnchanged(watcher.poll())
  }
}
