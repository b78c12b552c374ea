import Foundation
import HTTPCore
import RedisClient
import Synchronization
import XCTest

/// The client while its redis-server is killed and restarted: lost, queued and unavailable
/// commands, and the reconnection hook.
final class RedisReconnectTests: RedisServerTestCase {
  func testReconnectsAfterTheServerRestarts() throws {
    let connects = Mutex(0)
    let redis = makeConnection()
    let observer = makeConnection()
    let running = running!
    nonisolated(unsafe) let connection = redis
    _ = running.sync {
      connection.onConnect = { connection in
        let number = connects.withLock {
          $0 += 1
          return $0
        }
        connection.send(["CLIENT", "SETNAME", "connection-\(number)"]) { _ in }
      }
    }
    XCTAssertEqual(running.value(redis, ["SET", "before", "1"]), .simple("OK"))
    XCTAssertEqual(running.value(redis, ["CLIENT", "GETNAME"])?.string, "connection-1")

    // Written before the drop: BLPOP blocks, and PING is written behind it.
    let blocked = running.send(redis, ["BLPOP", "queue", "0"])
    let behind = running.send(redis, ["PING"])
    waitForBlockedClients(1, using: observer)
    server.stop()
    for outcome in [blocked, behind] {
      guard case .failure(let error)? = outcome.wait() else {
        return XCTFail("a command written before the drop did not fail")
      }
      guard case .connectionLost(let reason) = error else {
        return XCTFail("expected connectionLost, got \(error)")
      }
      XCTAssertTrue(
        error.description.contains("may or may not have run"), "unclear: \(error) (\(reason))")
    }
    XCTAssertEqual(running.sync { connection.isConnected }, false)

    // Sent while down: queued, then sent after the reconnection, behind the hook's command.
    let set = running.send(redis, ["SET", "after", "2"])
    let name = running.send(redis, ["CLIENT", "GETNAME"])
    let get = running.send(redis, ["GET", "after"])
    Thread.sleep(forTimeInterval: 0.3)  // a few refused attempts, with back-off
    XCTAssertEqual(running.sync { connection.pendingCount }, 3)
    try server.start()
    XCTAssertEqual(try set.wait()?.get(), .simple("OK"))
    XCTAssertEqual(try name.wait()?.get().string, "connection-2")
    XCTAssertEqual(try get.wait()?.get().string, "2")
    XCTAssertEqual(connects.withLock { $0 }, 2)
    XCTAssertLessThan(set.elapsed, 5, "reconnection took longer than the back-off allows")
    // The server was restarted empty: the data from before is gone, the connection works.
    XCTAssertEqual(running.value(redis, ["GET", "before"]), .bulk(nil))
    XCTAssertEqual(running.sync { connection.isConnected }, true)
  }

  func testScriptIsSentAgainAfterTheServerForgetsIt() throws {
    let redis = makeConnection()
    let script = RedisScript("return ARGV[1] .. '!'")
    XCTAssertEqual(try evaluate(redis, script, "one").get().string, "one!")
    server.stop()
    try server.start()
    // The first command after a restart may find the old connection gone.
    running.eventually("the connection is back") {
      if case .success? = running.call(redis, ["PING"]) { return true }
      return false
    }
    XCTAssertEqual(running.value(redis, ["SCRIPT", "EXISTS", script.sha1]), .array([.integer(0)]))
    XCTAssertEqual(try evaluate(redis, script, "two").get().string, "two!")
    XCTAssertEqual(running.value(redis, ["SCRIPT", "EXISTS", script.sha1]), .array([.integer(1)]))
  }

  func testCommandsFailAfterTheUnavailableTimeoutWhileTheServerIsDown() throws {
    let redis = makeConnection { $0.unavailableTimeout = 0.5 }
    let running = running!
    nonisolated(unsafe) let connection = redis
    XCTAssertEqual(running.value(redis, ["PING"]), .simple("PONG"))
    server.stop()
    running.eventually("the drop is noticed") { running.sync { connection.isConnected } == false }

    let waited = running.send(redis, ["GET", "key"])
    guard case .failure(let error)? = waited.wait() else {
      return XCTFail("a command did not fail while the server was down")
    }
    guard case .unavailable(let reason) = error else {
      return XCTFail("expected unavailable, got \(error)")
    }
    XCTAssertTrue(reason.contains("127.0.0.1:\(server.port)"), reason)
    XCTAssertGreaterThanOrEqual(waited.elapsed, 0.45)
    XCTAssertLessThan(waited.elapsed, 3)
    XCTAssertTrue(waited.ranOnLoop)

    // Down for longer than the timeout already: later commands fail at once.
    let immediate = running.send(redis, ["GET", "key"])
    guard case .failure(.unavailable)? = immediate.wait() else {
      return XCTFail("a command did not fail at once while the server stayed down")
    }
    XCTAssertLessThan(immediate.elapsed, 0.4)

    // Back up: commands succeed again once the background reconnection gets through.
    try server.start()
    running.eventually("commands succeed again") {
      if case .success(.simple("PONG"))? = running.call(redis, ["PING"]) { return true }
      Thread.sleep(forTimeInterval: 0.1)
      return false
    }
  }

  /// A stopped server keeps its sockets open and answers nothing: with a reply timeout, the
  /// command waiting on it fails (`connectionLost`: it may have run) instead of waiting for
  /// good, and so does each later one while the server stays stopped; once it runs again,
  /// commands succeed on a new connection.
  func testAStoppedServerFailsCommandsAfterTheReplyTimeout() throws {
    let redis = makeConnection { $0.replyTimeout = 0.5 }
    let running = running!
    XCTAssertEqual(running.value(redis, ["SET", "key", "1"]), .simple("OK"))
    server.pause()
    defer { server.resume() }
    for _ in 0..<2 {
      let waited = running.send(redis, ["GET", "key"])
      guard case .failure(.connectionLost(let reason))? = waited.wait() else {
        return XCTFail("a command to a stopped server did not fail as connectionLost")
      }
      XCTAssertTrue(reason.contains("no reply within 0.5 s"), reason)
      XCTAssertGreaterThanOrEqual(waited.elapsed, 0.45)
      XCTAssertLessThan(waited.elapsed, 3)
    }
    server.resume()
    running.eventually("commands succeed again") {
      if case .success(.bulk(let value))? = running.call(redis, ["GET", "key"]) {
        return value == Array("1".utf8)
      }
      return false
    }
  }

  /// A reply that came while the loop was busy, and sits unread when the reply timeout falls
  /// due, is read, not taken for a hang (as after this process was paused: shared-chaos.sh
  /// --seed 11 found a balancer answering 503 so while Redis was up). The timers are arranged so
  /// that the timeout and a timer that lets the paused server answer fall due in one batch,
  /// the latter first.
  func testAReplyWaitingUnreadWhenTheReplyTimeoutFallsDueIsRead() throws {
    let redis = makeConnection { $0.replyTimeout = 0.3 }
    let running = running!
    nonisolated(unsafe) let connection = redis
    let server = server!
    XCTAssertEqual(running.value(redis, ["SET", "key", "1"]), .simple("OK"))
    Thread.sleep(forTimeInterval: 0.4)  // the SET's reply timer has come and gone
    server.pause()
    defer { server.resume() }
    let outcome = Outcome()
    let loop = running.loop
    loop.execute {
      // This turn: the GET is queued (written at the next turn's timers), and two timers are
      // set before the reply timeout is: one that keeps the loop busy past that timeout, one
      // that lets the server answer and waits for its reply to arrive.
      connection.send(["GET", "key"]) { outcome.record($0, onLoop: true) }
      _ = loop.schedule(after: 0) { usleep(500_000) }
      _ = loop.schedule(after: 0.1) {
        server.resume()
        usleep(200_000)
      }
    }
    guard case .success(.bulk(let value))? = outcome.wait(timeout: 5) else {
      return XCTFail(
        "the reply that was waiting was not read: \(String(describing: outcome.wait(timeout: 0)))")
    }
    XCTAssertEqual(value, Array("1".utf8))
  }

  func testCommandsFailWhenNothingListens() throws {
    let port = try Socket.freePorts(1)[0]
    let redis = makeConnection {
      $0.port = port
      $0.unavailableTimeout = 0.3
    }
    let outcome = running.send(redis, ["PING"])
    guard case .failure(.unavailable(let reason))? = outcome.wait() else {
      return XCTFail("PING to a closed port did not fail as unavailable")
    }
    XCTAssertTrue(reason.lowercased().contains("refused"), reason)
    XCTAssertGreaterThanOrEqual(outcome.elapsed, 0.25)
    XCTAssertLessThan(outcome.elapsed, 3)
  }

  private func evaluate(_ redis: RedisConnection, _ script: RedisScript, _ argument: String)
    -> Result<RESPValue, RedisError>
  {
    let outcome = Outcome()
    nonisolated(unsafe) let connection = redis
    running.loop.execute {
      connection.evaluate(script, arguments: [argument]) { outcome.record($0, onLoop: true) }
    }
    return outcome.wait() ?? .failure(.unavailable("no reply within 10 s"))
  }
}
