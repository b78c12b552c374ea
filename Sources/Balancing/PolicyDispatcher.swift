/// Redirects at once to the server a `RoutingPolicy` picks among those up, busy or not: the
/// second document's balancers. A server may hold several leases; clients never wait.
public final class PolicyDispatcher: Dispatcher {
  public let name: String
  public let checksOverdueLeases = false
  public var usesKeys: Bool { policy.usesKey }
  public let policy: RoutingPolicy
  private let pool: ServerPool
  private let issuer: LeaseIssuer

  public init(name: String, policy: RoutingPolicy, pool: ServerPool, issuer: LeaseIssuer) {
    self.name = name
    self.policy = policy
    self.pool = pool
    self.issuer = issuer
  }

  public var freeServers: [ServerAddress] { pool.serving }
  public let waitingCount = 0

  public func dispatch(_ claim: ServerClaim) {
    let store = issuer.store
    guard
      let server = policy.choose(from: pool.serving, key: claim.key, inFlight: store.inFlight)
    else {
      claim.answer(.unavailable("no server is up"))
      return
    }
    issuer.grant(server, to: claim) { _ in }
  }

  public func preview(key: String) -> ServerAddress? {
    policy.preview(from: pool.serving, key: key, inFlight: issuer.store.inFlight)
  }
  public func serverFreed(_ server: ServerAddress) {}
  public func serverStopped(_ server: ServerAddress) {}
  public func expireWaiting(now: UInt64) {}
  public func shutDown(reason: String) {}
}
