/// A factorial server's `GET /health`: written by the server, read by the balancer's health
/// probe to tell a busy server from an idle one.
public struct ServerHealth: JSONDocument, Equatable {
  public var status = "ok"
  /// The port the server listens on.
  public var port: Int
  /// Whether a job is running or queued.
  public var busy: Bool
  /// Jobs accepted and not yet answered.
  public var jobs: Int
  /// Jobs answered since the server started.
  public var served: Int

  public init(port: Int, jobs: Int, served: Int) {
    self.port = port
    self.busy = jobs > 0
    self.jobs = jobs
    self.served = served
  }
}
