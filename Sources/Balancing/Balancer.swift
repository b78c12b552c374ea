import HTTPCore

/// The redirect balancer's routes: hands each client the first free server, parks clients while
/// none is free, and takes servers back when they report.
///
/// Pure logic over `HTTPRequest` and `HTTPResponder`: it runs the same under an `HTTPServer` or
/// in a unit test with no sockets. Call it from one thread (the event loop's).
public final class Balancer: HTTPHandler {
  /// The free servers and the clients waiting for one.
  public let queue: AvailabilityQueue<ServerAddress>
  /// Every server of the pool, free or busy.
  public private(set) var servers: [ServerAddress]
  /// The host name used in redirects when a client sent no Host header (HTTP/1.0).
  public var fallbackHost = "localhost"
  /// Receives one line per request handled, when set.
  public var log: ((String) -> Void)?

  public init(servers: [ServerAddress]) {
    self.servers = servers
    queue = AvailabilityQueue(servers)
  }

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
    case "/health":
      guard request.method == "GET" || request.method == "HEAD" else {
        return respond(responder, request, methodNotAllowed(allow: "GET, HEAD"))
      }
      let body =
        "{\"status\": \"ok\", \"free\": \(queue.freeCount), \"waiting\": \(queue.waitingCount), \"servers\": \(servers.count)}"
      respond(responder, request, .json(.ok, body))
    case "/favicon.ico":
      respond(responder, request, .text(.notFound, "no icon here"))
    default:
      respond(responder, request, .text(.notFound, "unknown path \(path); ask GET / for a server"))
    }
  }

  /// `GET /`: 302 to the first free server, or wait in line for one.
  private func redirect(_ request: HTTPRequest, _ responder: HTTPResponder) {
    let host = request.hostName ?? fallbackHost
    if request.method == "HEAD" {
      // Nothing follows a HEAD, so it must not take a server.
      guard let server = queue.peek() else {
        var busy = HTTPResponse.text(.serviceUnavailable, "every server is busy")
        busy.headers.add("Retry-After", "1")
        return respond(responder, request, busy)
      }
      return respond(responder, request, .redirect(to: server.url(clientHost: host)))
    }
    let result = queue.take { [weak self] server in
      guard responder.respond(.redirect(to: server.url(clientHost: host))) else { return false }
      self?.log?("\(request.method) \(request.target) 302 -> \(server) (after waiting)")
      return true
    }
    switch result {
    case .server(let server):
      respond(responder, request, .redirect(to: server.url(clientHost: host)), note: "-> \(server)")
    case .waiting(let ticket):
      responder.onCancel = { [weak self] in
        self?.queue.cancel(ticket)
        self?.log?("\(request.method) \(request.target) client left while waiting")
      }
    }
  }

  /// `GET /port_update/<port>`: the server on that port is free again.
  private func portUpdate(_ request: HTTPRequest, _ responder: HTTPResponder) {
    let text = request.path.dropFirst("/port_update/".count)
    guard let port = ServerAddress.parsePort(text) else {
      return respond(
        responder, request, .text(.badRequest, "'\(text)' is not a port number from 1 to 65535"))
    }
    guard let server = servers.first(where: { $0.port == port }) else {
      return respond(responder, request, .text(.notFound, "port \(port) is not in the pool"))
    }
    respond(responder, request, .text(.ok, "port \(port) is free again"))
    queue.put(server)
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
