/// How the balancer picks a server when it does not wait for one to be free: every policy but
/// the availability queue redirects at once, to a server that may be busy.
public protocol RoutingPolicy: AnyObject {
  /// Picks one of `candidates` (the servers that are up, in pool order) for a request whose
  /// hashing key is `key`; `inFlight` tells how many jobs a server has not reported yet.
  func choose(from candidates: [ServerAddress], key: String, inFlight: (ServerAddress) -> Int)
    -> ServerAddress?
  /// The server `choose` would pick now, without counting it as picked (for `HEAD /`).
  func preview(from candidates: [ServerAddress], key: String, inFlight: (ServerAddress) -> Int)
    -> ServerAddress?
  /// Whether `choose` looks at `key`: only then does the balancer read a client's `?key=`.
  var usesKey: Bool { get }
}

extension RoutingPolicy {
  public var usesKey: Bool { false }
}

/// The policies `--policy` names.
public enum PolicyName: String, CaseIterable, Sendable {
  case queue
  case roundRobin = "round-robin"
  case random
  case leastConnections = "least-connections"
  case consistentHash = "consistent-hash"
}

/// Each server in turn.
public final class RoundRobinPolicy: RoutingPolicy {
  private var next = 0
  public init() {}
  public func choose(
    from candidates: [ServerAddress], key: String, inFlight: (ServerAddress) -> Int
  )
    -> ServerAddress?
  {
    guard !candidates.isEmpty else { return nil }
    defer { next += 1 }
    return preview(from: candidates, key: key, inFlight: inFlight)
  }

  public func preview(
    from candidates: [ServerAddress], key: String, inFlight: (ServerAddress) -> Int
  ) -> ServerAddress? {
    candidates.isEmpty ? nil : candidates[next % candidates.count]
  }
}

/// A server chosen uniformly at random.
public final class RandomPolicy: RoutingPolicy {
  private var generator: any RandomNumberGenerator
  public init(generator: any RandomNumberGenerator = SystemRandomNumberGenerator()) {
    self.generator = generator
  }
  public func choose(
    from candidates: [ServerAddress], key: String, inFlight: (ServerAddress) -> Int
  )
    -> ServerAddress?
  {
    candidates.randomElement(using: &generator)
  }

  /// Any server: a GET's pick is not known before it is made. Drawn from the system's
  /// generator, so that a seeded sequence of picks stays the same.
  public func preview(
    from candidates: [ServerAddress], key: String, inFlight: (ServerAddress) -> Int
  ) -> ServerAddress? {
    candidates.randomElement()
  }
}

/// The server with the fewest unreported jobs; ties go round the servers in turn.
public final class LeastConnectionsPolicy: RoutingPolicy {
  private var rotation = 0
  public init() {}
  public func choose(
    from candidates: [ServerAddress], key: String, inFlight: (ServerAddress) -> Int
  )
    -> ServerAddress?
  {
    guard !candidates.isEmpty else { return nil }
    rotation += 1
    return pick(from: candidates, rotation: rotation, inFlight: inFlight)
  }

  public func preview(
    from candidates: [ServerAddress], key: String, inFlight: (ServerAddress) -> Int
  ) -> ServerAddress? {
    pick(from: candidates, rotation: rotation + 1, inFlight: inFlight)
  }

  /// The least loaded of `candidates`, ties going to the first from `rotation` on.
  private func pick(
    from candidates: [ServerAddress], rotation: Int, inFlight: (ServerAddress) -> Int
  ) -> ServerAddress? {
    guard !candidates.isEmpty else { return nil }
    var best: ServerAddress?
    var bestLoad = Int.max
    for offset in 0..<candidates.count {
      let server = candidates[(rotation + offset) % candidates.count]
      let load = inFlight(server)
      if load < bestLoad {
        best = server
        bestLoad = load
      }
    }
    return best
  }
}

/// The server that owns the key on a consistent-hash ring of the candidates.
public final class ConsistentHashPolicy: RoutingPolicy {
  private var ring: HashRing
  private var placed: [ServerAddress] = []
  public let usesKey = true

  public init(slots: Int = 512, virtualNodes: Int = 9) {
    ring = HashRing(slots: slots, virtualNodes: virtualNodes)
  }

  public func choose(
    from candidates: [ServerAddress], key: String, inFlight: (ServerAddress) -> Int
  )
    -> ServerAddress?
  {
    if candidates != placed {
      ring.rebuild(candidates)
      placed = candidates
    }
    return ring.server(for: key)
  }

  /// The key's server: choosing changes nothing.
  public func preview(
    from candidates: [ServerAddress], key: String, inFlight: (ServerAddress) -> Int
  ) -> ServerAddress? {
    choose(from: candidates, key: key, inFlight: inFlight)
  }
}
