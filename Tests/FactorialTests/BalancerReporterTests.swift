import FactorialService
import Foundation
import HTTPCore
import TestSupport
import XCTest

@testable import FactorialServerApp

/// A stand-in balancer: records the targets it is sent and answers each with `status` (0: never
/// answers). Used on the loop's thread only.
private final class FakeBalancer: HTTPHandler {
  var status: Int
  var targets: [String] = []
  /// Whether every report asked for a minimal answer (`Prefer: return=minimal`).
  var allPreferMinimal = true
  private var parked: [HTTPResponder] = []

  init(status: Int) { self.status = status }

  func handle(_ request: HTTPRequest, responder: HTTPResponder) {
    targets.append(request.target)
    allPreferMinimal = allPreferMinimal && request.prefersMinimalReturn
    guard status != 0 else { return parked.append(responder) }
    if status == 204 {
      responder.respond(HTTPResponse(status: .noContent))
      return
    }
    responder.respond(.text(HTTPStatus(status, status < 300 ? "OK" : "No"), "status \(status)"))
  }
}

/// The reporter against real sockets: fake balancers on free ports, a port nobody listens on,
/// one event loop on a thread of its own for the whole test.
final class BalancerReporterTests: XCTestCase {
  private var thread: LoopThread!
  private var servers: [HTTPServer] = []
  private var reporter: BalancerReporter?
  /// Lines the reporter wrote, routine and warnings, on the loop's thread.
  private var logged: [String] = []
  private var warned: [String] = []

  override func setUpWithError() throws {
    thread = try LoopThread()
  }

  override func tearDown() {
    _ = thread.sync {
      self.reporter?.shutdown()
      for server in self.servers {
        server.stopAccepting()
        server.closeAllConnections()
      }
    }
    XCTAssertTrue(thread.stop(), "the loop should stop")
    reporter = nil
    servers = []
  }

  /// A fake balancer listening on 127.0.0.1 (`port`, or a free one).
  private func startBalancer(status: Int, port: Int = 0) throws -> (FakeBalancer, Int) {
    let balancer = FakeBalancer(status: status)
    let started = thread.sync { () -> Result<HTTPServer, Error> in
      Result {
        let server = try HTTPServer(
          loop: self.thread.loop,
          configuration: HTTPServer.Configuration(host: "127.0.0.1", port: port),
          handler: balancer)
        try server.start()
        return server
      }
    }
    let server = try XCTUnwrap(started).get()
    _ = thread.sync { self.servers.append(server) }
    return (balancer, server.port)
  }

  /// A port on 127.0.0.1 that nothing listens on (bound a moment ago, then closed).
  private func deadPort() throws -> Int { try Socket.freePorts(1)[0] }

  private func makeReporter(
    _ ports: [Int], attemptWindow: Double = 0.2, answerTimeout: Double = 2
  ) {
    let balancers = ports.map { BalancerAddress(host: "127.0.0.1", port: $0) }
    _ = thread.sync {
      self.reporter = BalancerReporter(
        loop: self.thread.loop, balancers: balancers, attemptWindow: attemptWindow,
        answerTimeout: answerTimeout, log: { self.logged.append($0) },
        warn: { self.warned.append($0) })
    }
  }

  private func report(_ paths: String...) {
    _ = thread.sync { for path in paths { self.reporter!.report(path) } }
  }

  /// Reads loop-owned state on the loop.
  private func onLoop<T>(_ body: @escaping () -> T) -> T { thread.sync(body)! }

  /// Waits (at most `timeout` s) until `condition`, read on the loop, holds.
  private func waitUntil(
    _ what: String, timeout: Double = 5, _ condition: @escaping () -> Bool,
    file: StaticString = #filePath, line: UInt = #line
  ) {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      if onLoop(condition) { return }
      usleep(10_000)
    }
    XCTFail("timed out waiting for \(what)", file: file, line: line)
  }

  private var currentPort: Int { onLoop { self.reporter!.current.port } }

  /// The first balancer refuses connections: every report, the concurrent ones included, reaches
  /// the second, the move is logged once, and later reports go straight to the second even
  /// once the first is back.
  func testAReportGoesToTheNextBalancerWhenTheFirstRefusesAndStaysThere() throws {
    let dead = try deadPort()
    let (second, secondPort) = try startBalancer(status: 200)
    makeReporter([dead, secondPort])
    XCTAssertEqual(currentPort, dead)
    let paths = (1...5).map { "/port_update/5001?lease=t\($0)" }
    _ = thread.sync { for path in paths { self.reporter!.report(path) } }
    waitUntil("the five reports at the second balancer") { second.targets.count >= 5 }
    XCTAssertEqual(onLoop { second.targets }, paths, "each report once, in order")
    XCTAssertEqual(currentPort, secondPort)
    let moves = onLoop { self.warned.filter { $0.hasPrefix("reports now go to") } }
    XCTAssertEqual(moves.count, 1, "\(moves)")
    XCTAssertTrue(
      moves.first?.hasPrefix(
        "reports now go to 127.0.0.1:\(secondPort): 127.0.0.1:\(dead) failed: unreachable")
        ?? false,
      "\(moves)")
    waitUntil("the five lines") { self.logged.count == 5 }
    XCTAssertEqual(
      onLoop { self.logged.first }, "reported \(paths[0]) to 127.0.0.1:\(secondPort)")

    // The first comes back: it is not needed, and gets nothing.
    let (first, _) = try startBalancer(status: 200, port: dead)
    report("/port_update/5001?lease=later")
    waitUntil("the later report") { second.targets.count == 6 }
    XCTAssertEqual(onLoop { first.targets }, [])
    XCTAssertEqual(onLoop { self.warned.filter { $0.hasPrefix("reports now go to") }.count }, 1)
  }

  func testA5xxAnswerMovesTheReportToTheNextBalancer() throws {
    let (first, firstPort) = try startBalancer(status: 503)
    let (second, secondPort) = try startBalancer(status: 200)
    makeReporter([firstPort, secondPort])
    report("/port_update/5001?lease=a")
    waitUntil("the report at the second balancer") { second.targets.count == 1 }
    XCTAssertEqual(onLoop { first.targets }, ["/port_update/5001?lease=a"])
    XCTAssertEqual(onLoop { second.targets }, ["/port_update/5001?lease=a"])
    XCTAssertEqual(
      onLoop { self.warned },
      [
        "reports now go to 127.0.0.1:\(secondPort): 127.0.0.1:\(firstPort) failed: answered 503: "
          + "status 503"
      ])
    // The next report goes straight to the second.
    report("/port_update/5001?lease=b")
    waitUntil("the next report") { second.targets.count == 2 }
    XCTAssertEqual(onLoop { first.targets }.count, 1)
  }

  /// Every report asks for a minimal answer, and a 204 is a report taken: logged, not retried.
  func testReportsAskForAMinimalAnswerAndA204IsTaken() throws {
    let (balancer, port) = try startBalancer(status: 204)
    makeReporter([port])
    report("/port_update/5001?lease=a", "/port_update/5001?lease=b")
    waitUntil("both reports logged") { self.logged.count == 2 }
    XCTAssertEqual(
      onLoop { self.logged },
      ["reported /port_update/5001?lease=a", "reported /port_update/5001?lease=b"])
    XCTAssertEqual(onLoop { balancer.targets.count }, 2)
    XCTAssertTrue(onLoop { balancer.allPreferMinimal })
    XCTAssertEqual(onLoop { self.warned }, [])
  }

  func testA4xxAnswerIsFinal() throws {
    let (first, firstPort) = try startBalancer(status: 409)
    let (second, secondPort) = try startBalancer(status: 200)
    makeReporter([firstPort, secondPort])
    report("/port_update/5001?lease=used")
    waitUntil("the refusal logged") { !self.warned.isEmpty }
    XCTAssertEqual(
      onLoop { self.warned }, ["report /port_update/5001?lease=used answered 409: status 409"])
    XCTAssertEqual(onLoop { first.targets }, ["/port_update/5001?lease=used"])
    // The refusal is an answer: the first stays current and the second never hears of it.
    report("/port_update/5001?lease=next")
    waitUntil("the next report at the first") { first.targets.count == 2 }
    XCTAssertEqual(onLoop { second.targets }, [])
    XCTAssertEqual(currentPort, firstPort)
  }

  /// Every balancer fails: each is tried once per round, the round is logged with every reason,
  /// tried again after the retry delay, and given up after `giveUpAfter`.
  func testAReportEveryBalancerFailsIsRetriedThenGivenUp() throws {
    let (first, firstPort) = try startBalancer(status: 500)
    let (second, secondPort) = try startBalancer(status: 503)
    makeReporter([firstPort, secondPort])
    _ = thread.sync {
      self.reporter!.retryDelay = 0.3
      self.reporter!.giveUpAfter = 1
    }
    report("/port_update/5001?lease=a")
    waitUntil("the loss logged") { self.warned.contains { $0.contains(" lost after ") } }
    usleep(400_000)  // nothing more should come
    let rounds = onLoop { first.targets }.count
    XCTAssertGreaterThanOrEqual(rounds, 2, "tried again")
    XCTAssertLessThanOrEqual(rounds, 4, "given up")
    XCTAssertEqual(onLoop { second.targets }.count, rounds)
    XCTAssertEqual(
      onLoop { self.warned.first { $0.hasPrefix("report ") } },
      "report /port_update/5001?lease=a failed: 127.0.0.1:\(firstPort) answered 500: status 500; "
        + "127.0.0.1:\(secondPort) answered 503: status 503; trying again in 0.3 s")
  }

  /// Every balancer fails, then one comes back: the report retried reaches it (nothing lost
  /// while, say, the balancers' shared Redis restarts).
  func testAReportEveryBalancerFailedReachesOneThatCameBack() throws {
    let dead = try deadPort()
    let (_, busyPort) = try startBalancer(status: 503)
    makeReporter([dead, busyPort])
    _ = thread.sync { self.reporter!.retryDelay = 0.3 }
    report("/port_update/5001?lease=a")
    waitUntil("the first round failed") { self.warned.contains { $0.contains("trying again") } }
    let (revived, _) = try startBalancer(status: 200, port: dead)
    waitUntil("the report reaches the balancer that came back") { revived.targets.count == 1 }
    XCTAssertEqual(onLoop { revived.targets }, ["/port_update/5001?lease=a"])
  }

  /// A balancer that takes the connection and never answers: after the answer timeout the report
  /// moves, and the reports queued behind it move at once instead of each waiting it out.
  func testAReportUnansweredInTimeMovesWithTheReportsQueuedBehindIt() throws {
    let (first, firstPort) = try startBalancer(status: 0)
    let (second, secondPort) = try startBalancer(status: 200)
    makeReporter([firstPort, secondPort], answerTimeout: 1)
    let started = Date()
    report("/port_update/5001?lease=a", "/port_update/5001?lease=b", "/port_update/5001?lease=c")
    waitUntil("the three reports at the second") { second.targets.count == 3 }
    XCTAssertLessThan(Date().timeIntervalSince(started), 2.5, "one timeout, not three")
    XCTAssertEqual(
      onLoop { second.targets },
      ["/port_update/5001?lease=a", "/port_update/5001?lease=b", "/port_update/5001?lease=c"])
    XCTAssertEqual(onLoop { first.targets }, ["/port_update/5001?lease=a"], "one at a time")
    XCTAssertEqual(currentPort, secondPort)
  }

  /// One balancer: no failover, and a report waits for it as it always did.
  func testWithOneBalancerAReportWaitsForItToComeBack() throws {
    let port = try deadPort()
    makeReporter([port], attemptWindow: 10, answerTimeout: 10)
    report("/port_update/5001?lease=a")
    usleep(300_000)
    let (balancer, _) = try startBalancer(status: 200, port: port)
    waitUntil("the report once the balancer is up") { balancer.targets.count == 1 }
    waitUntil("its answer") { !self.logged.isEmpty }
    XCTAssertEqual(onLoop { self.warned }, [])
    XCTAssertEqual(onLoop { self.logged }, ["reported /port_update/5001?lease=a"])
  }

  /// The app sends a client with a revoked lease back to the balancer that takes the reports.
  func testTheAppSendsClientsBackToTheCurrentBalancer() throws {
    let dead = try deadPort()
    let (second, secondPort) = try startBalancer(status: 200)
    var configuration = FactorialServerConfiguration()
    configuration.port = 5001
    configuration.quiet = true
    configuration.balancers = [
      BalancerAddress(host: "127.0.0.1", port: dead),
      BalancerAddress(host: "127.0.0.1", port: secondPort),
    ]
    let app = onLoop { FactorialServerApp(configuration: configuration, loop: self.thread.loop) }
    let request = HTTPRequest(
      method: "GET", target: "/5001", headers: HTTPHeaders([("Host", "server.example:5001")]))
    XCTAssertEqual(
      onLoop { app.handler.balancerLocation?(request) }, "http://server.example:\(dead)/")
    _ = thread.sync { app.handler.report?("/port_update/5001?lease=a") }
    waitUntil("the report at the second", timeout: 10) { second.targets.count == 1 }
    XCTAssertEqual(
      onLoop { app.handler.balancerLocation?(request) }, "http://server.example:\(secondPort)/")
  }
}
