import Documents
import Factorial
import HTTPCore
import Metrics
import Synchronization

/// The factorial server's routes: computes `Factorial of N = …` for `GET /<own port>` and for
/// `GET /`, answers `/health`, and keeps the balancer's leases honest: a job that came with a
/// lease is reported with it once answered; a revoked or used lease gets no job (the client is
/// sent back to the balancer); `POST /revoke?lease=` is the balancer's claim check.
///
/// The arithmetic runs through `runJob`, which in the program hands it to worker threads and
/// brings the result back to the event loop; tests can run it inline. Call from one thread.
public final class FactorialHandler: HTTPHandler {
  /// Runs `work` somewhere and then delivers its result by calling `deliver` on the handler's
  /// thread.
  public typealias JobRunner = (
    _ work: @escaping @Sendable () -> [UInt8]?, _ deliver: @escaping ([UInt8]?) -> Void
  ) -> Void

  /// The port this server listens on; `/<port>` is its job path.
  public let port: Int
  private let jobPath: String
  /// A report's path but for the lease: `/port_update/<port>?lease=`.
  private let reportPrefix: String
  /// Called once a job's answer has been written, with the path to report to the balancer.
  public var report: ((String) -> Void)?
  /// Receives one line per request handled, when set.
  public var log: ((String) -> Void)?
  private let runJob: JobRunner
  /// Jobs accepted and not yet answered.
  public private(set) var activeJobs = 0
  /// Jobs answered since start.
  public private(set) var completedJobs = 0
  /// Where a client whose lease was revoked or used is sent to ask again (`http://host:port/`),
  /// worked out from its request; nil to answer 409 instead.
  public var balancerLocation: ((HTTPRequest) -> String?)?
  private var leases = LeaseBook()
  /// What `GET /metrics` shows: jobs, compute time, the job queue.
  public let metrics = MetricsRegistry()
  private let computeTime: Histogram
  private let answered: Counter
  /// Jobs up to this n are computed on the handler's own thread: 1000! takes about 0.15 ms
  /// here, less than handing it to a worker and back costs, and `/health` stays answerable.
  public var inlineLimit = 1000
  /// The most jobs accepted and not yet answered; more get 503 with Retry-After.
  public var maxQueue = 8
  /// Jobs dropped because their client left before they started.
  public private(set) var droppedJobs = 0
  /// Jobs queued or running on the workers (set by the program, which owns them).
  public var queueLength: () -> Int = { 0 }

  public init(port: Int, runJob: @escaping JobRunner) {
    self.port = port
    jobPath = "/\(port)"
    reportPrefix = "/port_update/\(port)?lease="
    self.runJob = runJob
    answered = metrics.counter("factorial_jobs_total", help: "Jobs answered since start.")
    computeTime = metrics.histogram(
      "factorial_compute_seconds", help: "Time to compute one factorial, on a worker.",
      buckets: [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
      ])
    metrics.gauge("factorial_jobs_active", help: "Jobs accepted and not yet answered.") {
      [unowned self] in Double(self.activeJobs)
    }
    metrics.gauge("factorial_queue_length", help: "Jobs queued or running on the workers.") {
      [unowned self] in Double(self.queueLength())
    }
  }

  public func handle(_ request: HTTPRequest, responder: HTTPResponder) {
    if request.path == "/revoke" { return revoke(request, responder) }
    guard request.method == "GET" || request.method == "HEAD" else {
      var response = HTTPResponse.text(.methodNotAllowed, "method not allowed; use GET")
      response.headers.add("Allow", "GET, HEAD")
      return finish(responder, request, response)
    }
    if request.path == "/" || request.path == jobPath, activeJobs >= maxQueue {
      var response = HTTPResponse.text(
        .serviceUnavailable, "\(activeJobs) jobs are queued here already; try again soon")
      response.headers.add("Retry-After", "1")
      return finish(responder, request, response)
    }
    switch request.path {
    case "/":
      job(request, responder, lease: nil)
    case jobPath:
      let lease: String?
      do { lease = try Self.lease(in: request) } catch {
        return finish(responder, request, .text(.badRequest, error.description))
      }
      guard let lease else {
        // Not sent by a balancer that gives leases (or by hand): the job, but no report.
        return job(request, responder, lease: nil)
      }
      // HEAD is safe (RFC 9110 §9.2.1): it gets what a GET would, and uses up no lease.
      let isHead = request.method == "HEAD"
      switch isHead ? leases.peek(lease) : leases.admit(lease) {
      case .start:
        job(request, responder, lease: isHead ? nil : lease)
      case .revoked:
        askAgain(request, responder, "this lease was revoked: it was not used in time")
      case .usedAlready:
        askAgain(request, responder, "this lease was used already")
      }
    case "/health":
      // Not logged: the balancer asks every few seconds.
      let health = ServerHealth(port: port, jobs: activeJobs, served: completedJobs)
      responder.respond(.json(.ok, health.encoded()))
    case "/heartbeat":
      finish(responder, request, .text(.ok, "ok"))
    case "/metrics":
      responder.respond(
        HTTPResponse(
          status: .ok, headers: HTTPHeaders([("Content-Type", MetricsRegistry.contentType)]),
          body: Array(metrics.render().utf8)))
    case "/favicon.ico":
      finish(responder, request, .text(.notFound, "no icon here"))
    default:
      finish(
        responder, request,
        .text(.notFound, "unknown path \(request.path); this server answers /\(port) and /"))
    }
  }

  /// The fields of every answer, built once.
  private static let answerHeaders = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8")])

  /// Parses `?n=`: absent means a random N from 100 to 1000; leading zeros are allowed.
  /// Percent-escapes are decoded first (`%35` is `5`), and what they decode to must be digits
  /// like any other (`%2B5` is `+5`: no).
  static func requestedN(_ request: HTTPRequest) -> Result<Int, InvalidN> {
    let decoded: String?
    do { decoded = try request.decodedQueryValue("n") } catch {
      return .failure(InvalidN(message: error.description))
    }
    guard let text = decoded else { return .success(Int.random(in: 100...1000)) }
    // Leading zeros count for nothing (`0000005` is 5); the digits after them are at most six.
    let significant = text.utf8.drop { $0 == UInt8(ascii: "0") }
    guard !text.isEmpty, significant.count <= 6,
      text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
      let n = significant.isEmpty ? 0 : Int(Substring(significant)), n <= Factorial.maximumN
    else {
      // Quoted as sent (escapes and all): what the client can find in its own URL.
      let sent = request.queryValue("n") ?? ""
      return .failure(
        InvalidN(message: "n must be a whole number from 0 to \(Factorial.maximumN), not '\(sent)'")
      )
    }
    return .success(n)
  }

  /// A `?n=` outside what the server computes.
  struct InvalidN: Error {
    let message: String
  }

  /// `POST /revoke?lease=<token>`: revoked unless its client came already.
  private func revoke(_ request: HTTPRequest, _ responder: HTTPResponder) {
    guard request.method == "POST" else {
      var response = HTTPResponse.text(.methodNotAllowed, "method not allowed; use POST")
      response.headers.add("Allow", "POST")
      return finish(responder, request, response)
    }
    let lease: String?
    do { lease = try Self.lease(in: request) } catch {
      return finish(responder, request, .text(.badRequest, error.description))
    }
    guard let token = lease else {
      return finish(responder, request, .text(.badRequest, "give the lease: /revoke?lease=TOKEN"))
    }
    let state: LeaseRevocation.State = leases.revoke(token) ? .revoked : .started
    finish(responder, request, .json(.ok, LeaseRevocation(lease: token, state: state).encoded()))
  }

  /// A client with a lease that gets no job: back to the balancer with its own query (but the
  /// lease), or 409 if the balancer's address is not known. No report: the lease is not this
  /// client's to end.
  private func askAgain(_ request: HTTPRequest, _ responder: HTTPResponder, _ reason: String) {
    if var location = balancerLocation?(request) {
      let kept = (request.query ?? "").split(separator: "&").filter {
        !$0.isEmpty && !$0.hasPrefix("lease=") && $0 != "lease"
      }
      if !kept.isEmpty { location += "?" + kept.joined(separator: "&") }
      var response = HTTPResponse.redirect(to: location)
      response.headers.add("Cache-Control", "no-store")
      return finish(responder, request, response)
    }
    finish(responder, request, .text(.conflict, "\(reason); ask the balancer for a server again"))
  }

  /// The lease a request carries, percent-decoded, if it is a plausible token (compared with
  /// the book's exactly: decoding only undoes an encoding of the token's own characters);
  /// throws if its escapes are malformed.
  private static func lease(in request: HTTPRequest) throws(MalformedQueryValue) -> String? {
    try request.decodedQueryValue("lease").flatMap(plausibleLease)
  }

  /// `lease` if it may be a token: 1 to 128 letters, digits, `-` or `_`.
  private static func plausibleLease(_ lease: String) -> String? {
    var lease = lease
    guard !lease.isEmpty, lease.utf8.count <= 128 else { return nil }
    // Over the contiguous bytes: a byte at a time through `String.UTF8View` costs more.
    let plausible = lease.withUTF8 { bytes in
      bytes.allSatisfy { byte in
        (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A)
          || byte == 0x2D || byte == 0x5F
      }
    }
    return plausible ? lease : nil
  }

  /// Computes the job of `request`; with a `lease`, reports it once the answer is out.
  private func job(_ request: HTTPRequest, _ responder: HTTPResponder, lease: String?) {
    let reportPath = lease.map { reportPrefix + $0 }
    let n: Int
    switch Self.requestedN(request) {
    case .success(let value): n = value
    case .failure(let invalid):
      finish(responder, request, .text(.badRequest, invalid.message))
      // A redirected client that asked for something impossible still used its turn.
      if let reportPath { report?(reportPath) }
      return
    }
    activeJobs += 1
    let computeTime = computeTime
    // A client that leaves before its job starts costs no computation, and its place in the
    // queue is free at once: whichever of the worker and the hang-up comes first decides.
    let claim = JobClaim()
    responder.onCancel = { [weak self] in
      guard claim.abandon(), let self else { return }
      self.droppedJobs += 1
      self.endUnanswered(request, reportPath: reportPath, "dropped: the client left first")
    }
    let run: JobRunner = n <= inlineLimit ? { work, deliver in deliver(work()) } : runJob
    run(
      {
        guard claim.start() else { return nil }
        let started = MonotonicClock.now()
        let value = Factorial.of(n)
        var body = Array("Factorial of \(n) = ".utf8)
        body.reserveCapacity(body.count + value.digitCount + 1)
        value.appendDecimalDigits(to: &body)
        body.append(UInt8(ascii: "\n"))
        computeTime.observe(nanoseconds: MonotonicClock.now() - started)
        return body
      },
      { [weak self] body in
        guard let self, let body else { return }  // dropped: settled when its client left
        guard !responder.isFinished else {
          // Its client left while it ran: nobody to answer.
          return self.endUnanswered(
            request, reportPath: reportPath, "not answered: the client left")
        }
        let response = HTTPResponse(status: .ok, headers: Self.answerHeaders, body: body)
        // Answer first; report only once the answer is out (or the client is gone).
        responder.respond(response) { [weak self] in
          guard let self else { return }
          self.activeJobs -= 1
          self.completedJobs += 1
          self.answered.increment()
          if let reportPath { self.report?(reportPath) }
        }
        self.log?("\(request.method) \(request.target) 200 n=\(n)")
      })
  }

  /// Ends a job whose client left, before it started or while it ran: the lease was used, and
  /// the server is free again, so the balancer must hear it.
  private func endUnanswered(_ request: HTTPRequest, reportPath: String?, _ what: String) {
    activeJobs -= 1
    if let reportPath { report?(reportPath) }
    log?("\(request.method) \(request.target) \(what)")
  }

  private func finish(_ responder: HTTPResponder, _ request: HTTPRequest, _ response: HTTPResponse)
  {
    responder.respond(response)
    log?("\(request.method) \(request.target) \(response.status.code)")
  }
}

/// Who got to a queued job first: the worker that starts it, or its client's hang-up that
/// abandons it. Decided once, atomically (the worker runs on another thread).
final class JobClaim: Sendable {
  private static let queued = 0
  private static let started = 1
  private static let abandoned = 2
  private let state = Atomic<Int>(JobClaim.queued)

  /// The worker takes the job; false if its client left first.
  func start() -> Bool {
    state.compareExchange(
      expected: Self.queued, desired: Self.started, ordering: .acquiringAndReleasing
    )
    .exchanged
  }

  /// The client left; true if the job had not started (it never will).
  func abandon() -> Bool {
    state.compareExchange(
      expected: Self.queued, desired: Self.abandoned, ordering: .acquiringAndReleasing
    ).exchanged
  }
}
