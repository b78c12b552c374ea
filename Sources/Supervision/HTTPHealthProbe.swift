import Balancing
import Documents
import HTTPCore

/// Probes with `GET /health` over HTTP, on the balancer's event loop, within `timeout` seconds.
public final class HTTPHealthProbe: HealthProbe {
  private let loop: EventLoop
  /// The host used for servers listed by port only.
  public var localHost = "127.0.0.1"
  public var timeout = 2.0

  public init(loop: EventLoop) { self.loop = loop }

  public func check(_ server: ServerAddress, completion: @escaping (ServerPool.CheckResult) -> Void)
  {
    let host =
      server.host.map { $0.hasPrefix("[") ? String($0.dropFirst().dropLast()) : $0 } ?? localHost
    let client = HTTPClient(loop: loop, host: host, port: server.port)
    client.retryWindow = 0
    client.requestTimeout = timeout
    client.send(path: "/health", headers: HTTPHeaders([("Connection", "close")])) { result in
      client.shutdown()
      switch result {
      case .success(let response):
        // Any answer means it is alive; a server written for the original has no /health of
        // ours and counts as idle.
        let health = response.statusCode == 200 ? try? ServerHealth.decode(response.body) : nil
        completion(health?.busy == true ? .busy : .idle)
      case .failure:
        completion(.unreachable)
      }
    }
  }
}
