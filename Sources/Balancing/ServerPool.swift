import Foundation
import HTTPCore

/// The servers of the pool and whether each is up: membership (servers.json, /add, /rm) and
/// health (down servers probed with back-off, free ones asked now and then whether they are
/// alive). Leases live in the `LeaseStore`, and the order of free servers in the dispatcher.
///
/// Every change returns what happened; the caller acts on it. Times are monotonic nanoseconds
/// passed in by the caller, so tests control the clock. Call from one thread.
public final class ServerPool {
  /// Whether a server can be handed out.
  public enum Health: Equatable, Sendable {
    case up
    /// Not answering since `since`; probed again at `nextProbe`.
    case down(since: UInt64, nextProbe: UInt64, failures: Int)
  }

  /// What a health check of a server found.
  public enum CheckResult: Sendable {
    case idle, busy, unreachable
    /// The balancer could not ask (no descriptor left for a socket): nothing is known of the
    /// server, and it is asked again soon.
    case inconclusive
  }

  /// What a new configuration changed.
  public struct Change: Equatable {
    /// Servers that joined (or came back before they left).
    public var added: [ServerAddress] = []
    /// Servers that joined up: they can take clients at once.
    public var joinedUp: [ServerAddress] = []
    /// Servers no longer configured: gone at once, or retired until their leases end.
    public var removed: [ServerAddress] = []
    /// Removed servers that left at once (they held no lease).
    public var dropped: [ServerAddress] = []
  }

  private struct Member {
    var health: Health
    /// Removed from the configuration while holding leases: it leaves when they end.
    var isRetired = false
    /// A probe of a down server is under way.
    var isProbing = false
    /// When an idle server was last asked whether it is alive.
    var lastHeartbeat: UInt64 = 0
    /// Joined as starting and has not answered yet: its first answer means "started".
    var awaitsFirstAnswer = false
    /// Joined with a process this balancer started for it (see `isStarting`).
    var isLaunched = false
    /// That process exited before the first answer, and has not been started again yet.
    var hasExited = false
    /// Joined while it may still run a job it took before (its process was not started here),
    /// and not up yet: see `finishJoinCheck`.
    var joinCheck: JoinCheck?
  }

  /// Where the check of a server that joined stands.
  private enum JoinCheck: Equatable {
    /// Asked, no answer yet.
    case unanswered
    /// Still running a job it took before: asked again each second.
    case busy
    /// Idle, or it does not answer (`answered` false), when asked at `at`: up once no server
    /// listed before it awaits an answer. One found idle that waited longer than
    /// `joinCheckFreshness` for those is asked again first.
    case ready(answered: Bool, at: UInt64)
  }

  /// Nanoseconds an idle answer to a join check stays good while its server waits for the
  /// servers listed before it: past that, the server is asked again before it comes up, as it
  /// may have taken a job from a client meanwhile.
  public var joinCheckFreshness: UInt64 = 250_000_000

  /// Receives one line per change of membership or health.
  public var log: ((String) -> Void)?
  /// Called when a server leaves the pool for good.
  public var onRemoved: ((ServerAddress) -> Void)?

  private var members: [ServerAddress: Member] = [:]
  /// The servers in configuration order, retired ones last.
  public private(set) var servers: [ServerAddress] = [] {
    didSet { joinScanStart = 0 }
  }
  /// Where the scan for joining servers starts in `servers`: none before it awaits a join check
  /// (a server comes to await one only by a change of `servers`, which resets it, or by being
  /// asked again, which the scan never passes). Spares each join check's scan the servers
  /// already in.
  private var joinScanStart = 0
  /// A joining server was asked again (see `takeJoinChecksDue`).
  private var joinChecksDue = false
  /// The servers by port, local ones first, for reports (which name only a port).
  private var byPort: [Int: ServerAddress] = [:]

  /// Creates the pool with every server up, in the given order.
  public init(servers: [ServerAddress] = []) {
    for server in servers where members[server] == nil {
      members[server] = Member(health: .up)
      self.servers.append(server)
    }
    indexPorts()
  }

  /// The health of `server`, or nil if it is not in the pool.
  public func health(of server: ServerAddress) -> Health? { members[server]?.health }

  /// Whether `server` may be handed to a new client: in the pool, up, and not retired.
  public func canServe(_ server: ServerAddress) -> Bool {
    guard let member = members[server] else { return false }
    return member.health == .up && !member.isRetired
  }

  /// Where a server stands, for what to do with it once its leases have ended.
  public enum Standing: Sendable {
    /// In the pool, up and not retired: it may take a client.
    case serving
    /// Removed from the configuration: it leaves once its leases end.
    case retired
    /// Down, or not in the pool.
    case unavailable
  }

  /// Where `server` stands (one lookup: `canServe` and `isRetired` together).
  public func standing(of server: ServerAddress) -> Standing {
    guard let member = members[server] else { return .unavailable }
    if member.isRetired { return .retired }
    return member.health == .up ? .serving : .unavailable
  }

  /// Whether `server` was removed from the configuration and waits for its leases to end.
  public func isRetired(_ server: ServerAddress) -> Bool { members[server]?.isRetired ?? false }

  /// The servers that may be handed to new clients, in pool order.
  public var serving: [ServerAddress] { servers.filter(canServe) }

  /// The server a report names by port (local servers first), if it is in the pool.
  public func server(port: Int) -> ServerAddress? { byPort[port] }

  /// Marks a server down at once. Returns false if it was down already or is not in the pool.
  /// A server that failed a check (`failedCheck`) is probed after a second, then with
  /// back-off; one whose process exited is probed soon (its restart may be quick).
  @discardableResult
  public func markDown(
    _ server: ServerAddress, now: UInt64, failedCheck: Bool = false, reason: String = "down"
  ) -> Bool {
    guard var member = members[server], member.health == .up else { return false }
    member.health =
      failedCheck
      ? .down(since: now, nextProbe: now + 1_000_000_000, failures: 1)
      : .down(since: now, nextProbe: now + 200_000_000, failures: 0)
    member.isProbing = false
    members[server] = member
    log?("\(server): \(reason)")
    return true
  }

  /// Down servers due for a probe; each is marked as being probed.
  public func serversToProbe(now: UInt64) -> [ServerAddress] {
    var due: [ServerAddress] = []
    for server in servers {
      guard let member = members[server], case .down(_, let next, _) = member.health,
        !member.isProbing, next <= now
      else { continue }
      members[server]!.isProbing = true
      due.append(server)
    }
    return due
  }

  /// The outcome of probing a down server: any answer brings it back up (returns true); none
  /// backs off (1, 2, 4 … 30 seconds).
  public func finishProbe(of server: ServerAddress, result: CheckResult, now: UInt64) -> Bool {
    guard var member = members[server], case .down(let since, _, let failures) = member.health
    else { return false }
    if result == .inconclusive {
      keepDown(server, now: now)
      return false
    }
    member.isProbing = false
    if result == .unreachable {
      let delay = min(30.0, pow(2.0, Double(min(failures, 10))))
      member.health = .down(
        since: since, nextProbe: now + MonotonicClock.nanoseconds(delay), failures: failures + 1)
      members[server] = member
      return false
    }
    member.health = .up
    member.joinCheck = nil  // up: it holds nobody back
    let started = member.awaitsFirstAnswer
    member.awaitsFirstAnswer = false
    members[server] = member
    if started {
      log?("\(server): started, after \(Self.seconds(now - since)): in the pool")
    } else {
      log?("\(server): answers again after \(Self.seconds(now - since)) down: back in the pool")
    }
    return true
  }

  /// Takes `server` out of the join checks: it stays down and is probed as any down server, and
  /// holds nobody back. For a server with stranded leases, which are revoked there before it is
  /// handed out whatever the join check would say (see `ServerBroker.finishProbe`).
  public func skipJoinCheck(_ server: ServerAddress) { members[server]?.joinCheck = nil }

  /// Whether `server` joined with a process this balancer started for it, has not answered
  /// yet, and its process runs (one that exited is down until it is started again).
  public func isStarting(_ server: ServerAddress) -> Bool {
    members[server].map { $0.awaitsFirstAnswer && $0.isLaunched && !$0.hasExited } ?? false
  }

  /// The process of `server` exited: one that has not answered yet is down until its process
  /// is started again (see `isStarting`).
  public func processExited(_ server: ServerAddress) { noteProcess(of: server, exited: true) }

  /// The process of `server` was started again (after an exit): see `isStarting`.
  public func processStarted(_ server: ServerAddress) { noteProcess(of: server, exited: false) }

  private func noteProcess(of server: ServerAddress, exited: Bool) {
    guard members[server]?.awaitsFirstAnswer == true else { return }
    members[server]?.hasExited = exited
  }

  /// Whether `server` joined while it may still run an earlier job and is not up yet (see
  /// `reconfigure`): its checks go to `finishJoinCheck`.
  public func awaitsJoinCheck(_ server: ServerAddress) -> Bool {
    members[server]?.joinCheck != nil
  }

  /// The outcome of the check of a server that joined while it may still run an earlier job:
  /// busy keeps it down, asked again in a second; idle, or no answer, makes it ready. Ready
  /// servers come up in pool order, as a pool loaded at once would be queued: each waits for
  /// those listed before it whose check has not answered yet (a busy one holds nobody back),
  /// and one found idle that waited too long is asked again (see `joinReadyServers(now:)`).
  /// Returns the servers that came up, in order.
  public func finishJoinCheck(of server: ServerAddress, result: CheckResult, now: UInt64)
    -> [ServerAddress]
  {
    guard let check = members[server]?.joinCheck else { return [] }
    switch result {
    case .inconclusive:
      keepDown(server, now: now)
      return []
    case .busy:
      keepDown(server, now: now)
      members[server]!.joinCheck = .busy
      if check == .unanswered {
        log?("\(server): busy with a job: handed out once it is idle")
      }
    case .idle, .unreachable:
      // Not probed again while it waits for the servers before it.
      guard keepDown(server, probedAt: .max) else { return [] }
      members[server]!.joinCheck = .ready(answered: result == .idle, at: now)
    }
    return joinReadyServers(now: now)
  }

  /// Brings up, in pool order, the joining servers found ready that no server listed before
  /// them holds back (one whose check has not answered); returns them. A server found idle
  /// longer than `joinCheckFreshness` ago is asked again instead (it is due for a probe at
  /// `now`; see `takeJoinChecksDue`), and holds back those after it until it answers. Called after
  /// each join check, and after a change of the pool (a server that held others back may have
  /// left).
  public func joinReadyServers(now: UInt64) -> [ServerAddress] {
    var cameUp: [ServerAddress] = []
    var allInBefore = true
    var heldBack = false
    scan: for index in joinScanStart..<servers.count {
      let candidate = servers[index]
      switch members[candidate]?.joinCheck {
      case nil:
        break
      case .unanswered?:
        break scan
      case .busy?:
        allInBefore = false  // it holds nobody back, but is not in yet
      case .ready(let answered, let at)?:
        guard case .down = members[candidate]!.health else {
          members[candidate]!.joinCheck = nil  // up by other means: nothing left to join
          break
        }
        if answered && MonotonicClock.elapsed(from: at, to: now) > joinCheckFreshness {
          // Asked again: due for a probe now, and it holds back those after it until it answers.
          keepDown(candidate, probedAt: now)
          members[candidate]!.joinCheck = .unanswered
          joinChecksDue = true
          log?("\(candidate): idle when asked, but held back since: asked again")
          heldBack = true
          allInBefore = false
        } else if heldBack {
          allInBefore = false  // behind one asked again
        } else {
          members[candidate]!.health = .up
          members[candidate]!.joinCheck = nil
          cameUp.append(candidate)
          log?(
            answered
              ? "\(candidate): idle: in the pool"
              : "\(candidate): does not answer yet: in the pool as listed")
        }
      }
      if allInBefore { joinScanStart = index + 1 }
    }
    return cameUp
  }

  /// Whether `joinReadyServers(now:)` asked a server again since this was last read (the
  /// program then runs a round of probes at once); reading it resets it.
  public func takeJoinChecksDue() -> Bool {
    defer { joinChecksDue = false }
    return joinChecksDue
  }

  /// A down server whose probe told nothing, or that answered but may not take clients yet:
  /// it stays down and is probed again in a second, without back-off.
  public func keepDown(_ server: ServerAddress, now: UInt64) {
    keepDown(server, probedAt: now + 1_000_000_000)
  }

  /// A down server stays down, not being probed, its next probe at `time` (its back-off as it
  /// was). False if it is not down.
  @discardableResult
  private func keepDown(_ server: ServerAddress, probedAt time: UInt64) -> Bool {
    guard var member = members[server], case .down(let since, _, let failures) = member.health
    else { return false }
    member.health = .down(since: since, nextProbe: time, failures: failures)
    member.isProbing = false
    members[server] = member
    return true
  }

  /// Probes a down server soon (its process was just restarted), without waiting for back-off.
  public func probeSoon(_ server: ServerAddress, now: UInt64) {
    guard let member = members[server], case .down(let since, _, _) = member.health else { return }
    members[server]!.health = .down(since: since, nextProbe: now + 150_000_000, failures: 0)
  }

  /// Up servers for which `isIdle` holds and that were not asked for `interval` seconds
  /// whether they are alive; each is stamped.
  public func serversForHeartbeat(
    now: UInt64, interval: Double, isIdle: (ServerAddress) -> Bool
  ) -> [ServerAddress] {
    let period = MonotonicClock.nanoseconds(interval)
    var due: [ServerAddress] = []
    for server in servers {
      guard let member = members[server], member.health == .up, !member.isRetired,
        now >= member.lastHeartbeat + period, isIdle(server)
      else { continue }
      members[server]!.lastHeartbeat = now
      due.append(server)
    }
    return due
  }

  /// Applies a new configuration. Removed servers for which `isHeld` holds stay, retired, until
  /// `drop`; the others leave at once. New servers in `startingDown` join as down, to be probed
  /// from `now` on (a process just started is not listening yet); those in `launched` too have
  /// a process this balancer started for them (see `isStarting`). New servers in `checkedFirst`
  /// join as down too, to be checked at once: one still running a job it took before (from a
  /// balancer that was restarted) is handed out only once it is idle; one that does not answer,
  /// as soon as that is known, as listed.
  public func reconfigure(
    _ wanted: [ServerAddress], startingDown: Set<ServerAddress> = [],
    launched: Set<ServerAddress> = [], checkedFirst: Set<ServerAddress> = [], now: UInt64 = 0,
    isHeld: (ServerAddress) -> Bool
  ) -> Change {
    let wantedSet = Set(wanted)
    var change = Change()
    for server in servers where !wantedSet.contains(server) {
      guard let member = members[server], !member.isRetired else { continue }
      change.removed.append(server)
      if isHeld(server) {
        members[server]!.isRetired = true
        log?("\(server): removed from the configuration; leaves when its lease ends")
      } else {
        change.dropped.append(server)
      }
    }
    for server in wanted {
      if let member = members[server] {
        if member.isRetired {
          members[server]!.isRetired = false  // back in the configuration before it left
          change.added.append(server)
          if member.health == .up { change.joinedUp.append(server) }
          log?("\(server): back in the configuration")
        }
        continue
      }
      change.added.append(server)
      if startingDown.contains(server) {
        members[server] = Member(
          health: .down(since: now, nextProbe: now + 200_000_000, failures: 0),
          awaitsFirstAnswer: true, isLaunched: launched.contains(server))
        log?("\(server): added, starting")
      } else if checkedFirst.contains(server) {
        members[server] = Member(
          health: .down(since: now, nextProbe: now, failures: 0), joinCheck: .unanswered)
        log?("\(server): added; asked whether it is busy before it is handed out")
      } else {
        members[server] = Member(health: .up)
        change.joinedUp.append(server)
        log?("\(server): added")
      }
    }
    servers = wanted + servers.filter { !wantedSet.contains($0) && members[$0] != nil }
    for server in change.dropped { drop(server, reason: "removed from the configuration") }
    indexPorts()
    return change
  }

  /// Takes a server out of the pool for good (a retired server whose last lease ended, or one
  /// that was removed and does not answer).
  public func drop(_ server: ServerAddress, reason: String) {
    guard members.removeValue(forKey: server) != nil else { return }
    servers.removeAll { $0 == server }
    indexPorts()
    log?("\(server): \(reason)")
    onRemoved?(server)
  }

  private func indexPorts() {
    byPort.removeAll(keepingCapacity: true)
    for server in servers.reversed() where byPort[server.port] == nil || server.host == nil {
      byPort[server.port] = server
    }
  }

  /// A duration for the log, as `1.234 s`.
  public static func seconds(_ nanoseconds: UInt64) -> String {
    String(format: "%.3f s", Double(nanoseconds) / 1e9)
  }
}
