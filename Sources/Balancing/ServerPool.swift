import Foundation
import HTTPCore

/// Every server of the pool and its state — free, leased or down — with the FIFO queue of free
/// ones, and counters that must always add up: leased = reported + expired + in flight.
///
/// The pool never loses a server and never hands one out twice: a server enters the queue only
/// from a state that is not free (a matched report, an expired lease, a probe after going down,
/// or being added), and a down or removed server is never in it. Times are monotonic
/// nanoseconds passed in by the caller, so tests control the clock. Call from one thread.
public final class ServerPool {
  /// Where a server stands.
  public enum State: Equatable {
    case free
    case leased(Lease)
    /// Not answering since `since`; probed again at `nextProbe`.
    case down(since: UInt64, nextProbe: UInt64, failures: Int)
  }

  /// What a report did.
  public enum ReportOutcome: Equatable {
    /// The lease ended; the server is free again (or gone, if it was removed meanwhile).
    case released(ServerAddress)
    /// No server of the pool has that port.
    case notInPool
    /// The server holds no lease (it is free or down), or its lease was reported already.
    case notLeased(ServerAddress)
    /// The token is not the one of the outstanding lease.
    case wrongToken(ServerAddress)
  }

  /// What a health check of a leased or down server found.
  public enum CheckResult: Sendable {
    case idle, busy, unreachable
  }

  private struct Record {
    var state: State
    /// Leases served since the server joined.
    var leaseCount = 0
    /// Removed from the configuration while leased: it is dropped when the lease ends.
    var isRetired = false
    /// A probe of a down server is under way.
    var isProbing = false
    /// When a free server was last asked whether it is alive.
    var lastHeartbeat: UInt64 = 0
  }

  /// The free servers, oldest first, and the requests waiting for one.
  public let queue = AvailabilityQueue<ServerAddress>()
  /// Seconds a lease lasts before the server is asked whether it is still busy.
  public var leaseTimeout: Double
  /// Receives one line per state change.
  public var log: ((String) -> Void)?
  /// Called when a server leaves the pool for good (removed, and its lease ended).
  public var onRemoved: ((ServerAddress) -> Void)?
  /// Whether the routine changes (a lease reported, the server free again) are logged too, or
  /// only the unusual ones (expiry, down, back, added, removed).
  public var logsRoutineChanges = true

  private var records: [ServerAddress: Record] = [:]
  /// The servers by port, local ones first, for reports (which name only a port).
  private var byPort: [Int: ServerAddress] = [:]
  /// The servers in configuration order (retired ones last), for status.
  private var order: [ServerAddress] = []
  public private(set) var leasesIssued = 0
  public private(set) var leasesReported = 0
  public private(set) var leasesExpired = 0

  /// Creates the pool with every server free, in the given order.
  public init(servers: [ServerAddress], leaseTimeout: Double = 60) {
    self.leaseTimeout = leaseTimeout
    for server in servers where records[server] == nil {
      records[server] = Record(state: .free)
      order.append(server)
      queue.put(server)
    }
    indexPorts()
  }

  private func indexPorts() {
    byPort.removeAll(keepingCapacity: true)
    for server in order.reversed() where byPort[server.port] == nil || server.host == nil {
      byPort[server.port] = server
    }
  }

  /// The servers currently in the pool (configured, plus retired ones still leased).
  public var servers: [ServerAddress] { order }
  /// The leases outstanding.
  public var leasesInFlight: Int {
    records.values.filter { if case .leased = $0.state { return true } else { return false } }.count
  }

  /// The server a report names by port (local servers first), if it is in the pool.
  public func server(port: Int) -> ServerAddress? { byPort[port] }

  /// How many leases `server` has served since it joined (0 if it is not in the pool).
  public func leaseCount(of server: ServerAddress) -> Int { records[server]?.leaseCount ?? 0 }

  /// The state of `server`, or nil if it is not in the pool.
  public func state(of server: ServerAddress) -> State? { records[server]?.state }

  /// Records that `server`, just taken from the queue, was handed to a client with `token`.
  public func lease(_ server: ServerAddress, token: String, now: UInt64) {
    guard var record = records[server] else { return }
    precondition(record.state == .free, "leasing \(server), which is not free")
    record.state = .leased(
      Lease(
        token: token, server: server, issued: now,
        deadline: now + MonotonicClock.nanoseconds(leaseTimeout)))
    record.leaseCount += 1
    records[server] = record
    leasesIssued += 1
  }

  /// A server reports it is done: `/port_update/<port>[?lease=<token>]`.
  public func report(port: Int, token: String?, now: UInt64) -> ReportOutcome {
    guard
      let server = order.first(where: { $0.port == port && $0.host == nil })
        ?? order.first(where: { $0.port == port })
    else { return .notInPool }
    guard case .leased(let lease) = records[server]!.state else { return .notLeased(server) }
    if let token, token != lease.token { return .wrongToken(server) }
    leasesReported += 1
    endLease(server, reason: "reported after \(Self.seconds(now - lease.issued))", routine: true)
    return .released(server)
  }

  /// Leases past their deadline that are not being checked yet; each is marked as being checked.
  public func leasesToCheck(now: UInt64) -> [Lease] {
    var due: [Lease] = []
    for server in order {
      guard case .leased(var lease) = records[server]!.state, !lease.isBeingChecked,
        lease.deadline <= now
      else { continue }
      lease.isBeingChecked = true
      records[server]!.state = .leased(lease)
      due.append(lease)
    }
    return due
  }

  /// The outcome of checking an overdue lease: idle → free again; busy → extended; no answer →
  /// down. Ignored if that lease has ended meanwhile (the report came after all).
  public func finishCheck(of lease: Lease, result: CheckResult, now: UInt64) {
    guard let record = records[lease.server], case .leased(var current) = record.state,
      current.token == lease.token
    else { return }
    switch result {
    case .busy:
      current.isBeingChecked = false
      current.extensions += 1
      current.deadline = now + MonotonicClock.nanoseconds(leaseTimeout)
      records[lease.server]!.state = .leased(current)
      log?(
        "\(lease.server): lease unreported for \(Self.seconds(now - lease.issued)), server busy: extended"
      )
    case .idle:
      leasesExpired += 1
      endLease(lease.server, reason: "lease expired unreported, server idle")
    case .unreachable:
      leasesExpired += 1
      if record.isRetired {
        drop(lease.server, reason: "lease expired and the removed server does not answer")
      } else {
        records[lease.server]!.state = .down(
          since: now, nextProbe: now + 1_000_000_000, failures: 1)
        log?("\(lease.server): leased server does not answer: down")
      }
    }
  }

  /// Down servers due for a probe; each is marked as being probed.
  public func serversToProbe(now: UInt64) -> [ServerAddress] {
    var due: [ServerAddress] = []
    for server in order {
      guard let record = records[server], case .down(_, let next, _) = record.state,
        !record.isProbing, next <= now
      else { continue }
      records[server]!.isProbing = true
      due.append(server)
    }
    return due
  }

  /// Free servers not asked for `interval` seconds whether they are alive; each is stamped.
  public func serversForHeartbeat(now: UInt64, interval: Double) -> [ServerAddress] {
    let period = MonotonicClock.nanoseconds(interval)
    var due: [ServerAddress] = []
    for server in order {
      guard let record = records[server], record.state == .free,
        now >= record.lastHeartbeat + period
      else { continue }
      records[server]!.lastHeartbeat = now
      due.append(server)
    }
    return due
  }

  /// The outcome of a heartbeat: a free server that does not answer is taken out of the queue.
  public func finishHeartbeat(of server: ServerAddress, result: CheckResult, now: UInt64) {
    guard result == .unreachable, let record = records[server], record.state == .free else {
      return
    }
    markDown(server, now: now)
  }

  /// The outcome of probing a down server: any answer brings it back to the queue; none backs
  /// off (1, 2, 4 … 30 seconds).
  public func finishProbe(of server: ServerAddress, result: CheckResult, now: UInt64) {
    guard var record = records[server], case .down(let since, _, let failures) = record.state else {
      return
    }
    record.isProbing = false
    if result == .unreachable {
      let delay = min(30.0, pow(2.0, Double(min(failures, 10))))
      record.state = .down(
        since: since, nextProbe: now + MonotonicClock.nanoseconds(delay), failures: failures + 1)
      records[server] = record
      return
    }
    record.state = .free
    records[server] = record
    log?("\(server): answers again after \(Self.seconds(now - since)) down: back in the queue")
    queue.put(server)
  }

  /// Probes a down server soon (its process was just restarted), without waiting for back-off.
  public func probeSoon(_ server: ServerAddress, now: UInt64) {
    guard let record = records[server], case .down(let since, _, _) = record.state else { return }
    records[server]!.state = .down(since: since, nextProbe: now + 150_000_000, failures: 0)
  }

  /// Marks a free or leased server down at once (for example, its process was seen to exit).
  public func markDown(_ server: ServerAddress, now: UInt64) {
    guard let record = records[server] else { return }
    switch record.state {
    case .down: return
    case .free: queue.remove(server)
    case .leased:
      leasesExpired += 1
    }
    records[server]!.state = .down(since: now, nextProbe: now + 200_000_000, failures: 0)
    records[server]!.isProbing = false
    log?("\(server): down")
  }

  /// Applies a new configuration: added servers join the queue; removed ones are never handed
  /// out again (a leased one stays until its lease ends, and its report is accepted). New
  /// servers in `startingDown` join as down, to be probed from `now` on (a process just started
  /// is not listening yet).
  public func reconfigure(
    _ servers: [ServerAddress], startingDown: Set<ServerAddress> = [], now: UInt64 = 0
  ) -> (added: [ServerAddress], removed: [ServerAddress]) {
    let wanted = Set(servers)
    var added: [ServerAddress] = []
    var removed: [ServerAddress] = []
    for server in order where !wanted.contains(server) {
      guard let record = records[server], !record.isRetired else { continue }
      removed.append(server)
      switch record.state {
      case .free:
        queue.remove(server)
        drop(server, reason: "removed from the configuration")
      case .down:
        drop(server, reason: "removed from the configuration")
      case .leased:
        records[server]!.isRetired = true
        log?("\(server): removed from the configuration; leaves when its lease ends")
      }
    }
    for server in servers {
      if let record = records[server] {
        if record.isRetired {
          records[server]!.isRetired = false  // back in the configuration before its lease ended
          added.append(server)
          log?("\(server): back in the configuration")
        }
        continue
      }
      added.append(server)
      if startingDown.contains(server) {
        records[server] = Record(
          state: .down(since: now, nextProbe: now + 200_000_000, failures: 0))
        log?("\(server): added, starting")
      } else {
        records[server] = Record(state: .free)
        log?("\(server): added")
        queue.put(server)
      }
    }
    order = servers + order.filter { !wanted.contains($0) && records[$0] != nil }
    indexPorts()
    return (added, removed)
  }

  /// The pool as JSON for `GET /status`.
  /// With `jobs` (the policies that do not wait), each server shows its jobs in flight and the
  /// totals are the jobs'.
  public func statusJSON(now: UInt64, waiting: Int, jobs: JobLedger? = nil) -> String {
    let wallNow = Date()
    var entries: [String] = []
    for server in order {
      guard let record = records[server] else { continue }
      var fields = ["\"server\": \"\(server)\""]
      switch record.state {
      case .free:
        fields.append("\"state\": \"free\"")
      case .leased(let lease):
        fields.append("\"state\": \"leased\"")
        fields.append("\"lease_age\": \(Self.secondsValue(now - lease.issued))")
        fields.append("\"lease_extensions\": \(lease.extensions)")
      case .down(let since, _, _):
        let downFor = Self.secondsValue(now - since)
        let date = wallNow.addingTimeInterval(-Double(now - since) / 1e9)
        fields.append("\"state\": \"down\"")
        fields.append("\"down_since\": \"\(ISO8601DateFormatter().string(from: date))\"")
        fields.append("\"down_for\": \(downFor)")
      }
      fields.append("\"leases\": \(record.leaseCount)")
      if let jobs { fields.append("\"jobs_in_flight\": \(jobs.inFlight(server))") }
      if record.isRetired { fields.append("\"removed\": true") }
      entries.append("{" + fields.joined(separator: ", ") + "}")
    }
    return """
      {"servers": [\(entries.joined(separator: ", "))], \
      "queue": [\(queue.freeServers.map { "\"\($0)\"" }.joined(separator: ", "))], "free": \(queue.freeCount), \
      "waiting": \(waiting), "totals": {"leased": \(jobs?.issued ?? leasesIssued), \
      "reported": \(jobs?.reported ?? leasesReported), "expired": \(jobs?.expired ?? leasesExpired), \
      "in_flight": \(jobs?.totalInFlight ?? leasesInFlight)}}
      """
  }

  private func endLease(
    _ server: ServerAddress, reason: @autoclosure () -> String, routine: Bool = false
  ) {
    if records[server]!.isRetired {
      drop(server, reason: reason() + "; removed from the pool")
      return
    }
    records[server]!.state = .free
    if let log, !routine || logsRoutineChanges { log("\(server): \(reason()): free") }
    queue.put(server)
  }

  private func drop(_ server: ServerAddress, reason: String) {
    records[server] = nil
    order.removeAll { $0 == server }
    indexPorts()
    log?("\(server): \(reason)")
    onRemoved?(server)
  }

  static func secondsValue(_ nanoseconds: UInt64) -> String {
    String(format: "%.3f", Double(nanoseconds) / 1e9)
  }

  static func seconds(_ nanoseconds: UInt64) -> String { secondsValue(nanoseconds) + " s" }
}
