/// The balancer's `GET /health`: alive, and how many servers are free and clients waiting.
public struct BalancerHealth: JSONDocument, Equatable {
  public var status = "ok"
  /// Servers that can take a client now.
  public var free: Int
  /// Clients waiting for a server.
  public var waiting: Int
  /// Servers in the pool (up or down).
  public var servers: Int

  public init(free: Int, waiting: Int, servers: Int) {
    self.free = free
    self.waiting = waiting
    self.servers = servers
  }
}
