/// The books of leases: which client's lease holds which server, until when, and the counts
/// that must always add up. One store serves every dispatcher (the availability queue holds one
/// lease per server; the other policies may hold several). `LeaseLedger` keeps it in the
/// process; a shared store (Redis) keeps it for several balancers.
///
/// Reads answer from the store's current view (a remote store: as last seen). Each change is one
/// atomic step that answers through its completion exactly once: at once in the process, later
/// (on the caller's event loop) for a remote store; never while the store is changing.
public protocol LeaseStore: AnyObject {
  /// Counts since start.
  var counts: LeaseCounts { get }
  /// The leases `server` holds, oldest first.
  func leases(of server: ServerAddress) -> [Lease]
  /// How many leases `server` holds.
  func inFlight(_ server: ServerAddress) -> Int
  /// Every server that holds a lease, in no order: for a shared store, those of every balancer's
  /// pool (the books know each lease's server), including entries this balancer does not list.
  var leasedServers: [ServerAddress] { get }
  /// How many leases `server` was handed since it joined the pool (in a shared store, by every
  /// balancer, as last read).
  func servedCount(_ server: ServerAddress) -> Int
  /// How many leases issued to `client` (an address) are not known to be used yet.
  func unclaimedCount(of client: String) -> Int

  /// Records a new lease.
  func issue(_ lease: Lease, completion: @escaping () -> Void)
  /// A report naming a lease: it ends if it is outstanding and its server has that port.
  func report(token: String, port: Int, completion: @escaping (ReportOutcome) -> Void)
  /// A report without a lease from `server`: its oldest lease ends.
  func reportWithoutToken(_ server: ServerAddress, completion: @escaping (ReportOutcome) -> Void)
  /// Ends the lease `token` unreported (expired); completion gets it, or nil if it had ended.
  func expire(_ token: String, completion: @escaping (Lease?) -> Void)
  /// Ends the lease `token` because its server revoked it unused; nil if it had ended.
  func reclaim(_ token: String, completion: @escaping (Lease?) -> Void)
  /// Ends every lease of `server` unreported (it went down or left); completion gets them.
  func expireAll(of server: ServerAddress, completion: @escaping ([Lease]) -> Void)
  /// Extends a lease whose server is still busy, until `deadline`, and clears its check mark.
  func extend(_ token: String, until deadline: UInt64)
  /// Checks a lease again at `deadline`: its check could not be made (no extension counted).
  func postpone(_ token: String, until deadline: UInt64)
  /// Records what a claim check found.
  func setClaim(_ token: String, _ claim: Lease.Claim)
  /// Leases past their deadline that are not being checked; each is marked as being checked.
  func takeOverdue(now: UInt64, completion: @escaping ([Lease]) -> Void)
  /// Unclaimed leases past their claim deadline; each is marked as being checked.
  func takeUnclaimed(now: UInt64, completion: @escaping ([Lease]) -> Void)
  /// Forgets the served count of a server that left the pool. Its stranded leases stay: the
  /// same process may join again, under this name or another (see `moveStranded(from:to:)`).
  func forget(_ server: ServerAddress)

  /// The leases that ended unreported when `server` was found down, still to be revoked there
  /// before it is handed out again (their clients may come once a partition heals); nil if no
  /// such lease holds it back, empty once each is settled (it then waits for a check that finds
  /// it idle). Kept in the books, so that whichever balancer probes the server revokes them.
  func strandedLeases(of server: ServerAddress) -> [Lease]?
  /// Holds `server` back for `leases`, which ended unreported when it was found down.
  func strand(_ leases: [Lease], of server: ServerAddress)
  /// A stranded lease is settled at its server (revoked, found started, or asked of a server
  /// that cannot tell).
  func settleStranded(_ lease: Lease)
  /// `server` is no longer held back by stranded leases: it is handed out again.
  func releaseStranded(_ server: ServerAddress)
  /// The servers that stranded leases hold back, in the pool or not (one that left keeps them
  /// until the same process joins again: at most one entry per name that left so).
  var strandedServers: [ServerAddress] { get }
  /// The stranded leases of `old`, an entry that left the pool, now hold back `new`, which
  /// joins it for the same process (under the same name or another), with any it holds.
  func moveStranded(from old: ServerAddress, to new: ServerAddress)
}
