import Glibc

/// A keep-alive HTTP/1.1 client to one server, on an `EventLoop`.
///
/// Requests go out one at a time, in order, over one connection that is reopened when it drops
/// (for example when the server restarts). A request that fails for want of a connection is
/// retried with back-off for up to `retryWindow` seconds, so it should be safe to repeat.
public final class HTTPClient: EventHandler {
  /// Why a request got no response.
  public enum Failure: Error, CustomStringConvertible {
    case unreachable(String)
    case protocolError(String)
    /// This process could not even try: out of descriptors or memory for a socket. Says nothing
    /// about the server.
    case localResources(String)

    public var description: String {
      switch self {
      case .unreachable(let reason): return "unreachable: \(reason)"
      case .protocolError(let reason): return "bad response: \(reason)"
      case .localResources(let reason): return "no socket here: \(reason)"
      }
    }
  }

  /// Receives the response, or why there is none.
  public typealias Completion = (Result<HTTPClientResponse, Failure>) -> Void

  private struct Pending {
    let bytes: [UInt8]
    /// A HEAD request: its answer has no body, whatever its Content-Length says.
    let isHead: Bool
    let completion: Completion
    let id: UInt64
    let firstTried: UInt64
    var attempts = 0
  }

  private enum State { case disconnected, connecting, connected }

  public let loop: EventLoop
  public let host: String
  public let port: Int
  /// Seconds a request keeps being retried before it fails.
  public var retryWindow = 30.0
  /// Seconds the oldest request may wait for its response, retries included; nil for no limit.
  public var requestTimeout: Double?
  /// When set, answers are collected lazily: after writing a request the client does not watch
  /// its connection for the answer but reads it when the next request is sent, or once this
  /// many seconds have passed, whichever comes first (and at once if the server closes the
  /// connection). A steady stream of requests then costs no wake-up per answer, at the price of
  /// hearing each answer later. Nil (the default): every answer is read as soon as it arrives.
  public var lazyAnswerWindow: Double?
  /// Whether the client is awake for the in-flight request's answer: always unless answers are
  /// collected lazily, and then only once the answer was looked for and was not there yet.
  private var awaitsAnswer = false
  /// When the in-flight request was written (loop time), for the lazy collection.
  private var writtenAt: UInt64 = 0
  /// The timer that collects a lazily read answer, while one is armed.
  private var collectTimer: TimerID?
  /// What the connection is watched for now.
  private var watched: Readiness = []
  private var timeoutTimer: TimerID?
  private var nextID: UInt64 = 0
  private var fd: Int32 = -1
  private var state = State.disconnected
  private var queue: [Pending] = []
  private var inFlight = false
  private var output: [UInt8] = []
  private var input: [UInt8] = []
  private var parser = HTTPResponseParser()
  private var chunk = [UInt8](repeating: 0, count: 16384)
  private var retryTimer: TimerID?
  /// Whether the socket is watched for writability (only while a write waits for room).
  private var isWatchingWrites = false
  /// What follows the path in every request: the version, the Host field and the client's
  /// own fields, built once.
  private let headAfterPath: [UInt8]

  /// - Parameter fields: sent with every request, after Host (each request may add its own).
  public init(loop: EventLoop, host: String, port: Int, fields: HTTPHeaders = HTTPHeaders()) {
    self.loop = loop
    self.host = host
    self.port = port
    precondition(
      !fields.contains { ($0.name + $0.value).contains(where: \.isNewline) },
      "a field with a line break")
    var head = Array(" HTTP/1.1\r\nHost: \(HTTPHeaders.hostValue(host, port: port))\r\n".utf8)
    fields.append(to: &head)
    headAfterPath = head
  }

  /// Sends a request; `completion` runs on the loop with the response or the final failure.
  public func send(
    method: String = "GET", path: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [],
    completion: @escaping Completion
  ) {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(
      method.utf8.count + path.utf8.count + headAfterPath.count + headers.wireByteBound + 3
        + body.count)
    var method = method
    var path = path
    method.withUTF8 { bytes.append(contentsOf: $0) }
    bytes.append(UInt8(ascii: " "))
    path.withUTF8 { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: headAfterPath)
    headers.append(to: &bytes)
    if !body.isEmpty || method == "POST" || method == "PUT" {
      bytes.append(contentsOf: "Content-Length: \(body.count)\r\n".utf8)
    }
    bytes.append(UInt8(ascii: "\r"))
    bytes.append(UInt8(ascii: "\n"))
    bytes.append(contentsOf: body)
    nextID += 1
    queue.append(
      Pending(
        bytes: bytes, isHead: method == "HEAD", completion: completion, id: nextID,
        firstTried: MonotonicClock.now()))
    pump()
  }

  /// Drops the connection and fails every pending request.
  public func shutdown() {
    if let retryTimer { loop.cancel(retryTimer) }
    retryTimer = nil
    if let timeoutTimer { loop.cancel(timeoutTimer) }
    timeoutTimer = nil
    if let collectTimer { loop.cancel(collectTimer) }
    collectTimer = nil
    disconnect()
    let failed = queue
    queue.removeAll()
    for request in failed { request.completion(.failure(.unreachable("client shut down"))) }
  }

  private func pump() {
    guard !queue.isEmpty else { return }
    if timeoutTimer == nil, let requestTimeout { startTimeout(requestTimeout) }
    if inFlight, lazyAnswerWindow != nil, !awaitsAnswer {
      // The answer to the request before may be here already: read it, and the next request
      // goes out at once (`readAvailable` pumps again); if it is not, wait awake for it.
      return collectAnswer()
    }
    guard !inFlight, retryTimer == nil else { return }
    switch state {
    case .disconnected: connect()
    case .connecting: break
    case .connected:
      inFlight = true
      // Lazily only while nothing waits behind this request.
      awaitsAnswer = lazyAnswerWindow == nil || queue.count > 1
      writtenAt = loop.now
      queue[0].attempts += 1
      output = queue[0].bytes
      flush()
      guard let lazyAnswerWindow, inFlight else { return }
      updateInterest()
      if collectTimer == nil { armCollectTimer(lazyAnswerWindow) }
    }
  }

  /// Reads the in-flight request's answer if it has arrived; if it has not, watches the
  /// connection for it from now on.
  private func collectAnswer() {
    let awaited = queue.first?.id
    readAvailable()
    // (If the answer was read, the next request may be in flight already: not this one.)
    if inFlight, queue.first?.id == awaited, !awaitsAnswer, fd >= 0, state == .connected {
      awaitsAnswer = true
      updateInterest()
    }
  }

  /// Collects the in-flight answer once it is `seconds` old.
  private func armCollectTimer(_ seconds: Double) {
    let due = writtenAt &+ MonotonicClock.nanoseconds(seconds)
    let delay = due > loop.now ? Double(due - loop.now) / 1e9 : 0
    collectTimer = loop.schedule(after: delay) { [weak self] in
      guard let self else { return }
      self.collectTimer = nil
      guard self.inFlight, !self.awaitsAnswer, let window = self.lazyAnswerWindow else { return }
      // A newer request went out since the timer was set: its answer has time yet.
      if self.loop.now &- self.writtenAt < MonotonicClock.nanoseconds(window) {
        return self.armCollectTimer(window)
      }
      self.collectAnswer()
    }
  }

  /// Watches the connection for what it waits for: room to write while a write is held up, and
  /// an answer unless it is collected lazily.
  private func updateInterest() {
    guard fd >= 0, state == .connected else { return }
    var wanted: Readiness = isWatchingWrites ? .writable : []
    if lazyAnswerWindow == nil || awaitsAnswer { wanted.insert(.readable) }
    if wanted != watched {
      watched = wanted
      loop.setInterest(fd, wanted)
    }
  }

  /// Fails the oldest request if it is still unanswered after `seconds`.
  private func startTimeout(_ seconds: Double) {
    let oldest = queue[0].id
    timeoutTimer = loop.schedule(after: seconds) { [weak self] in
      guard let self else { return }
      self.timeoutTimer = nil
      guard let first = self.queue.first, first.id == oldest else { return self.pump() }
      self.disconnect()
      if let retryTimer = self.retryTimer { self.loop.cancel(retryTimer) }
      self.retryTimer = nil
      self.queue.removeFirst()
      first.completion(
        .failure(.unreachable("no answer from \(self.host):\(self.port) within \(seconds) s")))
      self.pump()
    }
  }

  private func completeOldest(_ result: Result<HTTPClientResponse, Failure>) {
    let request = queue.removeFirst()
    if let timeoutTimer { loop.cancel(timeoutTimer) }
    timeoutTimer = nil
    request.completion(result)
  }

  private func connect() {
    do {
      let address = try SocketAddress(host: host, port: port)
      fd = try Socket.connect(to: address)
      try loop.register(fd, interest: .writable, handler: self)
      watched = .writable
      state = .connecting
    } catch {
      if fd >= 0 { close(fd) }
      fd = -1
      if case SocketError.system("socket", let code) = error,
        [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(code)
      {
        return connectionFailed("\(error)", local: true)
      }
      connectionFailed("\(error)")
    }
  }

  public func handleEvent(_ readiness: Readiness) {
    if state == .connecting {
      let error = Socket.pendingError(fd)
      guard error == 0 else {
        connectionFailed(String(cString: strerror(error)))
        return
      }
      state = .connected
      isWatchingWrites = false
      updateInterest()
      pump()
      return
    }
    if readiness.contains(.writable) { flush() }
    if !readiness.isDisjoint(with: [.readable, .peerClosed, .hangup, .error]) { readAvailable() }
  }

  private func flush() {
    while !output.isEmpty {
      let written = output.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      if written == output.count {
        // All of it, as usual: let go of the bytes, which the queued request still shares
        // (removing them from a shared array would first copy it).
        output = []
      } else if written > 0 {
        output.removeFirst(written)
      } else if written < 0 && (errno == EAGAIN || errno == EINTR) {
        if !isWatchingWrites {
          isWatchingWrites = true
          updateInterest()
        }
        return
      } else {
        connectionFailed(String(cString: strerror(errno)))
        return
      }
    }
    // Only a change of interest costs a system call; a request written at once needs none.
    if isWatchingWrites {
      isWatchingWrites = false
      updateInterest()
    }
  }

  private func readAvailable() {
    var closedReason: String?
    let end = chunk.withUnsafeMutableBytes { Socket.readAvailable(fd, into: &input, scratch: $0) }
    switch end {
    case .drained: break
    case .endOfStream: closedReason = "connection closed by the server"
    case .failed(let code): closedReason = String(cString: strerror(code))
    }
    // The close ends a body sent without Content-Length.
    let atEnd = end == .endOfStream
    // A response and the close after it often arrive together: read the response first.
    if inFlight {
      let expectBody = queue.first?.isHead != true
      var result = input.withUnsafeBytes {
        parser.parse($0, expectBody: expectBody, atEnd: atEnd)
      }
      // An interim answer (1xx) is not the answer (RFC 9110 §15.2): taken for it, every later
      // request would be matched to its predecessor's answer.
      while case .complete(let interim, let consumed) = result, interim.statusCode < 200 {
        input.removeFirst(consumed)
        result = input.withUnsafeBytes { parser.parse($0, expectBody: expectBody, atEnd: atEnd) }
      }
      switch result {
      case .needMore:
        break
      case .failed(let error):
        inFlight = false
        disconnect()
        completeOldest(.failure(.protocolError(error.message)))
        pump()
        return
      case .complete(var response, let consumed):
        input.removeFirst(consumed)
        inFlight = false
        if awaitsAnswer, lazyAnswerWindow != nil {
          awaitsAnswer = false
          updateInterest()
        }
        if closedReason != nil || !response.keepAlive {
          disconnect()
          closedReason = nil
        }
        completeOldest(.success(response))
        parser.recycle(&response.headers)
        pump()
      }
    }
    if let closedReason, fd >= 0 {
      if inFlight {
        connectionFailed(closedReason)
      } else {
        disconnect()
        pump()
      }
    }
  }

  private func disconnect() {
    if fd >= 0 {
      loop.unregister(fd)
      close(fd)
    }
    fd = -1
    state = .disconnected
    isWatchingWrites = false
    watched = []
    awaitsAnswer = false
    inFlight = false
    input.removeAll()
    output.removeAll()
    parser = HTTPResponseParser()
  }

  /// The connection failed: retry the oldest request after a back-off, or give it up.
  private func connectionFailed(_ reason: String, local: Bool = false) {
    disconnect()
    guard let oldest = queue.first else { return }
    if MonotonicClock.now() - oldest.firstTried >= MonotonicClock.nanoseconds(retryWindow) {
      completeOldest(
        .failure(
          local ? .localResources(reason) : .unreachable("\(host):\(port): \(reason)")))
      pump()
      return
    }
    let delay = min(2.0, 0.05 * Double(1 << min(oldest.attempts, 6)))
    queue[0].attempts += 1
    retryTimer = loop.schedule(after: delay) { [weak self] in
      self?.retryTimer = nil
      self?.pump()
    }
  }
}
