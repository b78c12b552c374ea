import Balancing
import Foundation
import HTTPCore
import RedisClient
import TestSupport
import XCTest

@testable import SharedQueue

/// The shared availability queue against a real redis-server: two balancers' dispatchers and
/// lease stores (on one event loop, with their own connections and names) share one set of
/// books, as two balancer processes would.
final class SharedQueueTests: SharedBooksTestCase {
  /// One balancer's side of the books.
  final class Side {
    let store: SharedLeaseStore
    let dispatcher: SharedQueueDispatcher
    /// The connection its dispatcher reads grants with.
    let grants: RedisConnection

    init(id: String, main: RedisConnection, grants: RedisConnection, listens: Bool = true) {
      self.grants = grants
      store = SharedLeaseStore(connection: main, prefix: "test", balancerID: id)
      let issuer = LeaseIssuer(store: store, leaseTimeout: 60)
      dispatcher = SharedQueueDispatcher(store: store, issuer: issuer, grants: grants)
      if listens { dispatcher.listenForGrants() }
      dispatcher.open()
    }

    /// Marks this side alive (as the coordinator's heartbeat does); true if it holds the lock.
    func heartbeat(_ done: @escaping (Bool) -> Void) {
      store.run(SharedScripts.heartbeat, [store.balancerID, "3000"]) { result in
        if case .success(let reply) = result {
          done(reply.array?.first?.int == 1)
        } else {
          done(false)
        }
      }
    }
  }

  override func setUpWithError() throws {
    try super.setUpWithError()
    try startRedis()
  }

  private func side(
    _ id: String, alive: Bool = true, unavailableTimeout: Double = 10, listens: Bool = true
  ) -> Side {
    let made = running.sync {
      Side(
        id: id, main: self.connection(unavailableTimeout: unavailableTimeout),
        grants: self.connection(unavailableTimeout: unavailableTimeout), listens: listens)
    }!
    register(made.dispatcher)
    if alive { XCTAssertNotNil(wait { done in made.heartbeat { _ in done(()) } }) }
    return made
  }

  private func claim(_ name: String, at side: Side, answers: Answers) {
    claim(name, answers: answers) { side.dispatcher.dispatch($0) }
  }

  /// Frees `server` at `side` and has client `name` take it there; returns its lease.
  private func freeAndLease(
    _ server: ServerAddress, to name: String, at side: Side, answers: Answers
  ) throws -> Lease {
    _ = running.sync { side.dispatcher.serverFreed(server) }
    claim(name, at: side, answers: answers)
    eventually("\(name) is answered") { !answers.all.filter { $0.name == name }.isEmpty }
    return try XCTUnwrap(answers.lease(of: name), "\(answers.all)")
  }

  /// Reports `lease` through `side`'s store and frees its server there, as a balancer does.
  private func report(_ lease: Lease, at side: Side) -> ReportOutcome? {
    wait { done in
      side.store.report(token: lease.token, port: lease.server.port) { outcome in
        if case .released = outcome { side.dispatcher.serverFreed(lease.server) }
        done(outcome)
      }
    }
  }

  // MARK: - Tests

  func testClientsWaitingAtDifferentBalancersAreServedInTheOrderTheyCame() throws {
    let a = side("A")
    let b = side("B")
    let answers = Answers()
    _ = running.sync { a.dispatcher.serverFreed(ServerAddress(port: 5001)) }
    eventually("5001 is free") {
      redisCommand(["LRANGE", "test:free", "0", "-1"])?.array?.count == 1
    }
    claim("a1", at: a, answers: answers)
    eventually("a1 is answered") { answers.lease(of: "a1") != nil }
    // Three clients wait, at B, A, B in that order.
    for (name, side) in [("b1", b), ("a2", a), ("b2", b)] {
      claim(name, at: side, answers: answers)
      eventually("\(name) waits") {
        redisCommand(["LLEN", "test:waiting"])?.int
          == Int64(name == "b1" ? 1 : name == "a2" ? 2 : 3)
      }
    }
    // The server goes round: reported at B, then A, then A; it reaches b1, a2, b2 in turn.
    var holder = "a1"
    for (next, reportingSide) in [("b1", b), ("a2", a), ("b2", a)] {
      let lease = try XCTUnwrap(answers.lease(of: holder))
      guard case .released? = report(lease, at: reportingSide) else {
        return XCTFail("the report of \(holder)'s lease was not accepted")
      }
      eventually("\(next) is answered") { answers.lease(of: next) != nil }
      holder = next
    }
    XCTAssertEqual(answers.all.map(\.name), ["a1", "b1", "a2", "b2"])
    XCTAssertEqual(redisCommand(["LLEN", "test:waiting"])?.int, 0)
    // A second report of a lease already ended is refused, at either balancer.
    let first = try XCTUnwrap(answers.lease(of: "a1"))
    XCTAssertEqual(report(first, at: a), .wrongToken(port: 5001))
  }

  /// Clients come and leases are reported at either balancer at random: no server is ever
  /// handed to two clients at once, and what `/status` and `/metrics` show at each balancer
  /// stays right throughout: the counts of its last read of the books, which add up
  /// (`issued = reported + expired + reclaimed + in flight`), never go back, and are not moved
  /// by anything done between two reads. (Its own moves once made them go back, or show more
  /// leases in flight than there were servers: a balancer hears of the others' leases only in
  /// part.)
  func testNoServerIsEverHandedToTwoClientsAtOnce() throws {
    let a = side("A")
    let b = side("B")
    let servers = (5001...5003).map { ServerAddress(port: $0) }
    _ = running.sync { for server in servers { a.dispatcher.serverFreed(server) } }
    let answers = Answers()
    var generator = SeededGenerator(seed: 7)
    var handed = 0
    var holders: [ServerAddress: String] = [:]
    var seen = 0
    var next = 0
    var violations: [String] = []
    var read: [String: (LeaseCounts, [Int])] = [:]
    func look(_ when: String, refreshing: Bool) {
      for (name, side) in [("A", a), ("B", b)] {
        if refreshing {
          XCTAssertEqual(wait { done in side.store.refresh { done($0) } }, true)
        }
        let (counts, served) = running.sync {
          (side.store.counts, servers.map { side.store.servedCount($0) })
        }!
        let ended = counts.reported + counts.expired + counts.reclaimed
        if counts.issued != ended + counts.inFlight || counts.inFlight > servers.count {
          violations.append("\(when): \(name)'s counts do not add up: \(counts)")
        }
        if served.reduce(0, +) != counts.issued {
          violations.append("\(when): \(name)'s servers' leases \(served), issued \(counts.issued)")
        }
        if let (before, servedBefore) = read[name] {
          if !refreshing && (counts != before || served != servedBefore) {
            violations.append(
              "\(when): \(name)'s counts moved between reads: \(before) -> \(counts)")
          }
          if counts.issued < before.issued || counts.reported < before.reported
            || counts.expired < before.expired || counts.reclaimed < before.reclaimed
            || zip(served, servedBefore).contains(where: { $0 < $1 })
          {
            violations.append("\(when): \(name)'s counts went back: \(before) -> \(counts)")
          }
        }
        read[name] = (counts, served)
      }
    }
    func absorb() {
      let all = answers.all
      while seen < all.count {
        if case .lease(let lease) = all[seen].answer {
          if let other = holders[lease.server] {
            violations.append("\(lease.server) given to \(all[seen].name) while \(other) held it")
          }
          holders[lease.server] = all[seen].name
          handed += 1
        }
        seen += 1
      }
    }
    for step in 0..<150 {
      look("step \(step)", refreshing: step % 10 == 9)
      absorb()
      let side = Bool.random(using: &generator) ? a : b
      if !holders.isEmpty && Int.random(in: 0..<3, using: &generator) == 0 {
        let name = holders.values.sorted()[Int.random(in: 0..<holders.count, using: &generator)]
        let lease = try XCTUnwrap(answers.lease(of: name))
        holders[lease.server] = nil
        XCTAssertEqual(
          report(lease, at: side).map { if case .released = $0 { true } else { false } }, true)
      } else {
        next += 1
        claim("c\(next)", at: side, answers: answers)
      }
    }
    // Then every holder reports until no one waits.
    let deadline = Date(timeIntervalSinceNow: 30)
    while Date() < deadline {
      absorb()
      if answers.all.count == next && holders.isEmpty { break }
      if let (server, name) = holders.first {
        let lease = try XCTUnwrap(answers.lease(of: name))
        holders[server] = nil
        _ = report(lease, at: Bool.random(using: &generator) ? a : b)
      } else {
        Thread.sleep(forTimeInterval: 0.01)
      }
    }
    look("the end", refreshing: true)
    XCTAssertEqual(violations, [])
    XCTAssertEqual(answers.all.count, next, "every client was answered")
    XCTAssertEqual(handed, next)
    XCTAssertEqual(running.sync { a.store.counts }, running.sync { b.store.counts })
    // Afterwards every server is free exactly once, and no one waits.
    eventually("the servers are back on the free list") {
      redisCommand(["LLEN", "test:free"])?.int == 3
    }
    let free = redisCommand(["LRANGE", "test:free", "0", "-1"])?.array?.compactMap(\.string) ?? []
    XCTAssertEqual(free.sorted(), ["5001", "5002", "5003"])
    XCTAssertEqual(redisCommand(["LLEN", "test:waiting"])?.int, 0)
    XCTAssertEqual(redisCommand(["SCARD", "test:leases"])?.int, 0)
    let counts = redisCommand(["HGETALL", "test:counts"])?.array?.compactMap(\.string) ?? []
    XCTAssertEqual(
      Dictionary(
        uniqueKeysWithValues: stride(from: 0, to: counts.count, by: 2).map {
          (counts[$0], counts[$0 + 1])
        })["issued"], String(next))
  }

  /// A grant read (on its own connection) after a read of the books that already held its
  /// lease: counted once (it was counted again, and the next read took it back).
  func testAGrantReadAfterTheBooksIsCountedOnce() throws {
    let a = side("A", listens: false)
    let b = side("B")
    let server = ServerAddress(port: 5001)
    let answers = Answers()
    claim("a1", at: a, answers: answers)
    eventually("a1 waits") {
      redisCommand(["LLEN", "test:waiting"])?.int == 1
        && running.sync { a.dispatcher.waitingCount } == 1
    }
    _ = running.sync { b.dispatcher.serverFreed(server) }
    eventually("a grant is pushed for A") { redisCommand(["LLEN", "test:grants:A"])?.int == 1 }
    XCTAssertEqual(wait { done in a.store.refresh { done($0) } }, true)
    let refreshed = running.sync { (a.store.counts, a.store.servedCount(server)) }!
    XCTAssertEqual(refreshed.0.issued, 1)
    _ = running.sync { a.dispatcher.listenForGrants() }
    eventually("a1 is served") { answers.lease(of: "a1") != nil }
    let granted = running.sync { (a.store.counts, a.store.servedCount(server)) }!
    XCTAssertEqual(granted.0, refreshed.0)
    XCTAssertEqual(granted.1, 1)
    XCTAssertEqual(running.sync { a.store.inFlight(server) }, 1)
  }

  /// A lease issued at another balancer since the books were read, taken here by the overdue
  /// check and ended: the counts stay those of the books (in flight went to -1).
  func testAnOverdueLeaseIssuedElsewhereLeavesTheCountsAsTheBooksHaveThem() throws {
    let a = side("A")
    let b = side("B")
    let server = ServerAddress(port: 5001)
    XCTAssertEqual(wait { done in a.store.refresh { done($0) } }, true)
    let answers = Answers()
    let lease = try freeAndLease(server, to: "b1", at: b, answers: answers)
    _ = redisCommand(["HSET", "test:lease:\(lease.token)", "deadline", "0"])
    let due: [Lease]? = wait { done in a.store.takeOverdue(now: 0) { done($0) } }
    XCTAssertEqual(due?.map(\.token), [lease.token])
    let ended: Lease?? = wait { done in a.store.expire(lease.token) { done($0) } }
    XCTAssertNotNil(ended ?? nil)
    XCTAssertEqual(running.sync { a.store.counts }, LeaseCounts())
    XCTAssertEqual(wait { done in a.store.refresh { done($0) } }, true)
    let counts = running.sync { a.store.counts }!
    XCTAssertEqual([counts.issued, counts.expired, counts.inFlight], [1, 1, 0])
  }

  /// A server's leases do not move between two reads of the books when it leaves the pool
  /// (`forget`): they moved, 1 -> 0, and a read sent before it, answered after it, brought them
  /// back to 1 before the next read took them to 0.
  func testForgettingAServerLeavesItsLeasesToTheNextRead() throws {
    let a = side("A")
    let server = ServerAddress(port: 5001)
    let answers = Answers()
    let lease = try freeAndLease(server, to: "a1", at: a, answers: answers)
    guard case .released? = report(lease, at: a) else { return XCTFail("not reported") }
    _ = running.sync { a.dispatcher.serverStopped(server) }
    XCTAssertEqual(wait { done in a.store.refresh { done($0) } }, true)
    XCTAssertEqual(running.sync { a.store.servedCount(server) }, 1)
    var seen: [Int] = []
    let pending = DispatchSemaphore(value: 0)
    _ = running.sync {
      a.store.refresh { _ in
        seen.append(a.store.servedCount(server))
        pending.signal()
      }
      a.store.forget(server)
      seen.append(a.store.servedCount(server))
    }
    XCTAssertEqual(pending.wait(timeout: .now() + 10), .success)
    XCTAssertEqual(wait { done in a.store.refresh { done($0) } }, true)
    _ = running.sync { seen.append(a.store.servedCount(server)) }
    XCTAssertEqual(seen, [1, 1, 0], "moved between reads, then back")
  }

  func testAReportPutsItsServerBackInTheSameStepUnlessItWasWithdrawn() throws {
    let a = side("A")
    let b = side("B")
    let answers = Answers()
    _ = running.sync { a.dispatcher.serverFreed(ServerAddress(port: 5001)) }
    claim("first", at: a, answers: answers)
    eventually("first is answered") { answers.lease(of: "first") != nil }
    claim("waiting", at: b, answers: answers)
    eventually("the client waits") { redisCommand(["LLEN", "test:waiting"])?.int == 1 }
    // The report alone (no put after it) hands the server to the client waiting at B.
    let first = try XCTUnwrap(answers.lease(of: "first"))
    let outcome: ReportOutcome? = wait { done in
      a.store.report(token: first.token, port: 5001, completion: done)
    }
    guard case .released? = outcome else { return XCTFail("\(String(describing: outcome))") }
    eventually("the waiting client is served") { answers.lease(of: "waiting") != nil }
    // The put that the broker asks for after a report changes nothing now.
    _ = running.sync { a.dispatcher.serverFreed(ServerAddress(port: 5001)) }
    // Withdrawn while leased (it went down): its report ends the lease and does not free it.
    _ = running.sync { b.dispatcher.serverStopped(ServerAddress(port: 5001)) }
    let second = try XCTUnwrap(answers.lease(of: "waiting"))
    let ended: ReportOutcome? = wait { done in
      b.store.report(token: second.token, port: 5001, completion: done)
    }
    guard case .released? = ended else { return XCTFail("\(String(describing: ended))") }
    XCTAssertEqual(redisCommand(["LLEN", "test:free"])?.int, 0)
    XCTAssertEqual(redisCommand(["HGET", "test:state", "5001"])?.string?.hasPrefix("idle:"), true)
    // Once it may serve again (a put), it is free.
    _ = running.sync { a.dispatcher.serverFreed(ServerAddress(port: 5001)) }
    eventually("5001 is free again") { redisCommand(["LLEN", "test:free"])?.int == 1 }
  }

  /// A client served while the answer was lost (a grant read but never received, when a
  /// connection to Redis dropped) gets that lease when the balancer reconnects, instead of
  /// waiting until its timeout while the lease is reclaimed and the server sits free.
  func testAClientWhoseGrantWasLostGetsItsLeaseWhenTheBalancerReconnects() throws {
    // A reads no grants yet: one pushed to it stays in its list, or is lost if taken out.
    let a = side("A", listens: false)
    let b = side("B")
    let answers = Answers()
    let servers = [ServerAddress(port: 5001), ServerAddress(port: 5002)]
    _ = running.sync { for server in servers { b.dispatcher.serverFreed(server) } }
    for name in ["busy1", "busy2"] {
      claim(name, at: b, answers: answers)
      eventually("\(name) is answered") { answers.lease(of: name) != nil }
    }
    for (index, name) in ["lost", "queued"].enumerated() {
      claim(name, at: a, answers: answers)
      eventually("\(name) waits") {
        redisCommand(["LLEN", "test:waiting"])?.int == Int64(index + 1)
      }
    }
    guard case .released? = report(try XCTUnwrap(answers.lease(of: "busy1")), at: b) else {
      return XCTFail("the first report was not accepted")
    }
    XCTAssertEqual(redisCommand(["DEL", "test:grants:A"])?.int, 1, "the grant read, then lost")
    guard case .released? = report(try XCTUnwrap(answers.lease(of: "busy2")), at: b) else {
      return XCTFail("the second report was not accepted")
    }
    XCTAssertEqual(redisCommand(["LLEN", "test:grants:A"])?.int, 1)
    // Redis drops every connection; they reconnect, and A's clients rejoin.
    _ = redisCommand(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
    eventually("both clients of A are served") {
      answers.lease(of: "lost") != nil && answers.lease(of: "queued") != nil
    }
    XCTAssertEqual(redisCommand(["LLEN", "test:grants:A"])?.int ?? 0, 0, "no grant left")
    // A now reads its grants: nothing comes that would give a served lease back.
    _ = running.sync { a.dispatcher.listenForGrants() }
    Thread.sleep(forTimeInterval: 1.2)
    for name in ["lost", "queued"] {
      let lease = try XCTUnwrap(answers.lease(of: name))
      XCTAssertEqual(
        redisCommand(["HGET", "test:state", lease.server.description])?.string,
        "leased:\(lease.token)", name)
    }
    XCTAssertEqual(answers.all.count, 4, "each client answered once")
  }

  /// A client that leaves while a rejoin hands its lease over again: the lease is given back
  /// and the server freed, not kept for nobody until the claim check.
  func testALeaseHandedOverAgainToAClientThatLeftMeanwhileIsGivenBack() throws {
    let a = side("A", listens: false)
    let b = side("B")
    let answers = Answers()
    let server = ServerAddress(port: 5001)
    let first = try freeAndLease(server, to: "first", at: b, answers: answers)
    let leaving = running.sync {
      let claim = ServerClaim(client: "127.0.0.1", key: "leaving") { answer, _ in
        answers.record("leaving", answer)
        return true
      }
      a.dispatcher.dispatch(claim)
      return claim
    }!
    eventually("the client waits") { redisCommand(["LLEN", "test:waiting"])?.int == 1 }
    guard case .released? = report(first, at: b) else { return XCTFail("the report failed") }
    XCTAssertEqual(redisCommand(["LLEN", "test:grants:A"])?.int, 1, "its grant waits for A")
    // A's connection comes back (its clients rejoin) and the client leaves before the answer.
    _ = running.sync {
      a.store.onLineLost?()
      leaving.abandon()
    }
    eventually("5001 is free again") {
      redisCommand(["HGET", "test:state", "5001"])?.string == "free"
    }
    XCTAssertEqual(redisCommand(["SCARD", "test:leases"])?.int, 0)
    XCTAssertNil(answers.lease(of: "leaving"))
  }

  /// Both connections of a balancer come back at once (Redis dropped them): each rejoins its
  /// waiting clients. The first rejoin leases a free server to a client whose place was lost;
  /// the second, sent before the first's answer, finds that lease and hands it over again. The
  /// client has it already: it must not be given back (voided while the client holds it, and
  /// its server handed to the next client).
  func testALeaseHandedOverAgainToAClientItWasDeliveredToIsKept() throws {
    let a = side("A")
    let b = side("B")
    let answers = Answers()
    let busy = try freeAndLease(ServerAddress(port: 5001), to: "busy", at: b, answers: answers)
    claim("waiting", at: a, answers: answers)
    eventually("the client waits") { redisCommand(["LLEN", "test:waiting"])?.int == 1 }
    // Redis comes back from an older copy of its data: the client's place in the line is gone,
    // and 5002 is free.
    XCTAssertEqual(redisCommand(["DEL", "test:waiting"])?.int, 1)
    XCTAssertEqual(redisCommand(["HSET", "test:state", "5002", "free"])?.int, 1)
    XCTAssertEqual(redisCommand(["RPUSH", "test:free", "5002"])?.int, 1)
    // Both of A's connections come back in the same turn of its loop.
    _ = running.sync {
      a.store.onLineLost?()
      a.grants.onConnect?(a.grants)
    }
    eventually("the client is served") { answers.lease(of: "waiting") != nil }
    let lease = try XCTUnwrap(answers.lease(of: "waiting"))
    XCTAssertEqual(lease.server, ServerAddress(port: 5002))
    Thread.sleep(forTimeInterval: 0.3)
    XCTAssertEqual(
      redisCommand(["HGET", "test:state", "5002"])?.string, "leased:\(lease.token)",
      "the lease of a served client was given back")
    XCTAssertEqual(strings(["LRANGE", "test:free", "0", "-1"]), [])
    XCTAssertEqual(answers.all.count, 2, "each client answered once")
    XCTAssertEqual(redisCommand(["HGET", "test:state", "5001"])?.string, "leased:\(busy.token)")
  }

  /// A counter in the books that holds no number (a hand edit) must not fail every lease.
  func testACorruptCounterStartsAgainInsteadOfStoppingEveryLease() throws {
    let a = side("A")
    _ = redisCommand(["HSET", "test:counts", "issued", "abc", "reported", "x"])
    _ = redisCommand(["HSET", "test:served", "5001", "y"])
    let lease = try freeAndLease(
      ServerAddress(port: 5001), to: "client", at: a, answers: Answers())
    XCTAssertEqual(redisCommand(["HGET", "test:counts", "issued"])?.string, "1")
    guard case .released? = report(lease, at: a) else { return XCTFail("the report failed") }
    XCTAssertEqual(redisCommand(["HGET", "test:counts", "reported"])?.string, "1")
    XCTAssertEqual(redisCommand(["EXISTS", "test:lease:\(lease.token)"])?.int, 0)
  }

  /// Balancers A and B; 5001 leased at A to client `first`, client `waiting` in line at A, and
  /// 5001 withdrawn at B (as a `/rm` or a down server there would). Returns A and the lease.
  private func withdrawnWhileLeasedAtA(answers: Answers) throws -> (Side, Lease) {
    let a = side("A")
    let b = side("B")
    let server = ServerAddress(port: 5001)
    let first = try freeAndLease(server, to: "first", at: a, answers: answers)
    claim("waiting", at: a, answers: answers)
    eventually("a client waits") { redisCommand(["LLEN", "test:waiting"])?.int == 1 }
    _ = running.sync { b.dispatcher.serverStopped(server) }
    eventually("5001 is withdrawn") {
      redisCommand(["SISMEMBER", "test:withdrawn", "5001"])?.int == 1
    }
    return (a, first)
  }

  /// A server withdrawn at one balancer (`/rm`, or found down) stays out when its lease is
  /// reported at another that has not heard of it yet: the put the broker makes after the
  /// report must not clear the withdrawal and hand the server to the next client.
  func testAReportAtABalancerThatHasNotHeardOfAWithdrawalKeepsTheServerOut() throws {
    let answers = Answers()
    let (a, first) = try withdrawnWhileLeasedAtA(answers: answers)
    // A's broker, which still counts 5001 in its pool, reports and then puts it back.
    guard case .released? = report(first, at: a) else {
      return XCTFail("the report was not accepted")
    }
    // A step after it on A's connection: the put the report's completion sent has run, and a
    // lease it made for A's waiting client would have been answered by now.
    _ = wait { done in a.store.run(SharedScripts.leave, ["nobody"]) { _ in done(()) } }
    XCTAssertNil(answers.lease(of: "waiting"), "a withdrawn server went to the waiting client")
    XCTAssertEqual(redisCommand(["SISMEMBER", "test:withdrawn", "5001"])?.int, 1)
    XCTAssertEqual(redisCommand(["LLEN", "test:free"])?.int, 0)
  }

  /// Only the put in a report's own completion is skipped: a later one (the server found up
  /// again, or added back) goes ahead at once.
  func testAPutAfterAReportThatFoundItsServerWithdrawnGoesAhead() throws {
    let answers = Answers()
    let (a, first) = try withdrawnWhileLeasedAtA(answers: answers)
    let server = first.server
    // The report ends the lease; A's broker puts nothing back in its completion (the server
    // does not serve there either).
    let outcome: ReportOutcome? = wait { done in
      a.store.report(token: first.token, port: 5001, completion: done)
    }
    guard case .released? = outcome else { return XCTFail("\(String(describing: outcome))") }
    // Then the server may serve again: the put goes ahead, to the waiting client.
    _ = running.sync { a.dispatcher.serverFreed(server) }
    eventually("the waiting client gets 5001", timeout: 3) {
      answers.lease(of: "waiting")?.server == server
    }
  }

  /// Once a server has reported with a lease, a report without one is not its own, at every
  /// balancer of the group: it would free the server while its client's job may still run.
  func testAReportWithoutALeaseIsRefusedEverywhereOnceTheServerUsedLeases() throws {
    let a = side("A")
    let b = side("B")
    let answers = Answers()
    let server = ServerAddress(port: 5001)
    _ = try freeAndLease(server, to: "first", at: a, answers: answers)
    // Before any report with a lease, one without is accepted (a server of the original).
    let unleased: ReportOutcome? = wait { done in
      b.store.reportWithoutToken(server, completion: done)
    }
    guard case .released? = unleased else { return XCTFail("\(String(describing: unleased))") }
    let second = try freeAndLease(server, to: "second", at: a, answers: answers)
    guard case .released? = report(second, at: a) else {
      return XCTFail("the report with a lease was not accepted")
    }
    claim("third", at: a, answers: answers)
    eventually("third is answered") { answers.lease(of: "third") != nil }
    for side in [a, b] {
      let refused: ReportOutcome? = wait { done in
        side.store.reportWithoutToken(server, completion: done)
      }
      XCTAssertEqual(refused, .leaseRequired(server), side.store.balancerID)
    }
    XCTAssertEqual(redisCommand(["SISMEMBER", "test:lease_reporters", "5001"])?.int, 1)
    let third = try XCTUnwrap(answers.lease(of: "third"))
    XCTAssertEqual(redisCommand(["HGET", "test:state", "5001"])?.string, "leased:\(third.token)")
    // A server that leaves the pool is forgotten, this with it: one that comes back at that
    // address may be a server of the original again.
    guard case .released? = report(third, at: a) else { return XCTFail("the report failed") }
    _ = running.sync { a.store.forget(server) }
    eventually("5001 is forgotten") {
      redisCommand(["SISMEMBER", "test:lease_reporters", "5001"])?.int == 0
    }
  }

  func testAServerFreedSkipsClientsOfABalancerThatIsNoLongerAlive() throws {
    let a = side("A")
    let gone = side("gone", alive: false)
    let answers = Answers()
    claim("orphan", at: gone, answers: answers)
    eventually("the orphan waits") { redisCommand(["LLEN", "test:waiting"])?.int == 1 }
    // Its balancer is gone: its alive mark (set when it connected) expired.
    XCTAssertEqual(redisCommand(["DEL", "test:alive:gone"])?.int, 1)
    _ = running.sync { a.dispatcher.serverFreed(ServerAddress(port: 5001)) }
    eventually("5001 is free") { redisCommand(["LLEN", "test:free"])?.int == 1 }
    XCTAssertEqual(redisCommand(["LLEN", "test:waiting"])?.int, 0)
    XCTAssertEqual(redisCommand(["SCARD", "test:leases"])?.int, 0)
    XCTAssertTrue(answers.all.isEmpty)
    // A put of a server already free changes nothing: it is never free twice.
    _ = running.sync { a.dispatcher.serverFreed(ServerAddress(port: 5001)) }
    claim("next", at: a, answers: answers)
    eventually("next is answered") { answers.lease(of: "next") != nil }
    XCTAssertEqual(redisCommand(["LLEN", "test:free"])?.int, 0)
  }

  func testOnlyOneBalancerCoordinatesAndAnotherTakesOverWhenItLeaves() throws {
    let a = side("A", alive: false)
    let b = side("B", alive: false)
    XCTAssertEqual(wait { done in a.heartbeat(done) }, true)
    XCTAssertEqual(wait { done in b.heartbeat(done) }, false)
    XCTAssertEqual(wait { done in a.heartbeat(done) }, true, "the holder keeps the lock")
    _ = wait { done in a.store.run(SharedScripts.retire, ["A"]) { _ in done(()) } }
    XCTAssertEqual(wait { done in b.heartbeat(done) }, true)
    XCTAssertEqual(wait { done in a.heartbeat(done) }, false)
  }

  func testDueLeasesAreMarkedSoThatOnlyOneCheckerGetsThem() throws {
    let a = side("A")
    let b = side("B")
    _ = running.sync { a.store.connection.connect() }
    // A lease already past both deadlines.
    let lease = Lease(token: "t1", server: ServerAddress(port: 5001), issued: 0, deadline: 0)
    _ = wait { done in
      a.store.run(SharedScripts.issue, ["t1", "5001", "10.0.0.9", "A", "0", "1"]) { _ in done(()) }
    }
    Thread.sleep(forTimeInterval: 0.01)
    let firstLook: [Lease]? = wait { done in a.store.takeOverdue(now: 0, completion: done) }
    let secondLook: [Lease]? = wait { done in b.store.takeOverdue(now: 0, completion: done) }
    XCTAssertEqual(firstLook?.map(\.token), [lease.token])
    XCTAssertEqual(secondLook?.map(\.token), [])
    let unclaimed: [Lease]? = wait { done in b.store.takeUnclaimed(now: 0, completion: done) }
    XCTAssertEqual(unclaimed?.map(\.token), ["t1"])
    XCTAssertEqual(unclaimed?.first?.client, "10.0.0.9")
    let again: [Lease]? = wait { done in a.store.takeUnclaimed(now: 0, completion: done) }
    XCTAssertEqual(again?.map(\.token), [])
    // Revoked: it ends as reclaimed, once.
    let reclaimed: Lease?? = wait { done in b.store.reclaim("t1", completion: done) }
    XCTAssertEqual(reclaimed??.token, "t1")
    let twice: Lease?? = wait { done in a.store.reclaim("t1", completion: done) }
    XCTAssertNil(twice ?? nil)
  }

  /// A token left in the set of leases without its lease (a hand edit, or an eviction) must
  /// not stop the checks of every other lease.
  func testATokenWithoutItsLeaseDoesNotStopTheChecksOfTheOthers() throws {
    let a = side("A")
    _ = wait { done in
      a.store.run(SharedScripts.issue, ["t1", "5001", "10.0.0.9", "A", "0", "1"]) { _ in done(()) }
    }
    XCTAssertEqual(redisCommand(["SADD", "test:leases", "ghost"])?.int, 1)
    Thread.sleep(forTimeInterval: 0.01)
    let overdue: [Lease]? = wait { done in a.store.takeOverdue(now: 0, completion: done) }
    XCTAssertEqual(overdue?.map(\.token), ["t1"])
    let unclaimed: [Lease]? = wait { done in a.store.takeUnclaimed(now: 0, completion: done) }
    XCTAssertEqual(unclaimed?.map(\.token), ["t1"])
    XCTAssertEqual(redisCommand(["SISMEMBER", "test:leases", "ghost"])?.int, 0, "left in the set")
  }

  func testClientsGet503WhileRedisCannotBeReachedAndServiceResumes() throws {
    let a = side("A", unavailableTimeout: 0.5)
    _ = running.sync { a.dispatcher.serverFreed(ServerAddress(port: 5001)) }
    eventually("5001 is free") { redisCommand(["LLEN", "test:free"])?.int == 1 }
    redis.stop()
    let answers = Answers()
    claim("during", at: a, answers: answers)
    eventually("the client is answered") { !answers.all.isEmpty }
    guard case .unavailable(let reason)? = answers.all.first?.answer else {
      return XCTFail("expected 503, got \(String(describing: answers.all.first?.answer))")
    }
    XCTAssertTrue(reason.contains("Redis"), reason)
    try redis.start()
    eventually("the balancer is connected again") {
      (running.sync { a.store.connection.isConnected }) == true
    }
    // Without persistence the books are empty again: the server comes back when it is freed.
    _ = running.sync { a.dispatcher.serverFreed(ServerAddress(port: 5001)) }
    claim("after", at: a, answers: answers)
    eventually("the client after is served") { answers.lease(of: "after") != nil }
  }

  func testLocationsParse() throws {
    XCTAssertEqual(
      try SharedQueueLocation(parsing: "redis://10.0.0.5:6380/team"),
      SharedQueueLocation(host: "10.0.0.5", port: 6380, prefix: "team"))
    XCTAssertEqual(
      try SharedQueueLocation(parsing: "redis://localhost"),
      SharedQueueLocation(host: "localhost", port: 6379, prefix: "lb"))
    XCTAssertEqual(
      try SharedQueueLocation(parsing: "redis://[::1]:7000").host, "::1")
    for bad in [
      "http://x:1", "redis://", "redis://h:0", "redis://h:99999", "redis://h:1/", "redis://h/a b",
    ] {
      XCTAssertThrowsError(try SharedQueueLocation(parsing: bad), bad)
    }
  }
}

/// Times read from the shared books are Redis's (milliseconds); a hand-edited or corrupt entry
/// may hold any number, and none may stop a balancer.
final class SharedBooksTimeTests: XCTestCase {
  private let now: UInt64 = 5_000_000_000_000

  private func lease(issued: Int64, deadline: Int64, claimDeadline: Int64) -> Lease? {
    SharedLeaseStore.lease(
      .array(
        [
          "t", "5001", "c", "b", "\(issued)", "\(deadline)", "\(claimDeadline)", "started", "0",
        ].map { RESPValue.bulk($0) }),
      redisNow: 1_000_000, now: now)
  }

  func testTimesNoClockReachesSaturateInsteadOfOverflowing() throws {
    let ordinary = try XCTUnwrap(lease(issued: 999_000, deadline: 1_060_000, claimDeadline: 0))
    XCTAssertEqual(ordinary.issued, now - 1_000_000_000)
    XCTAssertEqual(ordinary.deadline, now + 60_000_000_000)
    XCTAssertEqual(ordinary.claimDeadline, .max, "0: no claim check")
    let far = try XCTUnwrap(
      lease(issued: .min, deadline: 99_999_999_999_999_999, claimDeadline: .max))
    XCTAssertEqual(far.issued, 0)
    XCTAssertEqual(far.deadline, .max)
    XCTAssertEqual(far.claimDeadline, .max)
    XCTAssertEqual(SharedLeaseStore.local(-9_000_000_000_000_000_000, redisNow: 1, now: now), 0)
    XCTAssertEqual(SharedLeaseStore.local(.max, redisNow: -1, now: now), .max)
    XCTAssertEqual(SharedLeaseStore.local(1_000_001, redisNow: 1_000_000, now: .max), .max)
    guard
      case .idle(let since) = SharedLeaseStore.state(
        "idle:-9000000000000000000", redisNow: 1_000_000, now: now)
    else { return XCTFail("idle") }
    XCTAssertEqual(since, 0)
    guard
      case .idle(let future) = SharedLeaseStore.state(
        "idle:9000000000000000000", redisNow: 1_000_000, now: now)
    else { return XCTFail("idle") }
    XCTAssertEqual(future, now, "idle since the future: since now")
  }
}
