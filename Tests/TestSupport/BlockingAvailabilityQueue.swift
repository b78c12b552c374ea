import Balancing
import Foundation

/// The original balancer's blocking wait, built on `AvailabilityQueue`: a thread that finds no
/// free server blocks on a condition variable until a `put` grants its ticket (first come, first
/// served) or its timeout passes. For tests that show the queue's semantics with real threads.
public final class BlockingAvailabilityQueue<Server: Hashable>: @unchecked Sendable {
  private let condition = NSCondition()
  private let queue: AvailabilityQueue<Server>
  private var granted: [WaitTicket: Server] = [:]
  private var lastTicket: UInt64 = 0

  public init(_ servers: [Server] = []) { queue = AvailabilityQueue(servers) }

  public var waitingCount: Int { locked { queue.waitingCount } }
  public var freeServers: [Server] { locked { queue.freeServers } }

  /// Blocks until a server is free for this thread, or until `timeout` seconds pass (nil).
  public func takeBlocking(timeout: Double) -> Server? {
    condition.lock()
    defer { condition.unlock() }
    lastTicket += 1
    let ticket = WaitTicket(lastTicket)
    if let server = queue.take(ticket) { return server }
    let deadline = Date(timeIntervalSinceNow: timeout)
    while granted[ticket] == nil {
      if !condition.wait(until: deadline) { break }
    }
    if let server = granted.removeValue(forKey: ticket) { return server }
    queue.cancel(ticket)  // under the lock: no put can grant it meanwhile
    return nil
  }

  /// Returns a server, waking the thread whose ticket gets it.
  public func put(_ server: Server) {
    locked {
      if let grant = queue.put(server) {
        granted[grant.ticket] = grant.server
        condition.broadcast()
      }
    }
  }

  private func locked<T>(_ body: () -> T) -> T {
    condition.lock()
    defer { condition.unlock() }
    return body()
  }
}
