import Glibc
import HTTPCore

/// A pipelined RESP2 client for one Redis server, on an `EventLoop`.
///
/// Commands are queued in order; every command sent during one turn of the loop goes out in one
/// write, many may be in flight, and replies are matched to them in order. The connection opens
/// at the first command (or `connect()`) and is reopened with back-off (`initialBackoff`
/// doubling to `maxBackoff`) whenever it drops, until `close()`:
///
/// - a command not yet (fully) written when the connection drops is sent again after
///   reconnecting: Redis cannot have run it;
/// - a command written but unanswered fails with `RedisError.connectionLost`: it may or may not
///   have run, and the caller decides whether to repeat it;
/// - a command waiting for a connection fails with `RedisError.unavailable` after
///   `unavailableTimeout`, and once Redis has been unreachable that long new commands fail at
///   once (so callers can answer 503) while reconnection goes on in the background;
/// - with a `replyTimeout`, a connection whose oldest command has waited that long for its reply
///   is taken for hung (a stopped Redis, a partition without a reset: the socket stays open) and
///   dropped: the commands written fail as above, and those not yet written, or not whole, fail
///   with `RedisError.unavailable`, rather than wait for good.
///
/// Use it from the loop's thread only. Completions run on the loop, never inside `send` or
/// `close` and never while the connection is part-way through an update, so they may send or
/// close freely. A blocking command (BLPOP) holds up the commands behind it: give it its own
/// connection.
public final class RedisConnection: EventHandler {
  /// Receives the reply (error replies as `RedisError.server`), or why there is none.
  public typealias Completion = (Result<RESPValue, RedisError>) -> Void

  /// Where Redis is, and how long to wait for it.
  public struct Configuration: Sendable {
    /// A name or an IP address; names are resolved (blocking) at each connection attempt.
    public var host: String
    public var port: Int
    /// Seconds a command may wait for a connection before failing with `.unavailable`.
    public var unavailableTimeout = 5.0
    /// Seconds a connection attempt may take before it counts as failed.
    public var connectTimeout = 2.0
    /// Seconds a written command may wait for its reply before the connection is dropped as
    /// hung; nil (the default) for no limit. Must exceed any blocking command's own timeout.
    public var replyTimeout: Double?
    /// The first delay before reconnecting; it doubles after each failed attempt.
    public var initialBackoff = 0.05
    /// The longest delay between connection attempts.
    public var maxBackoff = 2.0
    /// Bounds on replies; one beyond them drops the connection.
    public var parserLimits = RESPParser.Limits()

    public init(host: String = "127.0.0.1", port: Int = 6379) {
      self.host = host
      self.port = port
    }
  }

  private typealias Delivery = (completion: Completion, result: Result<RESPValue, RedisError>)

  private struct Pending {
    let bytes: [UInt8]
    let completion: Completion
    /// When it started waiting for a connection (monotonic nanoseconds).
    var waitingSince: UInt64
    /// Where its bytes end in the stream written to the current connection.
    var end: UInt64 = 0
    /// When it was handed to the current connection's output (monotonic nanoseconds).
    var writtenAt: UInt64 = 0
  }

  private enum State { case idle, connecting, connected, backingOff, closed }

  public let loop: EventLoop
  public let configuration: Configuration
  /// Called on the loop each time a connection is established, before the commands that waited
  /// for it are written; commands it sends go first (SCRIPT LOAD, CLIENT SETNAME, SUBSCRIBE…).
  public var onConnect: ((RedisConnection) -> Void)?

  private var state = State.idle
  private var fd: Int32 = -1
  /// Bumped whenever a connection ends, so that timers from its time do nothing.
  private var generation: UInt64 = 0
  /// Commands not yet written to the current connection, oldest first.
  private var queued: [Pending] = []
  /// During `onConnect`: where its commands go in `queued`, ahead of those that waited.
  private var hookInsertIndex: Int?
  /// Commands written (or being written) and awaiting replies: `inFlight[inFlightHead...]`.
  private var inFlight: [Pending] = []
  private var inFlightHead = 0
  private var output: [UInt8] = []
  private var outputStart = 0
  private var bytesAppended: UInt64 = 0
  private var bytesWritten: UInt64 = 0
  private var watchingWrites = false
  private var input: [UInt8] = []
  private var inputStart = 0
  private var parser: RESPParser
  private var chunk = [UInt8](repeating: 0, count: 65536)
  private var backoff: Double
  /// Since when no connection could be made (nil while connected or before the first attempt).
  private var downSince: UInt64?
  private var lastError = "not connected yet"
  private var flushTimer: TimerID?
  private var connectTimer: TimerID?
  private var reconnectTimer: TimerID?
  private var unavailableTimer: TimerID?
  /// Armed while commands await replies and `replyTimeout` is set.
  private var replyTimer: TimerID?

  /// A connection to `configuration.host:port`; nothing happens until the first command or
  /// `connect()`.
  public init(loop: EventLoop, configuration: Configuration) {
    self.loop = loop
    self.configuration = configuration
    parser = RESPParser(limits: configuration.parserLimits)
    backoff = configuration.initialBackoff
  }

  /// A connection to `host:port` with the default timeouts.
  public convenience init(loop: EventLoop, host: String, port: Int) {
    self.init(loop: loop, configuration: Configuration(host: host, port: port))
  }

  /// Whether a connection is established now.
  public var isConnected: Bool { state == .connected }

  /// Commands sent and not yet completed.
  public var pendingCount: Int { queued.count + inFlight.count - inFlightHead }

  /// Starts connecting now rather than at the first command (and keeps reconnecting).
  public func connect() {
    if state == .idle { openConnection() }
  }

  /// Sends a command given as text arguments, such as `["SET", "key", "value"]`.
  public func send(_ command: [String], completion: @escaping Completion) {
    send(command.map { Array($0.utf8) }, completion: completion)
  }

  /// Sends a command given as binary-safe arguments.
  public func send(_ command: [[UInt8]], completion: @escaping Completion) {
    if command.isEmpty { return deliverLater([(completion, .failure(.emptyCommand))]) }
    if state == .closed { return deliverLater([(completion, .failure(.closed))]) }
    let now = MonotonicClock.now()
    if state != .connected, let downSince,
      now - downSince >= MonotonicClock.nanoseconds(configuration.unavailableTimeout)
    {
      return deliverLater([(completion, .failure(unavailable()))])
    }
    let pending = Pending(
      bytes: RESPEncoder.command(command), completion: completion, waitingSince: now)
    if state == .connected {
      if let index = hookInsertIndex {
        queued.insert(pending, at: index)
        hookInsertIndex = index + 1
      } else {
        queued.append(pending)
      }
      scheduleFlush()
    } else {
      queued.append(pending)
      armUnavailableTimer()
      if state == .idle { openConnection() }
    }
  }

  /// Closes the connection for good: every pending command fails with `.closed` (one already
  /// written may have run), as does every later one.
  public func close() {
    guard state != .closed else { return }
    let pending = Array(inFlight[inFlightHead...]) + queued
    disconnect()
    state = .closed
    inFlight.removeAll()
    inFlightHead = 0
    queued.removeAll()
    for timer in [reconnectTimer, unavailableTimer].compactMap({ $0 }) { loop.cancel(timer) }
    reconnectTimer = nil
    unavailableTimer = nil
    onConnect = nil
    deliverLater(pending.map { ($0.completion, .failure(.closed)) })
  }

  // MARK: - Connecting

  private func openConnection() {
    state = .connecting
    do {
      let address = try SocketAddress(host: configuration.host, port: configuration.port)
      fd = try Socket.connect(to: address)
      try loop.register(fd, interest: .writable, handler: self)
    } catch {
      connectionFailed("\(error)")
      return
    }
    let generation = self.generation
    connectTimer = loop.schedule(after: configuration.connectTimeout) { [weak self] in
      guard let self, self.generation == generation, self.state == .connecting else { return }
      self.connectTimer = nil
      self.connectionFailed("connect timed out after \(self.configuration.connectTimeout) s")
    }
  }

  /// A connection attempt failed: try again after the back-off.
  private func connectionFailed(_ reason: String) {
    disconnect()
    noteDown(reason)
    scheduleReconnect()
  }

  private func noteDown(_ reason: String) {
    lastError = "\(configuration.host):\(configuration.port): \(reason)"
    if downSince == nil { downSince = MonotonicClock.now() }
  }

  private func scheduleReconnect() {
    state = .backingOff
    let delay = backoff
    backoff = min(backoff * 2, configuration.maxBackoff)
    reconnectTimer = loop.schedule(after: delay) { [weak self] in
      guard let self, self.state == .backingOff else { return }
      self.reconnectTimer = nil
      self.openConnection()
    }
  }

  private func connectionEstablished() {
    if let connectTimer { loop.cancel(connectTimer) }
    connectTimer = nil
    state = .connected
    backoff = configuration.initialBackoff
    downSince = nil
    if let unavailableTimer { loop.cancel(unavailableTimer) }
    unavailableTimer = nil
    loop.setInterest(fd, .readable)
    if let onConnect {
      let generation = self.generation
      hookInsertIndex = 0
      onConnect(self)
      hookInsertIndex = nil
      // The hook may have closed the connection.
      guard self.generation == generation, state == .connected else { return }
    }
    deliver(writeQueued())
  }

  // MARK: - Events

  /// Called by the loop when the socket is ready (`EventHandler`); not for callers.
  public func handleEvent(_ readiness: Readiness) {
    switch state {
    case .connecting:
      let error = Socket.pendingError(fd)
      if error != 0 {
        connectionFailed(String(cString: strerror(error)))
      } else if Self.isEstablished(fd) {
        connectionEstablished()
      }  // else: a stale event; the connect is still in progress
    case .connected:
      // Replies first: a failed write may be the server closing after answering.
      var deliveries: [Delivery] = []
      if !readiness.isDisjoint(with: [.readable, .peerClosed, .hangup, .error]) {
        deliveries += readAvailable()
      }
      if state == .connected && readiness.contains(.writable) { deliveries += flush() }
      deliver(deliveries)
    case .idle, .backingOff, .closed:
      break
    }
  }

  private static func isEstablished(_ fd: Int32) -> Bool {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    return withUnsafeMutablePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) == 0 }
    }
  }

  // MARK: - Writing

  /// Writes at the end of this turn of the loop, so that commands sent together share a write.
  private func scheduleFlush() {
    guard flushTimer == nil else { return }
    let generation = self.generation
    flushTimer = loop.schedule(after: 0) { [weak self] in
      guard let self, self.generation == generation else { return }
      self.flushTimer = nil
      self.deliver(self.writeQueued())
    }
  }

  /// Moves the queued commands to the output buffer and writes what the socket takes.
  private func writeQueued() -> [Delivery] {
    if let flushTimer { loop.cancel(flushTimer) }
    flushTimer = nil
    guard state == .connected, !queued.isEmpty else { return [] }
    if outputStart == output.count {
      output.removeAll(keepingCapacity: true)
      outputStart = 0
    }
    let now = configuration.replyTimeout == nil ? 0 : MonotonicClock.now()  // read if needed
    for var pending in queued {
      output.append(contentsOf: pending.bytes)
      bytesAppended += UInt64(pending.bytes.count)
      pending.end = bytesAppended
      pending.writtenAt = now
      inFlight.append(pending)
    }
    queued.removeAll(keepingCapacity: true)
    armReplyTimer()
    return flush()
  }

  /// Drops the connection once its oldest command has waited `replyTimeout` for a reply.
  private func armReplyTimer() {
    guard replyTimer == nil, let timeout = configuration.replyTimeout,
      inFlightHead < inFlight.count
    else { return }
    let deadline = inFlight[inFlightHead].writtenAt &+ MonotonicClock.nanoseconds(timeout)
    let now = MonotonicClock.now()
    let generation = self.generation
    replyTimer = loop.schedule(after: deadline > now ? Double(deadline - now) / 1e9 : 0) {
      [weak self] in
      guard let self, self.generation == generation else { return }
      self.replyTimer = nil
      guard self.state == .connected, self.inFlightHead < self.inFlight.count else { return }
      self.replyTimerFired(timeout: timeout)
    }
  }

  /// The oldest command may have waited `timeout` for its reply: unless its reply is waiting
  /// unread (this process was paused, or the loop busy, while Redis answered), the connection is
  /// taken for hung and dropped.
  private func replyTimerFired(timeout: Double) {
    var deliveries = readAvailable()
    if state == .connected, inFlightHead < inFlight.count {
      let waited = MonotonicClock.now() &- inFlight[inFlightHead].writtenAt
      if waited >= MonotonicClock.nanoseconds(timeout) {
        deliveries += connectionDropped("no reply within \(timeout) s", failUnsent: true)
      } else {
        armReplyTimer()
      }
    }
    deliver(deliveries)
  }

  private func flush() -> [Delivery] {
    while outputStart < output.count {
      let written = output.withUnsafeBytes {
        Glibc.send(fd, $0.baseAddress! + outputStart, $0.count - outputStart, Int32(MSG_NOSIGNAL))
      }
      if written > 0 {
        outputStart += written
        bytesWritten += UInt64(written)
      } else if written < 0 && errno == EINTR {
        continue
      } else if written < 0 && errno == EAGAIN {
        if !watchingWrites {
          watchingWrites = true
          loop.setInterest(fd, [.readable, .writable])
        }
        return []
      } else {
        return connectionDropped(String(cString: strerror(errno)))
      }
    }
    output.removeAll(keepingCapacity: output.capacity <= 1 << 20)
    outputStart = 0
    if watchingWrites {
      watchingWrites = false
      loop.setInterest(fd, .readable)
    }
    return []
  }

  // MARK: - Reading

  private func readAvailable() -> [Delivery] {
    var closedReason: String?
    // A bounded number of reads per event keeps the loop fair; epoll reports the rest again.
    let end = chunk.withUnsafeMutableBytes {
      Socket.readAvailable(fd, into: &input, scratch: $0, maxReads: 16)
    }
    switch end {
    case .drained: break
    case .endOfStream: closedReason = "connection closed by the server"
    case .failed(let code): closedReason = String(cString: strerror(code))
    }
    // Replies that arrived with the close are answers all the same: take them first.
    var deliveries: [Delivery] = []
    parsing: while true {
      let result = input.withUnsafeBytes {
        parser.parse(UnsafeRawBufferPointer(rebasing: $0[inputStart...]))
      }
      switch result {
      case .needMore:
        break parsing
      case .failed(let error):
        closedReason = "invalid reply: \(error)"
        break parsing
      case .complete(let value, let consumed):
        inputStart += consumed
        guard inFlightHead < inFlight.count else {
          closedReason = "a reply with no command waiting for it: \(value)"
          break parsing
        }
        let pending = inFlight[inFlightHead]
        inFlightHead += 1
        if case .error(let message) = value {
          deliveries.append((pending.completion, .failure(.server(message))))
        } else {
          deliveries.append((pending.completion, .success(value)))
        }
      }
    }
    compactBuffers()
    if let closedReason { deliveries += connectionDropped(closedReason) }
    return deliveries
  }

  private func compactBuffers() {
    if inputStart == input.count {
      input.removeAll(keepingCapacity: input.capacity <= 1 << 20)
      inputStart = 0
    } else if inputStart >= 65536 && inputStart * 2 >= input.count {
      input.removeFirst(inputStart)
      inputStart = 0
    }
    if inFlightHead == inFlight.count {
      inFlight.removeAll(keepingCapacity: true)
      inFlightHead = 0
    } else if inFlightHead >= 1024 && inFlightHead * 2 >= inFlight.count {
      inFlight.removeFirst(inFlightHead)
      inFlightHead = 0
    }
  }

  // MARK: - Losing the connection

  /// An established connection ended: requeue what Redis cannot have run, fail what it may
  /// have run, and reconnect after the back-off. A connection dropped as hung (`failUnsent`)
  /// fails what Redis cannot have run too (`unavailable`), rather than send it on to a server
  /// that may hang again: behind a full socket buffer it would never be sent, and wait for good.
  private func connectionDropped(_ reason: String, failUnsent: Bool = false) -> [Delivery] {
    let written = bytesWritten
    let unanswered = inFlight[inFlightHead...]
    inFlight.removeAll()
    inFlightHead = 0
    disconnect()
    let now = MonotonicClock.now()
    var lost: [Delivery] = []
    var unsent: [Pending] = []
    for var pending in unanswered {
      if pending.end <= written {
        lost.append((pending.completion, .failure(.connectionLost(reason))))
      } else {
        pending.waitingSince = now
        unsent.append(pending)
      }
    }
    if failUnsent {
      let unavailable = RedisError.unavailable(
        "\(configuration.host):\(configuration.port): \(reason)")
      lost += (unsent + queued).map { ($0.completion, .failure(unavailable)) }
      unsent.removeAll()
      queued.removeAll()
    }
    queued = unsent + queued
    noteDown(reason)
    scheduleReconnect()
    armUnavailableTimer()
    return lost
  }

  /// Closes the socket and forgets everything about it (not the commands).
  private func disconnect() {
    if fd >= 0 {
      loop.unregister(fd)
      Glibc.close(fd)
      fd = -1
    }
    for timer in [connectTimer, flushTimer, replyTimer].compactMap({ $0 }) { loop.cancel(timer) }
    connectTimer = nil
    flushTimer = nil
    replyTimer = nil
    generation += 1
    output.removeAll()
    outputStart = 0
    bytesAppended = 0
    bytesWritten = 0
    watchingWrites = false
    input.removeAll()
    inputStart = 0
    parser.reset()
    if state != .closed { state = .idle }
  }

  // MARK: - Waiting for a connection

  private func unavailable() -> RedisError {
    .unavailable("no connection within \(configuration.unavailableTimeout) s (\(lastError))")
  }

  /// Fails queued commands once they have waited `unavailableTimeout` for a connection.
  private func armUnavailableTimer() {
    guard unavailableTimer == nil, let oldest = queued.lazy.map(\.waitingSince).min() else {
      return
    }
    let deadline = oldest + MonotonicClock.nanoseconds(configuration.unavailableTimeout)
    let now = MonotonicClock.now()
    let delay = deadline > now ? Double(deadline - now) / 1e9 : 0
    unavailableTimer = loop.schedule(after: delay) { [weak self] in
      guard let self else { return }
      self.unavailableTimer = nil
      guard self.state != .connected, self.state != .closed else { return }
      let limit = MonotonicClock.nanoseconds(self.configuration.unavailableTimeout)
      let now = MonotonicClock.now()
      var expired: [Delivery] = []
      var waiting: [Pending] = []
      for pending in self.queued {
        if now - pending.waitingSince >= limit {
          expired.append((pending.completion, .failure(self.unavailable())))
        } else {
          waiting.append(pending)
        }
      }
      self.queued = waiting
      self.armUnavailableTimer()
      self.deliver(expired)
    }
  }

  // MARK: - Completions

  /// Calls completions, in order; the connection's state is settled before this is called.
  private func deliver(_ deliveries: [Delivery]) {
    for delivery in deliveries { delivery.completion(delivery.result) }
  }

  /// Calls completions on a later turn of the loop (for `send` and `close`).
  private func deliverLater(_ deliveries: [Delivery]) {
    guard !deliveries.isEmpty else { return }
    loop.schedule(after: 0) { for delivery in deliveries { delivery.completion(delivery.result) } }
  }
}
