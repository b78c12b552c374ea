import Foundation
import HTTPCore
import RedisClient
import Synchronization
import TestSupport
import XCTest

/// The client against a real redis-server: commands, pipelining, errors, scripts, blocking
/// commands and close().
final class RedisConnectionTests: RedisServerTestCase {
  func testSetGetIncr() throws {
    let redis = makeConnection()
    XCTAssertEqual(running.value(redis, ["SET", "greeting", "hello"]), .simple("OK"))
    XCTAssertEqual(running.value(redis, ["GET", "greeting"])?.string, "hello")
    let missing = running.value(redis, ["GET", "missing"])
    XCTAssertEqual(missing, .bulk(nil))
    XCTAssertEqual(missing?.isNull, true)
    XCTAssertEqual(running.value(redis, ["INCR", "counter"])?.int, 1)
    XCTAssertEqual(running.value(redis, ["INCR", "counter"]), .integer(2))
    XCTAssertEqual(running.value(redis, ["INCRBY", "counter", "40"])?.int, 42)
    XCTAssertEqual(
      running.value(redis, ["GET", "counter"])?.int, 42, "a counter read back as text")
    XCTAssertEqual(running.value(redis, ["SET", "ünïcode ✓", "välue ✓"]), .simple("OK"))
    XCTAssertEqual(running.value(redis, ["GET", "ünïcode ✓"])?.string, "välue ✓")
    XCTAssertEqual(running.value(redis, ["RPUSH", "list", "a", "b", "c"])?.int, 3)
    XCTAssertEqual(
      running.value(redis, ["LRANGE", "list", "0", "-1"])?.array?.compactMap(\.string),
      ["a", "b", "c"])
    XCTAssertEqual(running.value(redis, ["LRANGE", "nolist", "0", "-1"]), .array([]))
  }

  func testBinarySafeValues() throws {
    let redis = makeConnection()
    let binary: [UInt8] = [0, 13, 10, 36, 255, 42, 13, 10, 0] + Array(repeating: 7, count: 100_000)
    let set = Outcome()
    let get = Outcome()
    let running = running!
    nonisolated(unsafe) let connection = redis
    running.loop.execute {
      connection.send([Array("SET".utf8), [0, 1, 2], binary]) {
        set.record($0, onLoop: running.isLoopThread)
      }
      connection.send([Array("GET".utf8), [0, 1, 2]]) {
        get.record($0, onLoop: running.isLoopThread)
      }
    }
    XCTAssertEqual(try set.wait()?.get(), .simple("OK"))
    XCTAssertEqual(try get.wait()?.get(), .bulk(binary))
  }

  func testThousandPipelinedCommandsCompleteInOrder() throws {
    let redis = makeConnection()
    XCTAssertEqual(running.value(redis, ["PING"]), .simple("PONG"))  // connected
    let count = 1000
    let done = DispatchSemaphore(value: 0)
    let completions = Mutex<[(index: Int, value: Int64?, onLoop: Bool)]>([])
    let pendingAfterSending = Mutex(0)
    let running = running!
    nonisolated(unsafe) let connection = redis
    running.loop.execute {
      for index in 0..<count {
        connection.send(["INCR", "pipelined"]) { result in
          let value = try? result.get().int
          completions.withLock { $0.append((index, value, running.isLoopThread)) }
          if index == count - 1 { done.signal() }
        }
      }
      // Nothing is written before this turn of the loop ends: all go out together.
      pendingAfterSending.withLock { $0 = connection.pendingCount }
    }
    XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "the pipeline did not complete")
    let results = completions.withLock { $0 }
    XCTAssertEqual(pendingAfterSending.withLock { $0 }, count)
    XCTAssertEqual(results.map(\.index), Array(0..<count), "completions out of order")
    XCTAssertEqual(results.map(\.value), (1...count).map { Int64($0) }, "replies mismatched")
    XCTAssertTrue(results.allSatisfy(\.onLoop), "a completion ran off the loop thread")
    XCTAssertEqual(running.sync { connection.pendingCount }, 0)
  }

  func testErrorReplyIsDeliveredAsError() throws {
    let redis = makeConnection()
    XCTAssertEqual(running.value(redis, ["SET", "text", "abc"]), .simple("OK"))
    // Pipelined: the error in the middle does not disturb the replies around it.
    let before = running.send(redis, ["GET", "text"])
    let failing = running.send(redis, ["INCR", "text"])
    let unknown = running.send(redis, ["NOSUCHCOMMAND", "x"])
    let after = running.send(redis, ["GET", "text"])
    XCTAssertEqual(try before.wait()?.get().string, "abc")
    guard case .failure(let error)? = failing.wait() else {
      return XCTFail("INCR of text did not fail")
    }
    XCTAssertEqual(error, .server("ERR value is not an integer or out of range"))
    XCTAssertEqual(error.code, "ERR")
    guard case .failure(.server(let message))? = unknown.wait() else {
      return XCTFail("an unknown command did not fail")
    }
    XCTAssertTrue(message.hasPrefix("ERR unknown command"), message)
    XCTAssertEqual(try after.wait()?.get().string, "abc")
    // Inside an array (EXEC), an error stays a value.
    XCTAssertEqual(running.value(redis, ["MULTI"]), .simple("OK"))
    XCTAssertEqual(running.value(redis, ["INCR", "text"]), .simple("QUEUED"))
    XCTAssertEqual(running.value(redis, ["INCR", "number"]), .simple("QUEUED"))
    XCTAssertEqual(
      running.value(redis, ["EXEC"]),
      .array([.error("ERR value is not an integer or out of range"), .integer(1)]))
  }

  func testEmptyCommandFailsWithoutReachingTheServer() throws {
    let redis = makeConnection()
    guard case .failure(let error)? = running.call(redis, []) else {
      return XCTFail("an empty command did not fail")
    }
    XCTAssertEqual(error, .emptyCommand)
    XCTAssertEqual(running.value(redis, ["PING"]), .simple("PONG"))
  }

  func testEvalshaFallsBackToEvalThenUsesTheCachedScript() throws {
    let redis = makeConnection()
    let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1]) -- ✓")
    XCTAssertEqual(running.value(redis, ["SCRIPT", "FLUSH"]), .simple("OK"))
    XCTAssertEqual(running.value(redis, ["CONFIG", "RESETSTAT"]), .simple("OK"))

    XCTAssertEqual(
      try evaluate(redis, script, keys: ["total"], arguments: ["5"]).get(), .integer(5))
    XCTAssertEqual(
      running.value(redis, ["SCRIPT", "EXISTS", script.sha1]), .array([.integer(1)]),
      "EVAL did not cache the script under our SHA-1")
    XCTAssertEqual(
      try evaluate(redis, script, keys: ["total"], arguments: ["2"]).get(), .integer(7))

    let stats = running.value(redis, ["INFO", "commandstats"])?.string ?? ""
    XCTAssertEqual(Self.stat("eval", "calls", in: stats), 1, stats)
    XCTAssertEqual(Self.stat("evalsha", "calls", in: stats), 2, stats)
    XCTAssertEqual(Self.stat("evalsha", "failed_calls", in: stats), 1, stats)

    // SCRIPT LOAD names scripts by the same digest.
    let other = RedisScript("return {KEYS[1], ARGV[1], 42}")
    let loaded = Outcome()
    let running = running!
    nonisolated(unsafe) let connection = redis
    running.loop.execute { connection.load(other) { loaded.record($0, onLoop: true) } }
    XCTAssertEqual(try loaded.wait()?.get().string, other.sha1)
    XCTAssertEqual(
      try evaluate(redis, other, keys: ["k"], arguments: ["v"]).get(),
      .array([.bulk("k"), .bulk("v"), .integer(42)]))
    // A script error is an error reply.
    let broken = RedisScript("return redis.call('NOSUCHCOMMAND')")
    guard case .failure(let error) = evaluate(redis, broken) else {
      return XCTFail("a failing script did not fail")
    }
    XCTAssertEqual(error.code, "ERR", "\(error)")
  }

  func testBlockingPopWithATimeoutOnItsOwnConnection() throws {
    let redis = makeConnection()
    let blocking = makeConnection()
    // Nothing to pop: a null array once the timeout passes.
    let empty = running.send(blocking, ["BLPOP", "jobs", "0.2"])
    let nothing = try XCTUnwrap(empty.wait())
    XCTAssertEqual(try nothing.get(), .array(nil))
    XCTAssertGreaterThanOrEqual(empty.elapsed, 0.15)
    XCTAssertLessThan(empty.elapsed, 5)
    // Something pushed meanwhile on another connection: [list, value].
    let popped = running.send(blocking, ["BLPOP", "jobs", "5"])
    waitForBlockedClients(1, using: redis)
    XCTAssertEqual(running.value(redis, ["RPUSH", "jobs", "job-1"])?.int, 1)
    XCTAssertEqual(try popped.wait()?.get(), .array([.bulk("jobs"), .bulk("job-1")]))
    XCTAssertLessThan(popped.elapsed, 5)
  }

  func testCloseFailsEverythingPendingAndLaterCommands() throws {
    let redis = makeConnection()
    let blocking = makeConnection()
    let blocked = running.send(blocking, ["BLPOP", "never", "0"])
    let behind = running.send(blocking, ["PING"])
    waitForBlockedClients(1, using: redis)
    // close() fails them later on the loop, never inside the call.
    let calledInside = Mutex(false)
    let after = Outcome()
    let running = running!
    nonisolated(unsafe) let connection = blocking
    _ = running.sync {
      var returned = false
      connection.close()
      connection.send(["PING"]) { result in
        if !returned { calledInside.withLock { $0 = true } }
        after.record(result, onLoop: running.isLoopThread)
      }
      returned = true
    }
    for outcome in [blocked, behind, after] {
      guard case .failure(let error)? = outcome.wait() else { return XCTFail("not failed") }
      XCTAssertEqual(error, .closed)
    }
    XCTAssertFalse(calledInside.withLock { $0 }, "a completion ran inside send")
    XCTAssertTrue(after.ranOnLoop)
    XCTAssertEqual(running.sync { connection.pendingCount }, 0, "failed commands still pending")
    waitForBlockedClients(0, using: redis)
  }

  func testCompletionsMaySendAndClose() throws {
    let redis = makeConnection()
    let done = Outcome()
    let running = running!
    nonisolated(unsafe) let connection = redis
    running.loop.execute {
      connection.send(["SET", "chain", "1"]) { _ in
        connection.send(["INCR", "chain"]) { _ in
          connection.send(["GET", "chain"]) { result in
            done.record(result, onLoop: running.isLoopThread)
            connection.close()
          }
        }
      }
    }
    XCTAssertEqual(try done.wait()?.get().int, 2)
    guard case .failure(let error)? = running.call(redis, ["PING"]) else {
      return XCTFail("a command after close() did not fail")
    }
    XCTAssertEqual(error, .closed)
  }

  // MARK: - Helpers

  private func evaluate(
    _ redis: RedisConnection, _ script: RedisScript, keys: [String] = [],
    arguments: [String] = [], file: StaticString = #filePath, line: UInt = #line
  ) -> Result<RESPValue, RedisError> {
    let outcome = Outcome()
    nonisolated(unsafe) let connection = redis
    running.loop.execute {
      connection.evaluate(script, keys: keys, arguments: arguments) {
        outcome.record($0, onLoop: true)
      }
    }
    guard let result = outcome.wait() else {
      XCTFail("no reply to the script within 10 s", file: file, line: line)
      return .failure(.unavailable("test timeout"))
    }
    return result
  }

  /// A field of INFO commandstats, such as `cmdstat_eval:calls=1,…`.
  private static func stat(_ command: String, _ field: String, in info: String) -> Int? {
    for line in info.split(whereSeparator: \.isNewline)
    where line.hasPrefix("cmdstat_\(command):") {
      for pair in line.split(separator: ":", maxSplits: 1)[1].split(separator: ",") {
        let parts = pair.split(separator: "=")
        if parts.count == 2, parts[0] == field { return Int(parts[1]) }
      }
    }
    return nil
  }
}
