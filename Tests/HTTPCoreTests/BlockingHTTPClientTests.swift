import Foundation
import Glibc
import HTTPCore
import Synchronization
import XCTest

/// The blocking client's own descriptor handling.
final class BlockingHTTPClientTests: XCTestCase {
  /// A refused connection closes its socket once: closed twice (again when the object went
  /// away), the second close hit whatever descriptor another thread had opened with that number
  /// meanwhile (the load tester's connections failed with "Bad file descriptor").
  func testARefusedConnectionDoesNotCloseAnotherThreadsDescriptor() throws {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0
      }
    }
    let deadPort = Int(UInt16(bigEndian: address.sin_port))
    close(listener)  // bound, never listened: connections are refused

    let stop = Atomic<Bool>(false)
    let lost = Atomic<Int>(0)
    let watcher = Thread {
      // Opens pipes and checks that each stays open while the other thread fails to connect.
      while !stop.load(ordering: .relaxed) {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { continue }
        for _ in 0..<20 where fcntl(ends[0], F_GETFD) == -1 || fcntl(ends[1], F_GETFD) == -1 {
          lost.add(1, ordering: .relaxed)
          break
        }
        close(ends[0])
        close(ends[1])
      }
    }
    watcher.start()
    let deadline = Date(timeIntervalSinceNow: 1.5)
    while Date() < deadline && lost.load(ordering: .relaxed) == 0 {
      XCTAssertThrowsError(try BlockingHTTPClient(port: deadPort, timeout: 1))
    }
    stop.store(true, ordering: .relaxed)
    while !watcher.isFinished { usleep(1000) }
    XCTAssertEqual(lost.load(ordering: .relaxed), 0, "another thread's descriptor was closed")
  }
}
