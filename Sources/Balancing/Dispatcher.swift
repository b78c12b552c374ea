/// Decides which server a client gets, and when: the strategy of the balancer.
///
/// `QueueDispatcher` is the availability queue (wait for a free server, one client per server);
/// `PolicyDispatcher` redirects at once to the server a `RoutingPolicy` picks. Both issue
/// leases through one `LeaseIssuer` into one `LeaseStore`; the `ServerBroker` tells them when a
/// server can take clients again or must not. (`SharedQueueDispatcher`, in the `SharedQueue`
/// module, is the availability queue that several balancers share in Redis.) Call from one
/// thread.
public protocol Dispatcher: AnyObject {
  /// The name `--policy` gives it.
  var name: String { get }
  /// Whether an unreported lease is checked with its server before it ends (one client per
  /// server), or simply ends at its deadline (a server shared by many jobs).
  var checksOverdueLeases: Bool { get }
  /// Whether a claim's `key` picks its server (consistent hashing): only then is `?key=` read.
  var usesKeys: Bool { get }
  /// The servers that would take a client now, in the order they would be handed out.
  var freeServers: [ServerAddress] { get }
  /// How many clients wait.
  var waitingCount: Int { get }

  /// Finds a server for `claim` and answers it, now or later.
  func dispatch(_ claim: ServerClaim)
  /// The server a claim with hashing key `key` (see `ServerClaim.key`) would get now, without
  /// taking it (for `HEAD /`).
  func preview(key: String) -> ServerAddress?
  /// `server` is up and holds no lease: it may take a client.
  func serverFreed(_ server: ServerAddress)
  /// `server` went down or left: it must not be handed out.
  func serverStopped(_ server: ServerAddress)
  /// Answers 503 to clients whose wait is over.
  func expireWaiting(now: UInt64)
  /// Answers every waiting client with `reason`; later claims are refused by the broker.
  func shutDown(reason: String)
}
