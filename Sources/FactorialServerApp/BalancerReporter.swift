import Foundation
import HTTPCore

/// Sends a factorial server's reports (`GET /port_update/<port>?lease=T`, with
/// `Prefer: return=minimal`) to balancers that share one queue and lease store, so that any of
/// them may take a report.
///
/// A report goes to the current balancer. If that one cannot be reached (refused, reset, no
/// answer in time) or answers 5xx, the same report goes to the next balancer of the list, each
/// balancer at most once per report; a 2xx or 4xx answer is final (a 4xx is the balancer
/// refusing the report, and is logged). The current balancer is the one that last did not fail:
/// a failure of the current balancer moves every later report to the next one, logged in one
/// line, and the reports already waiting for the failed balancer's connection move at once. It
/// stays there until it fails in turn.
///
/// A report that every balancer failed (all unreachable, or all answering 5xx, as while their
/// shared Redis restarts) is not dropped: the whole round is tried again after `retryDelay`
/// seconds, until `giveUpAfter` seconds have passed since it was first sent (the balancer's
/// lease timeout would end the lease by then).
///
/// One `HTTPClient` per balancer: each sends its reports one at a time, in order, and keeps every
/// report until it is answered or fails, so concurrent reports are queued, never lost. Answers
/// are read lazily (`HTTPClient.lazyAnswerWindow`): when the next report goes out, or at the
/// latest `answerWindow` seconds after the report, so a server reporting steadily is not woken
/// for each answer. Runs on the loop: `report` must be called there.
public final class BalancerReporter {
  /// Every balancer, in the order given.
  public let balancers: [BalancerAddress]
  /// The index in `balancers` of the balancer that takes the next report.
  public private(set) var currentIndex = 0
  private let clients: [HTTPClient]
  /// Reports handed to each balancer's client and not yet settled.
  private var waiting: [Int]
  private let log: ((String) -> Void)?
  private let warn: (String) -> Void
  private let loop: EventLoop
  /// Seconds before a report that every balancer failed is tried again.
  public var retryDelay = 1.0
  /// Seconds after its first attempt when a report that keeps failing is given up.
  public var giveUpAfter = 60.0

  /// A report on its way: where it has been tried, and why each failed.
  private struct Attempt {
    let path: String
    /// When it was first sent (monotonic nanoseconds).
    let started: UInt64
    /// The first balancer it was sent to, and any after it: a report taken by the first costs
    /// no array.
    private var firstTried: Int?
    private var triedAfterFirst: [Int] = []
    var failures: [String] = []

    init(path: String, started: UInt64) {
      self.path = path
      self.started = started
    }

    mutating func markTried(_ index: Int) {
      if firstTried == nil { firstTried = index } else { triedAfterFirst.append(index) }
    }

    func hasTried(_ index: Int) -> Bool {
      firstTried == index || triedAfterFirst.contains(index)
    }
  }

  /// - Parameters:
  ///   - balancers: at least one.
  ///   - attemptWindow: seconds one balancer keeps being retried for a report (reconnecting
  ///     with back-off) before the next is tried. Nil: with one balancer 30 s, as the reports
  ///     always had; with several 1 s (enough to reopen a dropped keep-alive connection).
  ///   - answerTimeout: seconds a balancer has to answer a report, retries included. Nil: none
  ///     with one balancer; 5 s with several.
  ///   - answerWindow: seconds after a report by which its answer is read even if no other
  ///     report follows; nil to read each answer as soon as it arrives.
  ///   - log: routine lines (each report taken), nil when quiet.
  ///   - warn: lines always written: a move to another balancer, a refused or lost report.
  public init(
    loop: EventLoop, balancers: [BalancerAddress], attemptWindow: Double? = nil,
    answerTimeout: Double? = nil, answerWindow: Double? = 0.2, log: ((String) -> Void)?,
    warn: @escaping (String) -> Void
  ) {
    precondition(!balancers.isEmpty, "a reporter needs a balancer")
    self.loop = loop
    self.balancers = balancers
    let several = balancers.count > 1
    clients = balancers.map { balancer in
      let client = HTTPClient(
        loop: loop, host: balancer.urlHost, port: balancer.port, fields: Self.reportFields)
      client.retryWindow = attemptWindow ?? (several ? 1 : client.retryWindow)
      client.requestTimeout = answerTimeout ?? (several ? 5 : nil)
      client.lazyAnswerWindow = answerWindow
      return client
    }
    waiting = Array(repeating: 0, count: balancers.count)
    self.log = log
    self.warn = warn
  }

  /// Sent with every report: a balancer that took it answers `204 No Content`, the least there
  /// is to read; refusals still come with their reason.
  private static let reportFields = HTTPHeaders([("Prefer", "return=minimal")])

  /// The balancer that takes the next report.
  public var current: BalancerAddress { balancers[currentIndex] }

  /// Sends `path` to the current balancer, and on to the others if it fails.
  public func report(_ path: String) {
    send(Attempt(path: path, started: loop.now), to: currentIndex)
  }

  /// Drops the connections; reports not yet answered fail (and are logged as lost).
  public func shutdown() {
    for client in clients { client.shutdown() }
  }

  private func send(_ attempt: Attempt, to index: Int) {
    var attempt = attempt
    attempt.markTried(index)
    waiting[index] += 1
    clients[index].send(path: attempt.path) { [weak self] result in
      self?.settle(attempt, at: index, result)
    }
  }

  private func settle(
    _ attempt: Attempt, at index: Int, _ result: Result<HTTPClientResponse, HTTPClient.Failure>
  ) {
    waiting[index] -= 1
    let path = attempt.path
    let reason: String
    var unreachable = false
    switch result {
    case .success(let response) where (200..<300).contains(response.statusCode):
      log?("reported \(path)" + (balancers.count > 1 ? " to \(balancers[index])" : ""))
      return
    case .success(let response) where response.statusCode < 500:
      warn("report \(path) answered \(response.statusCode): \(Self.oneLine(response.text))")
      return
    case .success(let response):
      reason = "answered \(response.statusCode): \(Self.oneLine(response.text))"
    case .failure(.localResources(let problem)):
      // This process could not open a socket: another balancer would fare no better.
      warn("report \(path) failed: no socket here: \(problem)")
      return
    case .failure(let failure):
      reason = "\(failure)"
      unreachable = true
    }
    var attempt = attempt
    attempt.failures.append(balancers.count > 1 ? "\(balancers[index]) \(reason)" : reason)
    guard let next = nextBalancer(for: attempt, after: index) else {
      let failures = attempt.failures.joined(separator: "; ")
      let elapsed = Double(loop.now &- attempt.started) / 1e9
      guard elapsed + retryDelay < giveUpAfter else {
        warn("report \(path) lost after \(Int(elapsed)) s: \(failures)")
        return
      }
      warn("report \(path) failed: \(failures); trying again in \(retryDelay) s")
      _ = loop.schedule(after: retryDelay) { [weak self] in
        guard let self else { return }
        self.send(Attempt(path: path, started: attempt.started), to: self.currentIndex)
      }
      return
    }
    let moving = index == currentIndex
    if moving {
      currentIndex = next
      warn("reports now go to \(balancers[next]): \(balancers[index]) failed: \(reason)")
    }
    send(attempt, to: next)
    // The reports queued behind this one on a connection that failed would each wait out the
    // same failure: they move now. (Only those never written are queued: nothing is sent twice.)
    if moving && unreachable && waiting[index] > 0 {
      clients[index].shutdown()
    }
  }

  /// Where a report that just failed at `index` goes next: the current balancer if it has not
  /// tried it yet, else the next balancer of the list it has not tried; nil once all have.
  private func nextBalancer(for attempt: Attempt, after index: Int) -> Int? {
    if !attempt.hasTried(currentIndex) { return currentIndex }
    for step in 1..<balancers.count {
      let candidate = (index + step) % balancers.count
      if !attempt.hasTried(candidate) { return candidate }
    }
    return nil
  }

  /// A balancer's answer as part of one log line.
  private static func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
      .joined(separator: " ")
  }
}
