/// A client's place in the line for a server; numbers grow in arrival order.
public struct WaitTicket: Hashable, Sendable, CustomStringConvertible {
  public let number: UInt64
  public init(_ number: UInt64) { self.number = number }
  public var description: String { "#\(number)" }
}

/// A free server handed to a waiting ticket.
public struct Grant: Equatable, Sendable {
  public let ticket: WaitTicket
  public let server: ServerAddress

  public init(ticket: WaitTicket, server: ServerAddress) {
    self.ticket = ticket
    self.server = server
  }
}

/// The free servers in FIFO order and the tickets waiting for one, first come first served: the
/// store behind `QueueDispatcher`. `AvailabilityQueue` keeps it in the process. (The queue that
/// several balancers share in Redis is a `Dispatcher` of its own, `SharedQueueDispatcher`: there,
/// taking a server and leasing it must be one step, which these steps keep apart.)
///
/// Each step is atomic and answers through its completion exactly once: at once for an
/// in-process store, later (on the caller's event loop) for a remote one. A completion never
/// runs while the store is changing, so the caller may act on the answer freely.
public protocol FreeServerQueue: AnyObject {
  /// The free servers, oldest first (a remote store: as last seen).
  var freeServers: [ServerAddress] { get }
  /// How many tickets wait (a remote store: as last seen).
  var waitingCount: Int { get }

  /// Takes the oldest free server for `ticket`, or puts the ticket in line (completion: nil); a
  /// waiting ticket is served later by a `put` that answers with its `Grant`. The answer to a
  /// take always comes before any grant of its ticket.
  func take(for ticket: WaitTicket, completion: @escaping (ServerAddress?) -> Void)
  /// Returns a server: completion gets the grant if a waiting ticket took it, nil if it was
  /// queued as free.
  func put(_ server: ServerAddress, completion: @escaping (Grant?) -> Void)
  /// Takes a ticket out of line; harmless if it was served or never there.
  func leave(_ ticket: WaitTicket)
  /// Takes a server out of the free queue, so that it is not handed out; harmless if not there.
  func withdraw(_ server: ServerAddress)
  /// The server the next take would get, without taking it.
  func peek() -> ServerAddress?
}
