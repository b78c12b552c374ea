import Balancing
import Documents
import HTTPCore

/// Asks servers over HTTP, on the balancer's event loop, within `timeout` seconds: `GET /health`
/// (busy or idle) and `POST /revoke?lease=<token>` (the claim check, and the revocation of a
/// lease that ended while its server was down).
public final class HTTPHealthProbe: HealthProbe {
  private let loop: EventLoop
  /// The host used for servers listed by port only.
  public var localHost = "127.0.0.1"
  public var timeout = 2.0
  /// A numeric address for a server listed by name, looked up when the pool was loaded; nil to
  /// use the name (resolved then on the loop, which can block).
  public var numericHost: (ServerAddress) -> String? = { _ in nil }

  public init(loop: EventLoop) { self.loop = loop }

  public func check(_ server: ServerAddress, completion: @escaping (ServerPool.CheckResult) -> Void)
  {
    send(to: server, method: "GET", path: "/health") { result in
      switch result {
      case .success(let response) where response.statusCode == 503:
        // Alive, but too loaded to say more (our server: all its connections are taken, as
        // while a crowd holds them): it may be busy, so a lease on it is not ended as idle.
        // Another 5xx is a server that fails on /health (one written for the original may
        // fail on any path it does not know): it counts as idle, or its lease would be
        // extended for ever.
        completion(.busy)
      case .success(let response):
        // Any answer means it is alive; a server written for the original has no /health of
        // ours and counts as idle.
        let health = response.statusCode == 200 ? try? ServerHealth.decode(response.body) : nil
        completion(health?.busy == true ? .busy : .idle)
      case .failure(.localResources):
        completion(.inconclusive)  // no socket for the probe: nothing learnt of the server
      case .failure:
        completion(.unreachable)
      }
    }
  }

  public func revoke(_ lease: Lease, completion: @escaping (RevokeResult) -> Void) {
    send(to: lease.server, method: "POST", path: "/revoke?lease=\(lease.token)") { result in
      // No answer, or a 503 (all its connections taken, as in `check`): it may not have heard.
      guard case .success(let response) = result, response.statusCode != 503 else {
        return completion(.unreachable)
      }
      guard let answer = try? LeaseRevocation.decode(response.body), answer.lease == lease.token
      else { return completion(.unknown) }  // no such route: a server written for the original
      completion(answer.state == .revoked ? .revoked : .started)
    }
  }

  /// One request on a connection of its own, closed after the answer.
  private func send(
    to server: ServerAddress, method: String, path: String,
    completion: @escaping (Result<HTTPClientResponse, HTTPClient.Failure>) -> Void
  ) {
    let host =
      numericHost(server)
      ?? server.host.map { $0.hasPrefix("[") ? String($0.dropFirst().dropLast()) : $0 }
      ?? localHost
    let client = HTTPClient(loop: loop, host: host, port: server.port)
    client.retryWindow = 0
    client.requestTimeout = timeout
    client.send(method: method, path: path, headers: HTTPHeaders([("Connection", "close")])) {
      result in
      client.shutdown()
      completion(result)
    }
  }
}
