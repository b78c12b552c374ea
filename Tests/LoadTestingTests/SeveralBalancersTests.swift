import Foundation
import Glibc
import XCTest

@testable import LoadTesting

/// A stand-in balancer on a loopback port, in this process: it answers every request with a
/// factorial itself, or fails each connection in one way.
private final class FakeBalancer: @unchecked Sendable {
  enum Behaviour {
    /// `200` with a factorial body, on a kept-alive connection.
    case answer
    /// Reads the request and closes the connection without a word.
    case close
    /// Reads the request and resets the connection (SO_LINGER 0).
    case reset
    /// Reads the request and never answers.
    case silent
    /// Answers the first request it reads (as `answer`), then never answers another.
    case answerOnce
    /// Answers (as `answer`), then closes the connection, as a server closing an idle one.
    case answerThenClose
  }

  let behaviour: Behaviour
  let port: Int
  private let listener: Int32
  private let lock = NSLock()
  private var held: [Int32] = []
  private var accepted = 0
  private var requests = 0
  private let done = DispatchGroup()

  init(_ behaviour: Behaviour) throws {
    self.behaviour = behaviour
    listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var on: Int32 = 1
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
    port = try bindLoopback(listener)
    guard listen(listener, 64) == 0 else { throw POSIXError(.EADDRINUSE) }
    let thread = Thread { [self] in acceptLoop() }
    done.enter()
    thread.start()
  }

  var url: String { "http://127.0.0.1:\(port)/" }
  var name: String { "127.0.0.1:\(port)" }

  /// Connections accepted and requests read so far.
  var counts: (connections: Int, requests: Int) {
    lock.withLock { (accepted, requests) }
  }

  private func acceptLoop() {
    defer { done.leave() }
    while true {
      let connection = accept(listener, nil, nil)
      guard connection >= 0 else {
        if errno == EINTR { continue }
        return  // shut down
      }
      lock.withLock {
        accepted += 1
        held.append(connection)
      }
      done.enter()
      Thread { [self] in
        serve(connection)
        done.leave()
      }.start()
    }
  }

  private func serve(_ connection: Int32) {
    var buffer: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    let end: [UInt8] = Array("\r\n\r\n".utf8)
    while true {
      let count = chunk.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
      guard count > 0 else { return release(connection) }
      buffer += chunk[0..<count]
      while let head = buffer.firstRange(of: end) {
        buffer.removeSubrange(..<head.upperBound)
        let number = lock.withLock {
          requests += 1
          return requests
        }
        switch behaviour {
        case .answerOnce where number > 1:
          continue  // held open until stop()
        case .answer, .answerOnce, .answerThenClose:
          let body = "Factorial of 3 = 6\n"
          let response = "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
          _ = Array(response.utf8).withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
          if behaviour == .answerThenClose {
            usleep(20_000)  // after the client has read the answer
            return release(connection)
          }
        case .close:
          return release(connection)
        case .reset:
          var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
          setsockopt(
            connection, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
          return release(connection)
        case .silent:
          return  // held open until stop()
        }
      }
    }
  }

  private func release(_ connection: Int32) {
    lock.withLock { held.removeAll { $0 == connection } }
    close(connection)
  }

  func stop() {
    // Shut down first and close only once every thread has returned: a descriptor closed while
    // the accept loop may still call accept on it could be reused by the next test's listener,
    // whose connections this fake would then take (and refuse) in its old manner.
    shutdown(listener, Int32(SHUT_RDWR))
    for connection in lock.withLock({ held }) { shutdown(connection, Int32(SHUT_RDWR)) }
    _ = done.wait(timeout: .now() + 5)
    close(listener)
    for connection in lock.withLock({ held }) { close(connection) }
  }
}

/// Binds `fd` to 127.0.0.1 on a free port and returns the port.
private func bindLoopback(_ fd: Int32) throws -> Int {
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  address.sin_port = 0
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  let bound = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
      bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
    }
  }
  guard bound else { throw POSIXError(.EADDRNOTAVAIL) }
  return Int(UInt16(bigEndian: address.sin_port))
}

/// `count` distinct loopback ports nothing listens on (bound together, then closed): connections
/// are refused.
private func deadPorts(_ count: Int) throws -> [Int] {
  let fds = (0..<count).map { _ in socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }
  defer { for fd in fds { close(fd) } }
  return try fds.map(bindLoopback)
}

private func deadURLs(_ count: Int) throws -> [String] {
  try deadPorts(count).map { "http://127.0.0.1:\($0)/" }
}

final class SeveralBalancersTests: XCTestCase {
  private var fakes: [FakeBalancer] = []

  override func tearDown() {
    for fake in fakes { fake.stop() }
    fakes.removeAll()
  }

  private func fake(_ behaviour: FakeBalancer.Behaviour) throws -> FakeBalancer {
    let balancer = try FakeBalancer(behaviour)
    fakes.append(balancer)
    return balancer
  }

  private func run(
    _ urls: [String], requests: Int, concurrency: Int = 2, retries: Int = 3, timeout: Double = 5
  ) throws -> LoadReport {
    var configuration = LoadRunner.Configuration(
      balancers: try LoadRunner.Configuration.balancers(from: urls.joined(separator: ",")))
    configuration.requests = requests
    configuration.concurrency = concurrency
    configuration.retries = retries
    configuration.timeout = timeout
    return LoadRunner(configuration: configuration).run()
  }

  func testParsesOneOrSeveralURLs() throws {
    let one = try LoadRunner.Configuration.balancers(from: "http://127.0.0.1:8001/")
    XCTAssertEqual(one.map(\.description), ["http://127.0.0.1:8001/"])
    let several = try LoadRunner.Configuration.balancers(
      from: "http://127.0.0.1:8001/,http://localhost:8002,http://10.0.0.3:80/?n=5")
    XCTAssertEqual(
      several.map(\.description),
      ["http://127.0.0.1:8001/", "http://localhost:8002/", "http://10.0.0.3:80/?n=5"])
    XCTAssertEqual(several.map(\.hostHeader), ["127.0.0.1:8001", "localhost:8002", "10.0.0.3:80"])
    // The same message as for one bad URL, naming the bad item.
    for (text, message) in [
      ("127.0.0.1:8001", "'127.0.0.1:8001' is not an http://host:port/ URL"),
      ("http://127.0.0.1:8001/,", "'' is not an http://host:port/ URL"),
      (",http://127.0.0.1:8001/", "'' is not an http://host:port/ URL"),
      ("http://127.0.0.1:8001/,,http://127.0.0.1:8002/", "'' is not an http://host:port/ URL"),
      (
        "http://127.0.0.1:8001/,https://127.0.0.1:8002/",
        "'https://127.0.0.1:8002/' is not an http://host:port/ URL"
      ),
      (
        "http://127.0.0.1:8001/,http://127.0.0.1/",
        "'http://127.0.0.1/' is not an http://host:port/ URL"
      ),
      ("", "'' is not an http://host:port/ URL"),
      (
        "http://127.0.0.1:8001/,http://127.0.0.1:8001/other",
        "'http://127.0.0.1:8001/other' names the same balancer as 'http://127.0.0.1:8001/'"
      ),
    ] {
      XCTAssertThrowsError(try LoadRunner.Configuration.balancers(from: text), text) { error in
        XCTAssertEqual("\(error)", message)
      }
    }
  }

  func testVisitIStartsAtBalancerIModK() throws {
    let urls = try LoadRunner.Configuration.balancers(
      from: "http://127.0.0.1:1/,http://127.0.0.1:2/,http://127.0.0.1:3/")
    let configuration = LoadRunner.Configuration(balancers: urls)
    XCTAssertEqual((0..<7).map { configuration.firstBalancer(visit: $0) }, [0, 1, 2, 0, 1, 2, 0])
    XCTAssertEqual(configuration.url.description, "http://127.0.0.1:1/")
    let single = LoadRunner.Configuration(url: urls[1])
    XCTAssertEqual((0..<3).map { single.firstBalancer(visit: $0) }, [0, 0, 0])
  }

  func testVisitsAreSpreadOverTheBalancersInTurn() throws {
    let a = try fake(.answer)
    let b = try fake(.answer)
    let report = try run([a.url, b.url], requests: 10)
    XCTAssertEqual(report.succeeded, 10)
    XCTAssertEqual(report.retries, 0)
    for visit in report.visits {
      XCTAssertEqual(visit.balancer, [a.name, b.name][visit.index % 2], "visit \(visit.index)")
    }
    XCTAssertEqual(report.answeredPerBalancer.map(\.0), [a.name, b.name])
    XCTAssertEqual(report.answeredPerBalancer.map(\.1), [5, 5])
    XCTAssertEqual(a.counts.requests, 5)
    XCTAssertEqual(b.counts.requests, 5)
    XCTAssertEqual(report.url, "\(a.url),\(b.url)")
  }

  func testARefusingBalancerSendsTheVisitToTheNext() throws {
    let a = try fake(.answer)
    let dead = try deadURLs(1)[0]
    let report = try run([a.url, dead], requests: 10)
    XCTAssertEqual(report.succeeded, 10, "\(report.visits.map(\.detail))")
    XCTAssertEqual(report.retries, 5, "one for each visit that started at the dead one")
    XCTAssertEqual(report.balancerRetries, 5)
    for visit in report.visits {
      XCTAssertEqual(visit.retries, visit.index % 2, "visit \(visit.index)")
      XCTAssertEqual(visit.balancer, a.name)
    }
    XCTAssertEqual(report.answeredPerBalancer.map(\.1), [10, 0])
    XCTAssertEqual(a.counts.requests, 10)
  }

  /// A balancer killed while its clients wait in line closes their connections (or resets them):
  /// the visit goes on to the next one.
  func testADroppedOrResetConnectionSendsTheVisitToTheNext() throws {
    for behaviour in [FakeBalancer.Behaviour.close, .reset] {
      let dropping = try fake(behaviour)
      let b = try fake(.answer)
      let report = try run([dropping.url, b.url], requests: 10)
      XCTAssertEqual(report.succeeded, 10, "\(behaviour): \(report.visits.map(\.detail))")
      XCTAssertEqual(report.balancerRetries, 5, "\(behaviour)")
      XCTAssertEqual(dropping.counts.requests, 5, "\(behaviour): each visit asked it once")
      XCTAssertEqual(report.answeredPerBalancer.map(\.1), [0, 10], "\(behaviour)")
    }
  }

  /// A balancer that is slow, not gone, keeps the visit: its request may still be in its line.
  func testATimeoutIsNotTriedElsewhere() throws {
    let silent = try fake(.silent)
    let b = try fake(.answer)
    let report = try run([silent.url, b.url], requests: 2, timeout: 0.3)
    XCTAssertEqual(report.visits[0].outcome, .balancerUnreachable)
    XCTAssertEqual(report.visits[0].retries, 0)
    XCTAssertTrue(report.visits[0].detail.hasPrefix(silent.name + ": "), report.visits[0].detail)
    XCTAssertEqual(report.visits[1].outcome, .ok)
    XCTAssertEqual(b.counts.requests, 1)
  }

  func testRetriesAreBounded() throws {
    let dead = try deadURLs(2)
    let (deadA, deadB) = (dead[0], dead[1])
    // Every balancer gone: the visit goes round them --retries times, then is unreachable.
    let report = try run([deadA, deadB], requests: 4, retries: 3)
    XCTAssertEqual(report.succeeded, 0)
    for visit in report.visits {
      XCTAssertEqual(visit.outcome, .balancerUnreachable)
      XCTAssertEqual(visit.retries, 3)
      XCTAssertEqual(visit.balancerRetries, 3)
      XCTAssertNil(visit.balancer)
    }
    // --retries 0: no second balancer either.
    let a = try fake(.answer)
    let none = try run([deadA, a.url], requests: 4, retries: 0)
    XCTAssertEqual(
      none.visits.map(\.outcome), [.balancerUnreachable, .ok, .balancerUnreachable, .ok],
      none.visits.map(\.detail).joined(separator: " | "))
    XCTAssertEqual(none.retries, 0)
  }

  /// With one URL, a refusing balancer fails the visit at once, as before there could be several.
  func testOneBalancerIsNotRetried() throws {
    let report = try run(try deadURLs(1), requests: 3)
    XCTAssertEqual(report.visits.map(\.outcome), Array(repeating: .balancerUnreachable, count: 3))
    XCTAssertEqual(report.retries, 0)
    XCTAssertFalse(report.visits[0].detail.hasPrefix("127.0.0.1:"), report.visits[0].detail)
    XCTAssertTrue(report.answeredPerBalancer.isEmpty)
  }

  /// A request that times out on a kept-alive connection is not sent again on a new one: the
  /// balancer has it (a waiting client in its line), so sending it again doubled the visit's
  /// wait to twice --timeout and put a second request in the line. Only a connection the
  /// balancer closed while it was idle is retried.
  func testATimedOutRequestOnAKeptConnectionIsNotSentAgain() throws {
    let once = try fake(.answerOnce)
    let started = Date()
    let report = try run([once.url], requests: 2, concurrency: 1, timeout: 0.5)
    let elapsed = Date().timeIntervalSince(started)
    XCTAssertEqual(report.visits.map(\.outcome), [.ok, .balancerUnreachable])
    XCTAssertEqual(once.counts.requests, 2, "the timed-out request was sent again")
    XCTAssertEqual(once.counts.connections, 1)
    XCTAssertLessThan(report.visits[1].totalMilliseconds, 1000, "waited twice the timeout")
    XCTAssertLessThan(elapsed, 2)
  }

  /// A kept-alive connection the balancer closed while idle is retried on a new one: the
  /// request was never read.
  func testAKeptConnectionClosedWhileIdleIsRetried() throws {
    let closing = try fake(.answerThenClose)
    let report = try run([closing.url], requests: 3, concurrency: 1, timeout: 2)
    XCTAssertEqual(report.succeeded, 3, report.visits.map(\.detail).description)
    XCTAssertEqual(closing.counts.connections, 3)
    XCTAssertEqual(closing.counts.requests, 3)
  }
}

final class SeveralBalancersReportTests: XCTestCase {
  private func visits(balancers: [String?]) -> [Visit] {
    balancers.enumerated().map { index, balancer in
      var visit = Visit(
        index: index, start: 0, end: 0.01, outcome: balancer == nil ? .balancerUnreachable : .ok,
        status: balancer == nil ? 0 : 200, server: balancer == nil ? nil : "5001",
        balancerMilliseconds: 1, serverMilliseconds: 2)
      visit.balancer = balancer
      if index % 2 == 1 {
        visit.retries = 1
        visit.balancerRetries = 1
      }
      return visit
    }
  }

  func testSeveralBalancersAreReportedInTheOrderGiven() throws {
    let report = LoadReport(
      visits: visits(balancers: ["b:2", "a:1", "b:2", nil]), duration: 1, concurrency: 2,
      url: "http://b:2/,http://a:1/,http://c:3/", balancers: ["b:2", "a:1", "c:3"])
    XCTAssertEqual(report.answeredPerBalancer.map(\.0), ["b:2", "a:1", "c:3"])
    XCTAssertEqual(report.answeredPerBalancer.map(\.1), [2, 1, 0])
    XCTAssertEqual(report.retries, 2)
    XCTAssertEqual(report.balancerRetries, 2)
    XCTAssertTrue(
      report.text.contains("visits answered per balancer (the first to answer each):"),
      report.text)
    XCTAssertTrue(
      report.text.contains("retries: 2 (after a lost server 0, at the next balancer 2)"),
      report.text)
    XCTAssertTrue(report.text.contains("  b:2       2   50.0%"), report.text)
    XCTAssertTrue(report.text.contains("  c:3       0    0.0%"), report.text)
    let json = try JSONSerialization.jsonObject(with: Data(report.json.utf8)) as! [String: Any]
    XCTAssertEqual(json["answered_per_balancer"] as? [String: Int], ["a:1": 1, "b:2": 2, "c:3": 0])
    XCTAssertEqual(json["balancer_retries"] as? Int, 2)
    // The summary fields keep their meaning.
    XCTAssertEqual(json["url"] as? String, "http://b:2/,http://a:1/,http://c:3/")
    XCTAssertEqual(json["succeeded"] as? Int, 3)
    XCTAssertEqual(json["retries"] as? Int, 2)
    XCTAssertEqual(json["jobs_per_server"] as? [String: Int], ["5001": 3])
  }

  func testOneBalancerReportsAsBefore() throws {
    for balancers in [[], ["a:1"], ["a:1", "a:1"]] {
      let report = LoadReport(
        visits: visits(balancers: ["a:1", "a:1"]), duration: 1, concurrency: 2, url: "http://a:1/",
        balancers: balancers)
      XCTAssertTrue(report.answeredPerBalancer.isEmpty)
      XCTAssertFalse(report.text.contains("per balancer"), report.text)
      XCTAssertTrue(report.text.contains("retries after a lost server: 1"), report.text)
      let json = try JSONSerialization.jsonObject(with: Data(report.json.utf8)) as! [String: Any]
      XCTAssertNil(json["answered_per_balancer"])
      XCTAssertNil(json["balancer_retries"])
      XCTAssertEqual(
        Set(json.keys),
        [
          "url", "visits", "concurrency", "duration_s", "succeeded", "throughput_rps", "retries",
          "outcomes", "status_codes", "jobs_per_server", "latency_ms",
        ])
    }
  }
}
