/// A FIFO queue of free servers beside a FIFO line of tickets waiting for one.
///
/// This is the original balancer's condition variable made explicit, with no threads: `take`
/// hands out the oldest free server or puts the ticket in line; `put` hands a returned server to
/// the oldest ticket still in line (or queues it when nobody waits) and says which ticket got it.
/// Nothing is called back: the caller acts on the values it gets, after the queue has changed.
///
/// Leaving the line is O(1): a cancelled ticket is forgotten at once and its place skipped later,
/// and the line is compacted when it is mostly such places. Not thread-safe: use from one thread.
public final class AvailabilityQueue<Server: Hashable> {
  private var free = Deque<Server>()
  /// Tickets in arrival order, including cancelled ones not yet skipped.
  private var line = Deque<WaitTicket>()
  /// The tickets really waiting.
  private var waiting = Set<WaitTicket>()

  /// Creates the queue with `servers` free, in order.
  public init(_ servers: [Server] = []) {
    for server in servers { free.append(server) }
  }

  /// The number of tickets waiting.
  public var waitingCount: Int { waiting.count }
  /// The free servers, oldest first.
  public var freeServers: [Server] { Array(free) }

  /// Takes the oldest free server for `ticket`, or puts the ticket at the end of the line and
  /// returns nil. A ticket may wait only once.
  public func take(_ ticket: WaitTicket) -> Server? {
    if let server = free.popFirst() { return server }
    precondition(!waiting.contains(ticket), "ticket \(ticket) is in line already")
    waiting.insert(ticket)
    line.append(ticket)
    return nil
  }

  /// The server the next `take` would get, without taking it.
  public func peek() -> Server? { free.first }

  /// Returns `server`: the oldest ticket in line gets it (and leaves the line), else it joins the
  /// back of the free queue and the result is nil.
  public func put(_ server: Server) -> (ticket: WaitTicket, server: Server)? {
    while let ticket = line.popFirst() {
      if waiting.remove(ticket) != nil { return (ticket, server) }
    }
    free.append(server)
    return nil
  }

  /// Takes `ticket` out of line. Returns false if it was not waiting (served, or never there).
  @discardableResult
  public func cancel(_ ticket: WaitTicket) -> Bool {
    guard waiting.remove(ticket) != nil else { return false }
    if line.count > 64 && line.count > 4 * waiting.count {
      line = Deque(line.filter { waiting.contains($0) })
    }
    return true
  }

  /// Removes `server` from the free queue (it stops being handed out). Returns whether it was free.
  @discardableResult
  public func remove(_ server: Server) -> Bool {
    guard let index = free.firstIndex(of: server) else { return false }
    free.remove(at: index)
    return true
  }
}
