import Foundation
import XCTest

@testable import Balancing

final class ServersFileTests: XCTestCase {
  private func parse(_ json: String) throws(ServersFile.Invalid) -> ServersFile {
    try ServersFile.parse(Data(json.utf8))
  }

  private func problem(_ json: String) -> String {
    do {
      _ = try parse(json)
      return "accepted"
    } catch {
      return error.message
    }
  }

  func testPortsAsStringsNumbersAndHostPort() throws {
    XCTAssertEqual(try parse(#"{"available_servers": [1]}"#).servers, [ServerAddress(port: 1)])
    let file = try parse(#"{"available_servers": ["5001", 5002, "10.0.0.7:5003", "[::1]:5004"]}"#)
    XCTAssertEqual(
      file.servers,
      [
        ServerAddress(port: 5001), ServerAddress(port: 5002),
        ServerAddress(host: "10.0.0.7", port: 5003), ServerAddress(host: "[::1]", port: 5004),
      ])
    XCTAssertEqual(try parse(file.json), file)
  }

  func testNamedEntries() throws {
    let file = try parse(
      #"{"available_servers": ["5001", {"name": "S4", "port": 5006}, {"name": "far", "host": "10.0.0.2", "port": "7000"}]}"#
    )
    XCTAssertEqual(file.entries[1], ServerEntry(name: "S4", address: ServerAddress(port: 5006)))
    XCTAssertEqual(file.entries[2].address, ServerAddress(host: "10.0.0.2", port: 7000))
    XCTAssertEqual(file.entries.map(\.displayName), ["5001", "S4", "far"])
    XCTAssertEqual(try parse(file.json), file)
    XCTAssertTrue(
      problem(#"{"available_servers": [{"name": "S4"}]}"#).contains("entry 1 (an object)"))
    XCTAssertTrue(problem(#"{"available_servers": [{"name": "", "port": 1}]}"#).contains("entry 1"))
    XCTAssertTrue(
      problem(#"{"available_servers": [{"name": "5002", "port": 1}]}"#).contains("entry 1"))
    XCTAssertTrue(
      problem(#"{"available_servers": [{"name": "a", "port": 1, "x": 2}]}"#).contains("entry 1"))
    // A port out of range is a mistaken address, not a label.
    for name in ["70000", "0", "050010", "host:0", "[::1]:99999"] {
      XCTAssertFalse(ServersFile.isValidName(name), name)
      XCTAssertTrue(
        problem(#"{"available_servers": [{"name": "\#(name)", "port": 1}]}"#).contains("entry 1"),
        name)
    }
    XCTAssertTrue(ServersFile.isValidName("S4 (rack 2)"))
    XCTAssertEqual(
      problem(#"{"available_servers": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]}"#),
      #"entry 2: the name "a" is used twice"#)
  }

  func testInvalidFilesAreRejectedWithAReason() {
    XCTAssertEqual(problem("{"), "not valid JSON")
    XCTAssertEqual(problem("[]"), #"expected a JSON object with the key "available_servers""#)
    XCTAssertEqual(problem(#"{"servers": []}"#), #"missing the key "available_servers""#)
    XCTAssertEqual(
      problem(#"{"available_servers": "5001"}"#), #""available_servers" must be a list"#)
    XCTAssertEqual(problem(#"{"available_servers": []}"#), #""available_servers" is empty"#)
    XCTAssertTrue(problem(#"{"available_servers": ["70000"]}"#).contains("entry 1 (\"70000\")"))
    XCTAssertTrue(problem(#"{"available_servers": [0]}"#).contains("entry 1"))
    XCTAssertTrue(problem(#"{"available_servers": [5001.5]}"#).contains("entry 1"))
    // Named as written (it said "entry 1 (1)": helper-39's audit).
    XCTAssertTrue(problem(#"{"available_servers": [true]}"#).contains("entry 1 (true)"))
    XCTAssertTrue(problem(#"{"available_servers": [[5001]]}"#).contains("entry 1 (a list)"))
    XCTAssertTrue(problem(#"{"available_servers": [null]}"#).contains("entry 1 (null)"))
    XCTAssertTrue(problem(#"{"available_servers": ["50 01"]}"#).contains("entry 1"))
    XCTAssertTrue(problem(#"{"available_servers": ["-1"]}"#).contains("entry 1"))
    XCTAssertEqual(
      problem(#"{"available_servers": ["5001", 5001]}"#), "entry 2 (5001) is listed twice")
  }

  /// A port is a whole number written as one: `48101.0`, `4.8101e4` or `48101e0` (which JSON
  /// reads as the same value) are refused like `5001.5`, as a plain entry and as a labelled one.
  func testPortsWithAFractionOrAnExponentAreRefused() {
    for number in ["48101.0", "4.8101e4", "48101e0", "48101.000000000001"] {
      let message = problem(#"{"available_servers": [\#(number)]}"#)
      XCTAssertTrue(message.hasPrefix("entry 1 ("), message)
      XCTAssertTrue(message.contains("is not a port from 1 to 65535"), message)
      XCTAssertTrue(
        problem(#"{"available_servers": [{"name": "S4", "port": \#(number)}]}"#)
          .contains("entry 1 (an object)"), number)
    }
    XCTAssertEqual(
      try? parse(#"{"available_servers": [48101]}"#).servers, [ServerAddress(port: 48101)])
  }

  func testLoadNamesTheFile() throws {
    let path = NSTemporaryDirectory() + "servers-\(UUID().uuidString).json"
    defer { try? FileManager.default.removeItem(atPath: path) }
    XCTAssertThrowsError(try ServersFile.load(path: path)) { error in
      XCTAssertEqual((error as? ServersFile.Invalid)?.message, "\(path): cannot read the file")
    }
    try Data(#"{"available_servers": []}"#.utf8).write(to: URL(fileURLWithPath: path))
    XCTAssertThrowsError(try ServersFile.load(path: path)) { error in
      XCTAssertEqual(
        (error as? ServersFile.Invalid)?.message, #"\#(path): "available_servers" is empty"#)
    }
  }
}

final class ServerAddressTests: XCTestCase {
  func testPortsAreOneTo65535InPlainDigits() {
    for (text, port) in [("1", 1), ("5001", 5001), ("65535", 65535), ("00080", 80)] {
      XCTAssertEqual(ServerAddress.parsePort(Substring(text)), port, text)
    }
    for text in ["", "0", "65536", "99999", "123456", "-1", "+1", " 1", "1 ", "1a", "٣", "1.0"] {
      XCTAssertNil(ServerAddress.parsePort(Substring(text)), text)
    }
  }
}
