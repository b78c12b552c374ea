import Foundation
import HTTPCore
import TestSupport
import XCTest

/// Five servers under steady concurrent load while servers are killed with -9 and restarted and
/// some clients drop right after their redirect. Nothing may be lost or double-booked.
final class ChaosTests: SystemTestCase {
  private enum Outcome { case factorial, unavailable, dropped }

  /// What the load and chaos threads saw, behind a lock.
  private final class Tally: @unchecked Sendable {
    struct Counts {
      var outcomes: [Outcome] = []
      var problems: [String] = []
      var bodies: [String] = []
      var crashes = 0
      var retries = 0
    }
    private let lock = NSLock()
    private var counts = Counts()

    func update<T>(_ body: (inout Counts) -> T) -> T {
      lock.lock()
      defer { lock.unlock() }
      return body(&counts)
    }
  }

  func testCrashesAndDroppedClientsLoseNothing() throws {
    try startSystem(
      servers: 5, balancerArguments: ["--lease-timeout", "0.5", "--wait-timeout", "5", "--quiet"])
    let loadSeconds = 8.0
    let stopAt = Date(timeIntervalSinceNow: loadSeconds)
    let tally = Tally()

    // Chaos: one random server after another is killed with -9 and restarted 0.7 s later.
    let chaosDone = DispatchSemaphore(value: 0)
    Thread.detachNewThread { [self] in
      defer { chaosDone.signal() }
      while Date() < stopAt.addingTimeInterval(-1) {
        Thread.sleep(forTimeInterval: 0.4)
        // Every other kill hits a server that is free, so clients are sent to a dead server and
        // must come back; the others hit whatever server, often in the middle of a job.
        let free =
          tally.update { $0.crashes } % 2 == 0
          ? (try? serverStates())?.filter { $0.value == "free" } : nil
        let port = free?.keys.randomElement().flatMap { Int($0) } ?? serverPorts.randomElement()!
        crashServer(port)
        Thread.sleep(forTimeInterval: 0.7)  // longer than a lease: the balancer may see it down
        do {
          try startServer(port)
        } catch {
          tally.update { $0.problems.append("restart \(port): \(error)") }
        }
        tally.update { $0.crashes += 1 }
      }
    }

    // Load: eight clients in a loop asking for jobs of 2000! to 8000!; one request in fifteen drops
    // right after its 302. A client
    // whose server dies under it goes back to the balancer, as a person pressing reload would.
    DispatchQueue.concurrentPerform(iterations: 8) { worker in
      var request = 0
      while Date() < stopAt {
        request += 1
        let outcome: Outcome
        do {
          outcome = try oneVisit(
            drop: (worker + request) % 15 == 0,
            onRetry: { tally.update { $0.retries += 1 } },
            onBody: { body in tally.update { $0.bodies.append(body) } })
        } catch {
          tally.update { $0.problems.append("worker \(worker) request \(request): \(error)") }
          continue
        }
        tally.update { $0.outcomes.append(outcome) }
      }
    }
    chaosDone.wait()
    let (outcomes, problems, bodies, crashes, retries) = tally.update {
      ($0.outcomes, $0.problems, $0.bodies, $0.crashes, $0.retries)
    }

    XCTAssertEqual(problems, [])
    let factorials = outcomes.filter { $0 == .factorial }.count
    XCTAssertGreaterThan(factorials, 50, "too little load got through")
    XCTAssertGreaterThan(retries, 0, "no client met a crashed server: the chaos did not bite")
    XCTAssertGreaterThan(outcomes.filter { $0 == .dropped }.count, 5)
    XCTAssertGreaterThanOrEqual(crashes, 5)
    for body in bodies.prefix(10) { assertCorrectFactorial(body) }

    // Once the leases of dropped clients and crashed jobs expire, every server is free and in the
    // queue exactly once, and the counters add up.
    try eventually("every server to be free", timeout: 20) {
      let current = try status()
      return (current["queue"] as! [String]).count == 5
        && (current["totals"] as! [String: Int])["in_flight"] == 0
    }
    let final = try status()
    let queue = final["queue"] as! [String]
    XCTAssertEqual(queue.sorted(), serverPorts.map(String.init).sorted())
    XCTAssertEqual(Set(try serverStates().values), ["free"])
    XCTAssertEqual(final["waiting"] as? Int, 0)
    let totals = final["totals"] as! [String: Int]
    XCTAssertEqual(
      totals["leased"], totals["reported"]! + totals["expired"]! + totals["in_flight"]!)
    XCTAssertGreaterThan(totals["expired"]!, 0, "dropped clients' leases should have expired")
    print(
      "chaos: \(outcomes.count) visits, \(factorials) factorials, \(retries) retries after a crash,"
        + " \(crashes) crashes, totals \(totals)")
  }

  /// One visit: ask the balancer, follow the redirect; retry through the balancer if the server
  /// dies under the client.
  private func oneVisit(drop: Bool, onRetry: () -> Void, onBody: (String) -> Void) throws -> Outcome
  {
    var lastError: Error?
    for _ in 0..<8 {
      let client = try TestClient(port: balancerPort, timeout: 10)
      let response = try client.get("/")
      if response.statusCode == 503 { return .unavailable }
      guard response.statusCode == 302, let location = response.headers["Location"] else {
        throw TestFailure("balancer answered \(response.statusCode)")
      }
      client.close()
      if drop { return .dropped }
      do {
        let target = try TestURL(location)
        let job = target.path + "&n=\(Int.random(in: 2000...8000))"
        let answer = try TestClient(port: target.port, timeout: 10).get(job)
        guard answer.statusCode == 200, answer.text.hasPrefix("Factorial of ") else {
          throw TestFailure("server answered \(answer.statusCode): \(answer.text.prefix(60))")
        }
        onBody(answer.text)
        return .factorial
      } catch {
        lastError = error  // the server was killed: back to the balancer
        onRetry()
      }
    }
    throw TestFailure("no answer after 8 tries: \(String(describing: lastError))")
  }
}
