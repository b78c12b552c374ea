import Balancing
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
      case .success(let response) where response.statusCode == 200:
        completion(response.text.contains("\"busy\": true") ? .busy : .idle)
      case .success:
        completion(.idle)  // it answers, so it is alive; it just has no /health of ours
      case .failure:
        completion(.unreachable)
      }
    }
  }
}
