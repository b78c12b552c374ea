import Foundation
import Synchronization

/// A FIFO queue of free servers, with a FIFO line of requests waiting for one.
///
/// This is the balancer's condition variable made explicit: `take` hands out the oldest free
/// server or joins the line; `put` hands the returned server straight to the oldest waiter (or
/// queues it when nobody waits). Waiting costs a closure, not a thread, so an event loop can park
/// thousands of connections on it; `takeBlocking` waits on the same line from a thread.
///
/// Thread-safe. Waiters are called on the thread that calls `put`, outside the lock.
public final class AvailabilityQueue<Server: Hashable & Sendable>: @unchecked Sendable {
  /// Receives a server. Returns false if the waiter can no longer use it (its client left); the
  /// server then goes to the next waiter, so no server is lost.
  public typealias Waiter = (Server) -> Bool

  /// Identifies a waiter in line, so that it can leave.
  public struct Ticket: Hashable, Sendable {
    fileprivate let number: UInt64
  }

  /// What `take` did.
  public enum TakeResult {
    /// A server was free and is now the caller's.
    case server(Server)
    /// None was free: the waiter is in line and will be called by `put`.
    case waiting(Ticket)
  }

  private struct State {
    var free = Deque<Server>()
    var waiters = Deque<(ticket: Ticket, waiter: Waiter)>()
    var nextTicket: UInt64 = 0
  }

  private let state: Mutex<State>

  /// Creates the queue with `servers` free, in order.
  public init(_ servers: [Server] = []) {
    var initial = State()
    for server in servers { initial.free.append(server) }
    state = Mutex(initial)
  }

  /// The number of free servers.
  public var freeCount: Int { state.withLock { $0.free.count } }
  /// The number of requests waiting.
  public var waitingCount: Int { state.withLock { $0.waiters.count } }
  /// The free servers, oldest first.
  public var freeServers: [Server] { state.withLock { Array($0.free) } }

  /// Takes the oldest free server, or puts `waiter` at the end of the line.
  public func take(orWait waiter: @escaping Waiter) -> TakeResult {
    state.withLock { state in
      if let server = state.free.popFirst() { return .server(server) }
      state.nextTicket += 1
      let ticket = Ticket(number: state.nextTicket)
      state.waiters.append((ticket, waiter))
      return .waiting(ticket)
    }
  }

  /// Takes the oldest free server if there is one, without waiting.
  public func tryTake() -> Server? {
    state.withLock { $0.free.popFirst() }
  }

  /// The server the next `take` would get, without taking it.
  public func peek() -> Server? {
    state.withLock { $0.free.first }
  }

  /// Blocks the calling thread until a server is free (first come, first served), or until
  /// `timeout` seconds pass. Not for event-loop threads.
  public func takeBlocking(timeout: Double? = nil) -> Server? {
    let handoff = Handoff<Server>()
    let ticket: Ticket
    switch take(orWait: { handoff.offer($0) }) {
    case .server(let server): return server
    case .waiting(let value): ticket = value
    }
    if let server = handoff.wait(timeout: timeout) { return server }
    // Timed out: leave the line, unless a server arrived at the last moment.
    if cancel(ticket) { return nil }
    return handoff.wait(timeout: nil)
  }

  /// Takes a waiter out of line. Returns false if it was already served (or never there).
  @discardableResult
  public func cancel(_ ticket: Ticket) -> Bool {
    state.withLock { state in
      guard let index = state.waiters.firstIndex(where: { $0.ticket == ticket }) else {
        return false
      }
      state.waiters.remove(at: index)
      return true
    }
  }

  /// Returns `server` to the queue: the oldest waiter that can use it gets it, else it joins the
  /// back of the free queue.
  public func put(_ server: Server) {
    while true {
      let next = state.withLock { state -> Waiter? in
        if let first = state.waiters.popFirst() { return first.waiter }
        state.free.append(server)
        return nil
      }
      guard let waiter = next else { return }
      if waiter(server) { return }
    }
  }

  /// Removes `server` from the free queue (it stops being handed out). Returns whether it was free.
  @discardableResult
  public func remove(_ server: Server) -> Bool {
    state.withLock { state in
      guard let index = state.free.firstIndex(of: server) else { return false }
      state.free.remove(at: index)
      return true
    }
  }

  /// Whether `server` is in the free queue.
  public func isFree(_ server: Server) -> Bool {
    state.withLock { $0.free.contains(server) }
  }
}

/// A one-slot rendezvous between `put` and a thread blocked in `takeBlocking`.
private final class Handoff<Value>: @unchecked Sendable {
  private let condition = NSCondition()
  private var value: Value?

  func offer(_ newValue: Value) -> Bool {
    condition.lock()
    value = newValue
    condition.signal()
    condition.unlock()
    return true
  }

  func wait(timeout: Double?) -> Value? {
    condition.lock()
    defer { condition.unlock() }
    let deadline = timeout.map { Date(timeIntervalSinceNow: $0) }
    while value == nil {
      if let deadline {
        if !condition.wait(until: deadline) { break }
      } else {
        condition.wait()
      }
    }
    return value
  }
}
