import Glibc

/// An HTTP/1.1 server on an `EventLoop`: accepts connections and hands their requests to a handler.
///
/// Connections are kept alive, requests may be pipelined, and every connection is bounded in time:
/// an incomplete request must arrive within `requestTimeout`, an idle keep-alive connection is
/// closed after `idleTimeout`, and a client that stops reading is dropped after `writeTimeout`.
/// A connection whose request is parked by the handler is left alone: the handler owns its wait.
public final class HTTPServer: EventHandler {
  /// Where to listen and how patient to be.
  public struct Configuration: Sendable {
    public var host = "0.0.0.0"
    public var port = 0
    public var limits = HTTPLimits()
    /// Seconds an incomplete request may take to arrive (slow clients get 408).
    public var requestTimeout = 10.0
    /// Seconds a keep-alive connection may sit idle between requests.
    public var idleTimeout = 60.0
    /// Seconds a response may make no progress because its client does not read it.
    public var writeTimeout = 30.0
    /// The largest body a request may carry, by method and path; nil for `limits.maxBodyBytes`
    /// everywhere. A route that takes no body should say 0: a client sending one gets 413.
    public var bodyLimit: (@Sendable (_ method: String, _ path: String) -> Int)?
    /// The most client connections at once; more are answered 503 and closed at once. The
    /// default keeps a quarter of the open-file limit (at least 32 descriptors) for the
    /// program's own sockets: health probes, reports, logs.
    public var maxConnections = HTTPServer.defaultMaxConnections()

    public init(host: String = "0.0.0.0", port: Int = 0) {
      self.host = host
      self.port = port
    }
  }

  public let loop: EventLoop
  public let configuration: Configuration
  /// The port actually bound (useful with port 0).
  public let port: Int
  /// The numeric address actually bound ("0.0.0.0", "::", "127.0.0.1"): a host name given in
  /// the configuration is resolved once, here.
  public let address: String
  private let handler: HTTPHandler
  private var listener: Int32
  private var connections: [Int32: HTTPConnection] = [:]
  private var sweepTimer: TimerID?
  /// Scratch space every connection of this loop reads into.
  let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)

  /// Binds the listening socket. Call `start()` to begin accepting.
  public init(loop: EventLoop, configuration: Configuration, handler: HTTPHandler) throws {
    self.loop = loop
    self.configuration = configuration
    self.handler = handler
    listener = try Socket.listen(host: configuration.host, port: configuration.port)
    port = Socket.localPort(listener)
    address = Socket.localAddress(listener)
  }

  deinit { readBuffer.deallocate() }

  /// The number of open client connections.
  public var connectionCount: Int { connections.count }
  /// Connections refused because `maxConnections` were open.
  public private(set) var refusedConnections = 0

  /// Starts accepting connections and enforcing timeouts.
  public func start() throws {
    try loop.register(listener, interest: .readable, handler: self)
    let period = max(
      0.05,
      min(
        1.0, configuration.requestTimeout / 4, configuration.idleTimeout / 4,
        configuration.writeTimeout / 4))
    sweepTimer = loop.schedule(every: period) { [weak self] in self?.sweep() }
  }

  /// Stops accepting new connections; open ones carry on.
  public func stopAccepting() {
    guard listener >= 0 else { return }
    loop.unregister(listener)
    close(listener)
    listener = -1
  }

  /// Closes every connection (parked requests are cancelled) and stops the timeouts.
  public func closeAllConnections() {
    for connection in Array(connections.values) { connection.close() }
    if let sweepTimer { loop.cancel(sweepTimer) }
    sweepTimer = nil
  }

  /// Closes connections with nothing left to write; others close once their response is out.
  public func closeWhenIdle() {
    for connection in Array(connections.values) { connection.closeWhenIdle() }
  }

  public func handleEvent(_ readiness: Readiness) {
    while listener >= 0 {
      let (fd, error) = Socket.accept(listener)
      if fd < 0 {
        if error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM {
          pauseAccepting()
        }
        return
      }
      if connections.count >= configuration.maxConnections {
        refuse(fd)
        continue
      }
      Socket.setNoDelay(fd)
      let connection = HTTPConnection(fd: fd, server: self, handler: handler)
      do {
        try loop.register(
          fd, interest: HTTPConnection.interest, handler: connection, edgeTriggered: true)
        connections[fd] = connection
      } catch {
        close(fd)
      }
    }
  }

  /// The connections limit a server uses by default, from the process's open-file limit.
  public static func defaultMaxConnections() -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max
    else { return 1 << 20 }
    let descriptors = Int(limit.rlim_cur)
    return max(1, descriptors - max(32, descriptors / 4))
  }

  /// Too many connections: a short 503 and the connection closes at once, so the descriptors
  /// kept in reserve stay free.
  private func refuse(_ fd: Int32) {
    refusedConnections += 1
    _ = Self.tooManyConnections.withUnsafeBytes {
      send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
    }
    close(fd)
  }

  private static let tooManyConnections = Array(
    ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
      + "Retry-After: 1\r\nConnection: close\r\nContent-Length: 27\r\n\r\n"
      + "too many connections, retry").utf8)

  /// Out of file descriptors: stop accepting for a moment rather than spin on the listener.
  private func pauseAccepting() {
    loop.setInterest(listener, [])
    loop.schedule(after: 0.1) { [weak self] in
      guard let self, self.listener >= 0 else { return }
      self.loop.setInterest(self.listener, .readable)
    }
  }

  func connectionDidClose(_ connection: HTTPConnection) {
    connections[connection.fd] = nil
  }

  private func sweep() {
    let now = loop.now
    for connection in Array(connections.values) {
      connection.enforceTimeouts(now: now, configuration: configuration)
    }
  }
}
