import HTTPCore

/// The redirect balancer's routes: hands each client the first free server with a one-time
/// lease, parks clients while none is free (first come, first served, for at most `waitTimeout`),
/// and takes servers back when they report with the matching lease.
///
/// Pure logic over `HTTPRequest` and `HTTPResponder`: it runs the same under an `HTTPServer` or in
/// a unit test with no sockets. Call it from one thread (the event loop's); times are monotonic
/// nanoseconds from `clock`.
public final class Balancer: HTTPHandler {
  /// The servers, their leases and the queue.
  public let pool: ServerPool
  /// The replicas by name, for /rep, /add and /rm.
  public let replicas: ReplicaManager
  /// With it, clients other than loopback may call /add and /rm with `Authorization: Bearer …`.
  public var adminToken: String?
  /// How servers are chosen: nil for the availability queue (wait for a free server); any other
  /// policy redirects at once and counts jobs in `jobs`.
  public var policy: RoutingPolicy?
  /// The jobs handed out under a policy other than the queue.
  public let jobs = JobLedger()
  /// Seconds a client may wait for a server before it gets 503.
  public var waitTimeout = 30.0
  /// How many clients may wait at once; more get 503 at once.
  public var maxWaiting = 10_000
  /// The host name used in redirects when a client sent no Host header (HTTP/1.0).
  public var fallbackHost = "localhost"
  /// Receives one line per request handled, when set.
  public var log: ((String) -> Void)?
  /// The current monotonic time in nanoseconds.
  public var clock: () -> UInt64 = MonotonicClock.now

  /// Clients in line, oldest first, with the time they give up; served ones are skipped lazily.
  private var line = Deque<
    (ticket: AvailabilityQueue<ServerAddress>.Ticket, deadline: UInt64, responder: HTTPResponder)
  >()
  private var isShuttingDown = false
  private var tokens = LeaseTokenSource()

  public init(pool: ServerPool, entries: [ServerEntry]? = nil) {
    self.pool = pool
    replicas = ReplicaManager(
      pool: pool, entries: entries ?? pool.servers.map { ServerEntry(address: $0) })
  }

  /// The number of clients waiting for a server.
  public var waitingCount: Int { pool.queue.waitingCount }

  public func handle(_ request: HTTPRequest, responder: HTTPResponder) {
    let path = request.path
    if path == "/" {
      guard request.method == "GET" || request.method == "HEAD" else {
        return respond(responder, request, methodNotAllowed(allow: "GET, HEAD"))
      }
      return redirect(request, responder)
    }
    if path.hasPrefix("/port_update/") {
      guard request.method == "GET" || request.method == "POST" else {
        return respond(responder, request, methodNotAllowed(allow: "GET, POST"))
      }
      return portUpdate(request, responder)
    }
    switch path {
    case "/add":
      return administer(request, responder, method: "POST", replicas.add(body:))
    case "/rm":
      return administer(request, responder, method: "DELETE", replicas.remove(body:))
    default:
      break
    }
    guard request.method == "GET" || request.method == "HEAD" else {
      return respond(responder, request, methodNotAllowed(allow: "GET, HEAD"))
    }
    switch path {
    case "/rep":
      respond(responder, request, replicas.replicas())
    case "/heartbeat":
      respond(responder, request, .text(.ok, "ok"))
    case "/health":
      let body =
        "{\"status\": \"ok\", \"free\": \(pool.queue.freeCount), \"waiting\": \(waitingCount), \"servers\": \(pool.servers.count)}"
      respond(responder, request, .json(.ok, body))
    case "/status":
      respond(
        responder, request,
        .json(
          .ok,
          pool.statusJSON(now: clock(), waiting: waitingCount, jobs: policy == nil ? nil : jobs)))
    case "/favicon.ico":
      respond(responder, request, .text(.notFound, "no icon here"))
    default:
      respond(
        responder, request,
        .text(.notFound, "unknown path \(path); ask GET / for a server"))
    }
  }

  /// Answers 503 to clients whose wait is over. Call periodically.
  public func expireWaiting(now: UInt64) {
    while let first = line.first, first.responder.isFinished || first.deadline <= now {
      _ = line.popFirst()
      guard !first.responder.isFinished, pool.queue.cancel(first.ticket) else { continue }
      first.responder.respond(unavailable("no server became free within \(Int(waitTimeout)) s"))
      log?("GET / 503 after waiting \(Int(waitTimeout)) s")
    }
  }

  /// Forgets jobs of the other policies that were never reported within the lease timeout.
  public func expireJobs(now: UInt64) {
    guard policy != nil else { return }
    let timeout = MonotonicClock.nanoseconds(pool.leaseTimeout)
    if now > timeout { jobs.expire(issuedBefore: now - timeout) }
  }

  /// Stops handing out servers: every waiting client gets 503, and so do new ones.
  public func shutDown() {
    isShuttingDown = true
    while let entry = line.popFirst() {
      guard !entry.responder.isFinished, pool.queue.cancel(entry.ticket) else { continue }
      entry.responder.respond(unavailable("the balancer is shutting down"))
    }
  }

  /// `GET /`: 302 to the first free server with a lease, or wait in line for one.
  private func redirect(_ request: HTTPRequest, _ responder: HTTPResponder) {
    let host = request.hostName ?? fallbackHost
    if isShuttingDown {
      return respond(responder, request, unavailable("the balancer is shutting down"))
    }
    if let policy, request.method != "HEAD" {
      return dispatch(request, responder, policy: policy, host: host)
    }
    if request.method == "HEAD" {
      // Nothing follows a HEAD, so it must not take a server.
      guard let server = pool.queue.peek() else {
        return respond(responder, request, unavailable("every server is busy"))
      }
      return respond(responder, request, .redirect(to: server.url(clientHost: host)))
    }
    if pool.queue.freeCount == 0 && waitingCount >= maxWaiting {
      return respond(responder, request, unavailable("too many clients are waiting"))
    }
    let result = pool.queue.take { [weak self] server in
      guard let self else { return false }
      let token = self.tokens.next()
      let target = self.location(server, host: host, query: request.query, token: token)
      guard responder.respond(.redirect(to: target)) else {
        return false  // the client left: the queue offers the server to the next one
      }
      self.pool.lease(server, token: token, now: self.clock())
      self.log?("\(request.method) \(request.target) 302 -> \(server) (after waiting)")
      return true
    }
    switch result {
    case .server(let server):
      send(request, responder, to: server, host: host) {
        pool.lease(server, token: $0, now: clock())
      }
    case .waiting(let ticket):
      line.append((ticket, clock() + MonotonicClock.nanoseconds(waitTimeout), responder))
      responder.onCancel = { [weak self] in
        self?.pool.queue.cancel(ticket)
        self?.log?("\(request.method) \(request.target) client left while waiting")
      }
    }
  }

  /// A policy other than the queue: redirect at once to the server it picks.
  private func dispatch(
    _ request: HTTPRequest, _ responder: HTTPResponder, policy: RoutingPolicy, host: String
  ) {
    let candidates = pool.servers.filter { pool.state(of: $0) == .free }
    let key = request.queryValue("key") ?? request.remoteAddress
    guard let server = policy.choose(from: candidates, key: key, inFlight: jobs.inFlight) else {
      return respond(responder, request, unavailable("no server is up"))
    }
    send(request, responder, to: server, host: host) { jobs.issue(server, token: $0, now: clock()) }
  }

  /// Redirects to `server` with a fresh token, which `record` enters in the books first.
  private func send(
    _ request: HTTPRequest, _ responder: HTTPResponder, to server: ServerAddress, host: String,
    record: (String) -> Void
  ) {
    let token = tokens.next()
    record(token)
    respond(
      responder, request,
      .redirect(to: location(server, host: host, query: request.query, token: token)),
      note: "-> \(server)")
  }

  /// The redirect for `server`: the client's own query carried over (so that it can choose its
  /// job, `?n=5000`), less any `lease` of its own, then the lease.
  private func location(_ server: ServerAddress, host: String, query: String?, token: String)
    -> String
  {
    var url = server.url(clientHost: host) + "?"
    if let query {
      for pair in query.split(separator: "&") where !pair.hasPrefix("lease=") && pair != "lease" {
        url += pair + "&"
      }
    }
    return url + "lease=" + token
  }

  /// `GET /port_update/<port>[?lease=<token>]`: the server's lease ends and it is free again.
  private func portUpdate(_ request: HTTPRequest, _ responder: HTTPResponder) {
    let text = request.path.dropFirst("/port_update/".count)
    guard let port = ServerAddress.parsePort(text) else {
      return respond(
        responder, request, .text(.badRequest, "'\(text)' is not a port number from 1 to 65535"))
    }
    let token = request.queryValue("lease")
    if policy != nil {
      guard let server = pool.server(port: port) else {
        return respond(responder, request, .text(.notFound, "port \(port) is not in the pool"))
      }
      guard jobs.report(server, token: token) else {
        return respond(
          responder, request,
          .text(.conflict, "\(server) has no such job (unknown or already reported)"))
      }
      return respond(responder, request, .text(.ok, "\(server) reported a job"))
    }
    let response: HTTPResponse
    switch pool.report(port: port, token: token, now: clock()) {
    case .released(let server):
      response = .text(.ok, "\(server) is free again")
    case .notInPool:
      response = .text(.notFound, "port \(port) is not in the pool")
    case .notLeased(let server):
      response = .text(
        .conflict, "\(server) holds no lease (it is free, down, or already reported)")
    case .wrongToken(let server):
      response = .text(.conflict, "that is not the lease \(server) holds")
    }
    respond(responder, request, response)
  }

  /// A request that changes the replicas: the right method, then the admin rule, then `change`.
  private func administer(
    _ request: HTTPRequest, _ responder: HTTPResponder, method: String,
    _ change: ([UInt8]) -> HTTPResponse
  ) {
    guard request.method == method else {
      return respond(responder, request, methodNotAllowed(allow: method))
    }
    respond(responder, request, adminRefusal(request) ?? change(request.body))
  }

  /// Why a request may not change the replicas, or nil if it may: loopback clients may; others
  /// only with the admin token.
  private func adminRefusal(_ request: HTTPRequest) -> HTTPResponse? {
    if request.isFromLoopback { return nil }
    if let adminToken, request.headers["Authorization"] == "Bearer \(adminToken)" { return nil }
    let reason =
      adminToken == nil
      ? "only clients on the balancer's machine may change the replicas"
      : "changing the replicas needs Authorization: Bearer <admin token>"
    return .json(.forbidden, "{\"message\": \"<Error> \(reason)\", \"status\": \"failure\"}")
  }

  private func unavailable(_ reason: String) -> HTTPResponse {
    var response = HTTPResponse.text(.serviceUnavailable, reason)
    response.headers.add("Retry-After", "1")
    return response
  }

  private func methodNotAllowed(allow: String) -> HTTPResponse {
    var response = HTTPResponse.text(.methodNotAllowed, "method not allowed here; use \(allow)")
    response.headers.add("Allow", allow)
    return response
  }

  private func respond(
    _ responder: HTTPResponder, _ request: HTTPRequest, _ response: HTTPResponse, note: String = ""
  ) {
    responder.respond(response)
    log?(
      "\(request.method) \(request.target) \(response.status.code)\(note.isEmpty ? "" : " " + note)"
    )
  }
}
