/// One client's visit: ask the balancer, follow its redirect, get the answer.
public struct Visit: Sendable {
  /// How a visit ended.
  public enum Outcome: String, Sendable, CaseIterable {
    /// A `Factorial of N = …` answer.
    case ok
    /// The balancer answered 503 (no server free in time, or too many waiting).
    case unavailable
    /// The balancer refused the connection or did not answer (each one tried, with several).
    case balancerUnreachable = "balancer_unreachable"
    /// The server it was sent to refused or dropped the connection (after any retries).
    case serverUnreachable = "server_unreachable"
    /// An answer that is not a factorial.
    case wrongBody = "wrong_body"
    /// Another HTTP status.
    case httpError = "http_error"
  }

  public var index: Int
  /// Seconds from the start of the run to the start of the visit.
  public var start: Double
  /// Seconds from the start of the run to the end of the visit.
  public var end: Double
  public var outcome: Outcome
  /// The last HTTP status seen (0 if none).
  public var status: Int
  /// The server that answered (its port, or host:port for another host).
  public var server: String?
  /// Milliseconds spent at the balancer (request to redirect), waiting included.
  public var balancerMilliseconds: Double?
  /// Milliseconds spent at the server (redirect to answer).
  public var serverMilliseconds: Double?
  /// The `n` asked for, when the run mixes job sizes.
  public var jobSize: Int?
  /// Times the visit tried again: back to its balancer because its server was unreachable, or at
  /// the next balancer because its balancer refused or dropped the connection (`balancerRetries`).
  public var retries = 0
  /// What went wrong, for outcomes other than ok.
  public var detail = ""
  /// The balancer (host:port) that answered the visit first, with a redirect or another
  /// response; nil if none did.
  public var balancer: String?
  /// Of `retries`, those at the next balancer after one refused or dropped the connection before
  /// answering (only with several balancers).
  public var balancerRetries = 0

  /// Milliseconds from start to end.
  public var totalMilliseconds: Double { (end - start) * 1000 }
}
