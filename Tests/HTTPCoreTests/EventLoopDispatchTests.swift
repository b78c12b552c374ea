import Glibc
import XCTest

@testable import HTTPCore

/// Counts its events; on its first, may run `onFirst`.
private final class PipeHandler: EventHandler {
  let readEnd: Int32
  var events = 0
  var onFirst: (() -> Void)?

  init(readEnd: Int32) { self.readEnd = readEnd }

  func handleEvent(_ readiness: Readiness) {
    events += 1
    var byte: UInt8 = 0
    _ = read(readEnd, &byte, 1)
    if events == 1, let onFirst {
      self.onFirst = nil
      onFirst()
    }
  }
}

final class EventLoopDispatchTests: XCTestCase {
  private func makePipe() -> (read: Int32, write: Int32) {
    var ends: [Int32] = [0, 0]
    XCTAssertEqual(pipe(&ends), 0)
    XCTAssertEqual(fcntl(ends[0], F_SETFL, O_NONBLOCK), 0)
    return (ends[0], ends[1])
  }

  /// Two descriptors ready in one turn: the handler of the first closes the second, and a new
  /// descriptor gets its number and a handler of its own (as when a connection is closed from
  /// another's event and a new one is accepted). The event the second was ready with belongs to
  /// the closed descriptor: it must not reach the new handler, which would take another's
  /// hang-up, say, for its own.
  func testAnEventOfAClosedDescriptorDoesNotReachTheNextOneWithItsNumber() throws {
    let loop = try EventLoop()
    let first = makePipe()
    let second = makePipe()
    let fresh = makePipe()
    defer { for fd in [first.read, first.write, second.write, fresh.write] { close(fd) } }
    let handlers = [PipeHandler(readEnd: first.read), PipeHandler(readEnd: second.read)]
    let newcomer = PipeHandler(readEnd: second.read)
    for (handler, other) in [(handlers[0], handlers[1]), (handlers[1], handlers[0])] {
      // Whichever runs first closes the other and puts the new descriptor at its number.
      handler.onFirst = {
        other.onFirst = nil
        loop.unregister(other.readEnd)
        XCTAssertEqual(dup2(fresh.read, other.readEnd), other.readEnd)
        close(fresh.read)
        try? loop.register(other.readEnd, interest: .readable, handler: newcomer)
      }
    }
    try loop.register(first.read, interest: .readable, handler: handlers[0])
    try loop.register(second.read, interest: .readable, handler: handlers[1])
    var byte: UInt8 = 1
    XCTAssertEqual(write(first.write, &byte, 1), 1)
    XCTAssertEqual(write(second.write, &byte, 1), 1)
    loop.schedule(after: 0.1) { loop.stop() }
    loop.run()
    defer { close(second.read) }
    XCTAssertEqual(handlers[0].events + handlers[1].events, 1, "the first ready ran once")
    XCTAssertEqual(newcomer.events, 0, "its pipe never had anything to read")
  }
}
