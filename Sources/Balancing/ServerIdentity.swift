import HTTPCore

/// Who a server really is: the machine it runs on and its port. Entries that name one process in
/// different ways (`5002`, `localhost:5002`, `127.0.0.1:5002`, `[::1]:5002`) have overlapping
/// identities, and a report is matched to a server by its port and the address it came from.
public struct ServerIdentity: Hashable, Sendable {
  /// The server is on the balancer's machine (loopback, or one of its own addresses).
  public let isLocal: Bool
  /// The numeric addresses its name resolved to, normalised (empty for a bare port).
  public let addresses: Set<String>
  public let port: Int

  public init(isLocal: Bool, addresses: Set<String>, port: Int) {
    self.isLocal = isLocal
    self.addresses = addresses
    self.port = port
  }

  /// A server on this machine listening on every address at `port`: what a bare port names, and
  /// the process a balancer starts.
  public static func everyAddress(port: Int) -> ServerIdentity {
    ServerIdentity(isLocal: true, addresses: [], port: port)
  }

  /// Whether it listens on every address of this machine: a bare port (the servers a balancer
  /// starts listen on the unspecified address) or an entry that names the unspecified address.
  public var listensOnEveryAddress: Bool {
    isLocal && (addresses.isEmpty || addresses.contains("0.0.0.0") || addresses.contains("::"))
  }

  /// Whether it names an address of this machine, any of the loopback range (127.0.0.0/8)
  /// included.
  public var isOnThisMachine: Bool {
    isLocal || addresses.contains(where: AddressResolution.isInLoopbackRange)
  }

  /// Whether `other` may be the same process: the same port on the same machine. Two servers
  /// bound to different loopback addresses (127.0.0.1 and 127.0.0.2) are two; a server listening
  /// on every address is reached at any of them.
  public func overlaps(_ other: ServerIdentity) -> Bool {
    port == other.port
      && ((isLocal && other.isLocal) || !addresses.isDisjoint(with: other.addresses)
        || (listensOnEveryAddress && other.isOnThisMachine)
        || (other.listensOnEveryAddress && isOnThisMachine))
  }

  /// Whether a request from `source` (a numeric address) may come from this server.
  public func matches(source: String, localAddresses: Set<String>) -> Bool {
    let address = AddressResolution.normalise(source)
    if isLocal { return AddressResolution.isLoopback(address) || localAddresses.contains(address) }
    return addresses.contains(address)
  }
}

/// Works out servers' identities once, when a configuration is loaded: names are resolved then,
/// never per request. The resolver and the machine's addresses are passed in, so tests can say
/// what a name means.
public struct ServerIdentifier: Sendable {
  /// The numeric addresses a host name or literal resolves to (normalised); empty if none.
  public var resolve: @Sendable (String) -> [String]
  /// This machine's own addresses (normalised).
  public var localAddresses: Set<String>

  public init(resolve: @escaping @Sendable (String) -> [String], localAddresses: Set<String>) {
    self.resolve = resolve
    self.localAddresses = localAddresses
  }

  /// The system's resolver and this machine's interface addresses.
  public static func system() -> ServerIdentifier {
    ServerIdentifier(
      resolve: AddressResolution.resolve, localAddresses: AddressResolution.localAddresses())
  }

  /// Names mean nothing and only loopback is local (tests that need no resolution).
  public static let loopbackOnly = ServerIdentifier(
    resolve: { host in
      let address = AddressResolution.normalise(host)
      return address.contains(".") || address.contains(":") ? [address] : []
    }, localAddresses: ["127.0.0.1", "::1"])

  /// The identity of `server`, or why it has none (its name does not resolve).
  public func identity(of server: ServerAddress) -> Result<ServerIdentity, ServersFile.Invalid> {
    guard let host = server.host else {
      return .success(ServerIdentity(isLocal: true, addresses: [], port: server.port))
    }
    let addresses = resolve(host)
    guard !addresses.isEmpty else {
      return .failure(ServersFile.Invalid(message: "\(server): the name \(host) does not resolve"))
    }
    let isLocal = addresses.contains {
      AddressResolution.isLoopback($0) || localAddresses.contains($0)
    }
    return .success(ServerIdentity(isLocal: isLocal, addresses: Set(addresses), port: server.port))
  }

  /// The identities of a pool's servers, checked: no two entries are one server, and none is the
  /// balancer itself (listening on `balancerPort` on this machine).
  public func identities(of servers: [ServerAddress], balancerPort: Int?) throws(ServersFile
    .Invalid) -> [ServerAddress: ServerIdentity]
  {
    var known: [(ServerAddress, ServerIdentity)] = []
    for server in servers {
      let identity: ServerIdentity
      switch self.identity(of: server) {
      case .success(let value): identity = value
      case .failure(let invalid): throw invalid
      }
      if let balancerPort, identity.isOnThisMachine, identity.port == balancerPort {
        throw ServersFile.Invalid(
          message: "\(server) is the balancer's own address (port \(balancerPort) on this machine)")
      }
      if let (other, _) = known.first(where: { $0.1.overlaps(identity) }) {
        throw ServersFile.Invalid(message: "\(server) and \(other) are the same server")
      }
      known.append((server, identity))
    }
    return Dictionary(uniqueKeysWithValues: known)
  }
}
