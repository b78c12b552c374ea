import Documents
import HTTPCore
import Metrics

/// The redirect balancer's routes: `GET /` asks the `ServerBroker` for a server and answers 302
/// with the lease (or 503); `/port_update/<port>` reports a lease; `/rep`, `/add`, `/rm` manage
/// the replicas; `/health` and `/status` show the pool.
///
/// Pure logic over `HTTPRequest` and `HTTPResponder`: it runs the same under an `HTTPServer` or in
/// a unit test with no sockets. Call it from one thread (the event loop's).
public final class Balancer: HTTPHandler {
  /// The servers, their leases and the dispatcher.
  public let broker: ServerBroker
  /// The replicas by name, for /rep, /add and /rm.
  public let replicas: ReplicaManager
  /// With it, clients other than loopback may call /add and /rm with `Authorization: Bearer …`.
  public var adminToken: String?
  /// The host name used in redirects when a client sent no Host header (HTTP/1.0).
  public var fallbackHost = "localhost"
  /// Receives one line per request handled, when set.
  public var log: ((String) -> Void)?
  /// What `GET /metrics` shows.
  public let metrics: BalancerMetrics
  /// The last minute and the recent changes, for `GET /dashboard`.
  public let history = DashboardHistory()

  public init(broker: ServerBroker, entries: [ServerEntry]? = nil) {
    self.broker = broker
    metrics = BalancerMetrics(broker: broker)
    replicas = ReplicaManager(
      broker: broker, entries: entries ?? broker.pool.servers.map { ServerEntry(address: $0) })
  }

  public func handle(_ request: HTTPRequest, responder: HTTPResponder) {
    // The two routes of every cycle are told apart on the path's bytes: no Character is formed.
    let path = request.pathView
    if path.utf8.count == 1 && path.utf8.first == UInt8(ascii: "/") {
      guard request.method == "GET" || request.method == "HEAD" else {
        return respond(responder, request, methodNotAllowed(allow: "GET, HEAD"))
      }
      return redirect(request, responder)
    }
    if Self.hasPrefix(path, Self.reportPrefix) {
      guard request.method == "GET" || request.method == "POST" else {
        return respond(responder, request, methodNotAllowed(allow: "GET, POST"))
      }
      return portUpdate(
        request, responder,
        port: Substring(path.utf8.dropFirst(Self.reportPrefix.utf8CodeUnitCount)))
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
      respond(responder, request, .json(.ok, broker.health.encoded()))
    case "/status":
      respond(responder, request, .json(.ok, broker.status(now: broker.clock()).encoded()))
    case "/dashboard":
      respond(
        responder, request,
        HTTPResponse(
          status: .ok, headers: HTTPHeaders([("Content-Type", "text/html; charset=utf-8")]),
          body: Array(DashboardPage.html.utf8)))
    case "/dashboard/data":
      let now = broker.clock()
      respond(
        responder, request,
        .json(.ok, history.data(status: broker.status(now: now), now: now).encoded()))
    case "/metrics":
      respond(
        responder, request,
        HTTPResponse(
          status: .ok, headers: HTTPHeaders([("Content-Type", MetricsRegistry.contentType)]),
          body: metrics.render()))
    case "/favicon.ico":
      respond(responder, request, .text(.notFound, "no icon here"))
    default:
      respond(
        responder, request,
        .text(.notFound, "unknown path \(path); ask GET / for a server"))
    }
  }

  private static let reportPrefix: StaticString = "/port_update/"

  /// Whether `path` starts with `prefix`, compared as bytes.
  private static func hasPrefix(_ path: Substring, _ prefix: StaticString) -> Bool {
    prefix.withUTF8Buffer { prefix in
      path.utf8.withContiguousStorageIfAvailable { $0.starts(with: prefix) }
        ?? path.utf8.starts(with: prefix)
    }
  }

  /// `GET /`: 302 to a server with a lease, now or once one is free; `HEAD /` names the server a
  /// GET would get now, in the redirect a GET would get but for the lease, and takes none.
  private func redirect(_ request: HTTPRequest, _ responder: HTTPResponder) {
    let host = request.hostName ?? fallbackHost
    // `?key=` only where it picks the server (consistent hashing), percent-decoded: `a%20b` and
    // `a b` are one key.
    var key: String?
    if broker.dispatcher.usesKeys {
      do { key = try request.decodedQueryValue("key") } catch {
        return respond(responder, request, .text(.badRequest, error.description))
      }
    }
    if request.method == "HEAD" {
      let key = ServerClaim.key(key, of: request.remoteAddress)
      guard !broker.isShuttingDown, let server = broker.dispatcher.preview(key: key) else {
        return respond(responder, request, unavailable("every server is busy"))
      }
      return respond(
        responder, request,
        Self.redirect(to: server, lease: nil, host: host, target: request.target))
    }
    // One object per request, the claim with what its answer needs; the responder's cancel
    // closure captures only it, so it needs no context of its own. The claim holds the balancer
    // strongly, and is let go once the request is answered or cancelled.
    let claim = RedirectClaim(
      request, key: key, host: host, arrived: broker.clock(), responder: responder, balancer: self)
    responder.onCancel = { claim.clientLeft() }
    broker.request(claim)
  }

  /// Answers a claim of `GET /`: the redirect with its lease, 503 or 429.
  func answer(_ claim: RedirectClaim, with answer: ClaimAnswer, waited: Bool) -> Bool {
    let (method, target, host, responder) = (
      claim.method, claim.target, claim.host, claim.responder
    )
    switch answer {
    case .lease(let lease):
      let wait = lease.issued > claim.arrived ? lease.issued - claim.arrived : 0
      metrics.observeWait(nanoseconds: wait)
      history.recordWait(nanoseconds: wait, now: lease.issued)
      return send(
        responder, method: method, target: target,
        Self.redirect(to: lease.server, lease: lease.token, host: host, target: target),
        note: "-> \(lease.server) lease \(lease.token.prefix(8))…"
          + (waited ? " (after waiting)" : ""))
    case .unavailable(let reason):
      return send(responder, method: method, target: target, unavailable(reason))
    case .tooManyLeases(let reason):
      var response = HTTPResponse.text(.tooManyRequests, reason)
      response.headers.add("Retry-After", "\(max(1, Int(broker.issuer.claimTimeout)))")
      return send(responder, method: method, target: target, response)
    }
  }

  /// The `302` to `server`, with its Location written in place (see `appendLocation`).
  private static func redirect(
    to server: ServerAddress, lease token: String?, host: String, target: String
  ) -> HTTPResponse {
    var headers = HTTPHeaders()
    headers.add(
      "Location", capacity: host.utf8.count + target.utf8.count + (token?.utf8.count ?? 0) + 40
    ) { appendLocation(server, lease: token, host: host, target: target, to: &$0) }
    return HTTPResponse(status: .found, headers: headers)
  }

  /// Appends the redirect to `server`: the client's own query carried over (so that it can
  /// choose its job, `?n=5000`), less any `lease` of its own and empty pairs, then the lease
  /// `token`, if any. Built as bytes: every redirect comes through here.
  private static func appendLocation(
    _ server: ServerAddress, lease token: String?, host: String, target: String,
    to bytes: inout [UInt8]
  ) {
    server.appendURL(clientHost: host, to: &bytes)
    var separator = UInt8(ascii: "?")
    var target = target
    target.withUTF8 { target in
      guard let mark = target.firstIndex(of: UInt8(ascii: "?")) else { return }
      HTTPRequest.forEachQueryPair(UnsafeBufferPointer(rebasing: target[(mark + 1)...])) { pair in
        if !pair.isEmpty && !isLease(pair) {
          bytes.append(separator)
          bytes.append(contentsOf: pair)
          separator = UInt8(ascii: "&")
        }
        return true
      }
    }
    guard var token else { return }
    bytes.append(separator)
    ("lease=" as StaticString).withUTF8Buffer { bytes.append(contentsOf: $0) }
    token.withUTF8 { bytes.append(contentsOf: $0) }
  }

  /// Whether a query pair is `lease=…` or a bare `lease`.
  private static func isLease(_ pair: UnsafeBufferPointer<UInt8>) -> Bool {
    pair.starts(with: "lease=".utf8) || pair.elementsEqual("lease".utf8)
  }

  /// `GET /port_update/<port>[?lease=<token>]`: the server's lease ends.
  private func portUpdate(_ request: HTTPRequest, _ responder: HTTPResponder, port text: Substring)
  {
    guard let port = ServerAddress.parsePort(text) else {
      return respond(
        responder, request, .text(.badRequest, "'\(text)' is not a port number from 1 to 65535"))
    }
    // Percent-decoded, then compared exactly with the tokens issued.
    let token: String?
    do { token = try request.decodedQueryValue("lease") } catch {
      return respond(responder, request, .text(.badRequest, error.description))
    }
    // With the in-process ledger the report is settled at once, and no closure is built.
    if let outcome = broker.reportAtOnce(port: port, token: token) {
      return answerReport(outcome, request, responder)
    }
    broker.report(port: port, token: token, source: request.remoteAddress) {
      [self] outcome in
      self.answerReport(outcome, request, responder)
    }
  }

  /// Answers a report with what it did.
  private func answerReport(
    _ outcome: ReportOutcome, _ request: HTTPRequest, _ responder: HTTPResponder
  ) {
    let response: HTTPResponse
    switch outcome {
    case .released(let lease):
      let now = broker.clock()
      metrics.observeJob(lease.server, nanoseconds: lease.age(at: now))
      history.recordJob(now: now)
      // A factorial server only needs to know that the report was taken (it asks with
      // `Prefer: return=minimal`): a 204 is the least for it to read.
      response =
        request.prefersMinimalReturn
        ? HTTPResponse(status: .noContent) : .text(.ok, bytes: Self.reported(lease.server))
    case .notInPool(let port):
      response = .text(.notFound, "port \(port) is not in the pool")
    case .notLeased(let server):
      response = .text(
        .conflict, "\(server) holds no lease (it is free, down, or already reported)")
    case .wrongToken(let port):
      response = .text(
        .conflict, "no server on port \(port) holds that lease (unknown, or already ended)")
    case .leaseRequired(let server):
      response = .text(
        .conflict, "\(server) reports with leases: a report without one is not accepted")
    case .foreignSource(let port, let source):
      response = .text(
        .forbidden,
        "a report without a lease is accepted only from the server's own address, not \(source)"
          + " (port \(port))")
    case .storeUnavailable(let reason):
      response = unavailable(reason)
    }
    respond(responder, request, response)
  }

  /// `<server> reported its lease`, a line built as bytes: every report taken is answered so,
  /// but those that ask for a minimal return (a 204).
  private static func reported(_ server: ServerAddress) -> [UInt8] {
    var body: [UInt8] = []
    body.reserveCapacity((server.host?.utf8.count ?? 0) + 26)
    server.appendDescription(to: &body)
    (" reported its lease\n" as StaticString).withUTF8Buffer { body.append(contentsOf: $0) }
    return body
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
    if let adminToken, let given = request.headers["Authorization"].flatMap(Self.bearerToken),
      Self.equalInConstantTime(given, adminToken)
    {
      return nil
    }
    let reason =
      adminToken == nil
      ? "only clients on the balancer's machine may change the replicas"
      : "changing the replicas needs Authorization: Bearer <admin token>"
    return .json(.forbidden, ReplicasFailure("<Error> \(reason)").encoded())
  }

  /// The token of an `Authorization: Bearer <token>` value (the scheme's name in any case,
  /// RFC 9110 §11.1), or nil for another scheme.
  static func bearerToken(_ value: String) -> Substring? {
    let parts = value.split(separator: " ", maxSplits: 1)
    guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
    let token = parts[1].drop { $0 == " " }
    return token.isEmpty ? nil : token
  }

  /// Whether two tokens are equal, in a time that does not tell how much of them matched.
  static func equalInConstantTime(_ given: Substring, _ expected: String) -> Bool {
    var difference = given.utf8.count ^ expected.utf8.count
    var others = expected.utf8.makeIterator()
    for byte in given.utf8 { difference |= Int(byte ^ (others.next() ?? 0)) }
    return difference == 0
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
    _ responder: HTTPResponder, _ request: HTTPRequest, _ response: HTTPResponse,
    note: @autoclosure () -> String = ""
  ) {
    send(responder, request, response, note: note())
  }

  /// Answers and logs; returns false if the client was gone.
  @discardableResult
  private func send(
    _ responder: HTTPResponder, _ request: HTTPRequest, _ response: HTTPResponse,
    note: @autoclosure () -> String = ""
  ) -> Bool {
    send(responder, method: request.method, target: request.target, response, note: note())
  }

  /// Answers and logs the request `method target`; returns false if the client was gone.
  @discardableResult
  private func send(
    _ responder: HTTPResponder, method: String, target: String, _ response: HTTPResponse,
    note: @autoclosure () -> String = ""
  ) -> Bool {
    let delivered = responder.respond(response)
    metrics.countAnswer(response.status.code)
    if let log {
      let note = note()
      log("\(method) \(target) \(response.status.code)\(note.isEmpty ? "" : " " + note)")
    }
    return delivered
  }
}
