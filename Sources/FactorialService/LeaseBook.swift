/// What a factorial server knows of the balancer's leases: the ones its clients came with
/// (started) and the ones it revoked at the balancer's claim check. A lease is used once; a
/// revoked one never. Bounded: the oldest entries are forgotten past `capacity` each.
/// Call from one thread (the event loop's): each step is atomic there.
public struct LeaseBook {
  /// What the server decided about a lease a client brought.
  public enum Admission: Equatable {
    case start
    /// Revoked before its client came.
    case revoked
    /// Another request used it already.
    case usedAlready
  }

  private var started = RecentSet()
  private var revoked = RecentSet()

  public init(capacity: Int = 65_536) {
    started = RecentSet(capacity: capacity)
    revoked = RecentSet(capacity: capacity)
  }

  /// A client brings `token`: start its job, unless it was revoked or used.
  public mutating func admit(_ token: String) -> Admission {
    if revoked.contains(token) { return .revoked }
    return started.insert(token) ? .start : .usedAlready
  }

  /// What `admit` would answer for `token` now, recording nothing (for a HEAD).
  public func peek(_ token: String) -> Admission {
    if revoked.contains(token) { return .revoked }
    return started.contains(token) ? .usedAlready : .start
  }

  /// The balancer asks to revoke `token`: true if it is now revoked (its job never started),
  /// false if its client came already.
  public mutating func revoke(_ token: String) -> Bool {
    if started.contains(token) { return false }
    revoked.insert(token)
    return true
  }
}

/// A set that remembers only its `capacity` most recent members.
struct RecentSet {
  private var members: Set<String> = []
  private var order: [String] = []
  private var head = 0
  let capacity: Int

  init(capacity: Int = 65_536) { self.capacity = max(1, capacity) }

  func contains(_ member: String) -> Bool { members.contains(member) }

  /// Adds `member`; false if it was there already.
  @discardableResult
  mutating func insert(_ member: String) -> Bool {
    guard members.insert(member).inserted else { return false }
    if order.count < capacity {
      order.append(member)
    } else {
      members.remove(order[head])
      order[head] = member
      head = (head + 1) % capacity
    }
    return true
  }
}
