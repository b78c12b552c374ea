import Foundation
import HTTPCore
import Synchronization

/// Sends visits to a balancer (or several sharing one queue) from `concurrency` threads, each
/// with its own keep-alive connections, following redirects as a browser does. Failures are
/// recorded, never fatal.
public final class LoadRunner: @unchecked Sendable {
  /// What to run.
  public struct Configuration: Sendable {
    /// The balancers, as round-robin DNS would hand them out: visit i starts at
    /// `balancers[i % balancers.count]` (see `firstBalancer(visit:)`), and when one refuses or
    /// drops the connection before answering, the visit tries again at the next (a retry). Never
    /// empty; usually one.
    public private(set) var balancers: [HTTPURL]
    /// The first (usually the only) balancer.
    public var url: HTTPURL { balancers[0] }
    public var requests = 10_000
    public var concurrency = 64
    /// Seconds for each read or write before a request counts as failed.
    public var timeout = 30.0
    /// Times a visit tries again: back to its balancer when the server it was sent to is
    /// unreachable, or, with several balancers, at the next one when its balancer refused or
    /// dropped the connection before answering.
    public var retries = 3
    /// Shell commands to run once when the given number of visits have finished.
    public var runAt: [(visits: Int, command: String)] = []
    /// Job sizes to ask for (`?n=` on the balancer URL) with their weights; empty for none.
    public var jobMix: [(n: Int, weight: Double)] = []
    /// Seeds the choice of job sizes, so that runs are repeatable.
    public var seed: UInt64 = 1
    /// Open loop: visits start at this many per second on average (Poisson arrivals), whatever
    /// the answers; latency counts from the planned start. nil: closed loop, each thread starts
    /// its next visit when the last one ends.
    public var rate: Double?
    /// Adds `key=client-K` (K among this many clients) for consistent hashing; nil for none.
    public var keys: Int?

    public init(url: HTTPURL) { self.init(balancers: [url]) }

    /// Visits spread over `balancers` (at least one) in turn.
    public init(balancers: [HTTPURL]) {
      precondition(!balancers.isEmpty, "a load test needs a balancer")
      self.balancers = balancers
    }

    /// The index in `balancers` of the balancer visit `index` starts at: `index mod count`.
    public func firstBalancer(visit index: Int) -> Int { index % balancers.count }

    /// The balancers of `URL[,URL...]`: every comma separates two URLs, each
    /// `http://host:port/path`, no two naming the same host:port.
    public static func balancers(from text: String) throws(BalancerListError) -> [HTTPURL] {
      var urls: [HTTPURL] = []
      for item in text.split(separator: ",", omittingEmptySubsequences: false) {
        guard let url = try? HTTPURL(String(item)) else {
          throw BalancerListError(description: "'\(item)' is not an http://host:port/ URL")
        }
        if let earlier = urls.first(where: { $0.hostHeader == url.hostHeader }) {
          throw BalancerListError(
            description: "'\(item)' names the same balancer as '\(earlier)'")
        }
        urls.append(url)
      }
      return urls
    }
  }

  /// Why a list of balancer URLs was refused, said for a person.
  public struct BalancerListError: Error, CustomStringConvertible {
    public let description: String
  }

  public let configuration: Configuration
  private let next = Mutex(0)
  private let finished = Atomic<Int>(0)
  private let results = Mutex<[Visit]>([])
  private var origin: Date = Date()

  public init(configuration: Configuration) {
    self.configuration = configuration
  }

  /// Visits finished so far.
  public var completed: Int { finished.load(ordering: .relaxed) }

  /// Runs every visit and returns the report. `onCommand` hears about `runAt` commands.
  public func run(onCommand: @escaping @Sendable (String) -> Void = { _ in }) -> LoadReport {
    let schedule = configuration.rate.map {
      Self.arrivals(count: configuration.requests, rate: $0, seed: configuration.seed)
    }
    origin = Date()
    let group = DispatchGroup()
    let workers = max(1, min(configuration.concurrency, configuration.requests))
    let pending = Mutex(configuration.runAt.sorted { $0.visits < $1.visits })
    for _ in 0..<workers {
      group.enter()
      let thread = Thread { [self] in
        var worker = Worker(configuration: configuration)
        while let index = take() {
          var planned: Double?
          if let schedule {
            planned = schedule[index]
            let wait = schedule[index] - Date().timeIntervalSince(origin)
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
          }
          var visit = worker.visit(index: index, origin: origin)
          if let planned, planned < visit.start { visit.start = planned }
          results.withLock { $0.append(visit) }
          let done = finished.add(1, ordering: .relaxed).newValue
          let due = pending.withLock { list -> [String] in
            let ready = list.filter { $0.visits <= done }.map(\.command)
            list.removeAll { $0.visits <= done }
            return ready
          }
          for command in due { Self.runShell(command, onCommand) }
        }
        group.leave()
      }
      thread.stackSize = 1 << 20
      thread.start()
    }
    group.wait()
    let visits = results.withLock { $0 }
    let duration = visits.map(\.end).max() ?? 0
    return LoadReport(
      visits: visits, duration: duration, concurrency: workers,
      url: configuration.balancers.map(\.description).joined(separator: ","),
      balancers: configuration.balancers.map(\.hostHeader))
  }

  /// Planned start times (seconds) of a Poisson process of `rate` per second.
  static func arrivals(count: Int, rate: Double, seed: UInt64) -> [Double] {
    var state = seed ^ 0x5DEE_CE66_D1CE_4E5B
    var time = 0.0
    return (0..<count).map { _ in
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      let uniform = (Double(state >> 11) + 0.5) / Double(1 << 53)
      time += -log(uniform) / rate
      return time
    }
  }

  private func take() -> Int? {
    next.withLock { value in
      guard value < configuration.requests else { return nil }
      value += 1
      return value - 1
    }
  }

  private static func runShell(_ command: String, _ onCommand: @Sendable (String) -> Void) {
    do {
      _ = try ShellCommand.spawn(command)
      onCommand(command)
    } catch {
      onCommand("could not run \(command): \(error)")
    }
  }
}

/// One thread's connections and the visit logic.
private struct Worker {
  let configuration: LoadRunner.Configuration
  /// A kept-alive connection to each balancer, in `configuration.balancers` order.
  var balancers: [BlockingHTTPClient?]
  var servers: [String: BlockingHTTPClient] = [:]

  init(configuration: LoadRunner.Configuration) {
    self.configuration = configuration
    balancers = Array(repeating: nil, count: configuration.balancers.count)
  }

  /// The job size of visit `index`: a weighted pick, the same for the same seed and index.
  func jobSize(index: Int) -> Int? {
    guard !configuration.jobMix.isEmpty else { return nil }
    var state = configuration.seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15
    state = (state ^ (state >> 30)) &* 0xBF58_476D_1CE4_E5B9
    state = (state ^ (state >> 27)) &* 0x94D0_49BB_1331_11EB
    state ^= state >> 31
    let total = configuration.jobMix.reduce(0) { $0 + $1.weight }
    var pick = Double(state >> 11) / Double(1 << 53) * total
    for entry in configuration.jobMix {
      if pick < entry.weight { return entry.n }
      pick -= entry.weight
    }
    return configuration.jobMix.last!.n
  }

  mutating func visit(index: Int, origin: Date) -> Visit {
    let start = Date().timeIntervalSince(origin)
    var visit = Visit(index: index, start: start, end: start, outcome: .ok, status: 0)
    var query: [String] = []
    if let n = jobSize(index: index) {
      query.append("n=\(n)")
      visit.jobSize = n
    }
    if let keys = configuration.keys {
      query.append("key=client-\(index % max(1, keys))")
    }
    let several = configuration.balancers.count > 1
    var current = configuration.firstBalancer(visit: index)
    for attempt in 0...configuration.retries {
      var target = configuration.balancers[current]
      for item in query { target.path += (target.path.contains("?") ? "&" : "?") + item }
      let asked = Date()
      let first: HTTPClientResponse
      do {
        first = try request(
          &balancers[current], host: target.host, port: target.port, path: target.path)
      } catch {
        visit.outcome = .balancerUnreachable
        visit.detail = several ? "\(target.hostHeader): \(error)" : "\(error)"
        // Another balancer shares the queue: a browser given several addresses tries the next.
        if several, attempt < configuration.retries, Self.balancerDropped(error) {
          visit.retries += 1
          visit.balancerRetries += 1
          current = (current + 1) % configuration.balancers.count
          continue
        }
        break
      }
      if visit.balancer == nil { visit.balancer = target.hostHeader }
      visit.status = first.statusCode
      let redirected = Date()
      visit.balancerMilliseconds = redirected.timeIntervalSince(asked) * 1000
      guard (300..<400).contains(first.statusCode), let location = first.headers["Location"] else {
        if first.statusCode == 503 {
          visit.outcome = .unavailable
        } else {
          judge(first, &visit, server: "\(target.host):\(target.port)")
        }
        break
      }
      guard let next = try? HTTPURL(location) else {
        visit.outcome = .httpError
        visit.detail = "unusable Location: \(location)"
        break
      }
      let name = next.host == target.host ? String(next.port) : "\(next.host):\(next.port)"
      do {
        var client = servers[name]
        let answer = try request(&client, host: next.host, port: next.port, path: next.path)
        servers[name] = client
        visit.serverMilliseconds = Date().timeIntervalSince(redirected) * 1000
        visit.status = answer.statusCode
        // The server sends the visit back to a balancer (its lease was revoked before it came):
        // a browser follows, and asks for the same job again.
        if (300..<400).contains(answer.statusCode), attempt < configuration.retries,
          let back = answer.headers["Location"].flatMap({ try? HTTPURL($0) })
        {
          visit.retries += 1
          if let index = configuration.balancers.firstIndex(where: {
            $0.host == back.host && $0.port == back.port
          }) {
            current = index
          }
          continue
        }
        judge(answer, &visit, server: name)
        break
      } catch {
        servers[name] = nil
        visit.detail = "\(name): \(error)"
        visit.outcome = .serverUnreachable
        if attempt < configuration.retries { visit.retries += 1 }
      }
    }
    visit.end = Date().timeIntervalSince(origin)
    return visit
  }

  /// Whether a balancer refused or dropped the connection before answering — it may be gone, and
  /// a visit loses nothing by asking another — rather than answered badly or too slowly (it is
  /// alive, and a timed-out request may still be in its line). The same tells a kept connection
  /// its server closed while idle from one it is still answering on (`request`).
  static func balancerDropped(_ error: Error) -> Bool {
    switch error {
    case SocketError.system("connect", _), SocketError.badAddress:
      return true  // never reached: nothing was asked
    case SocketError.system("write", let code):
      return code != EAGAIN && code != EWOULDBLOCK  // reset or closed; not a write timeout
    case HTTPClient.Failure.unreachable(let reason):
      // BlockingHTTPClient: "connection closed by the server", or "read failed or timed out: "
      // and the system's reason, which for a timeout (SO_RCVTIMEO) is EAGAIN's.
      return reason != "read failed or timed out: " + String(cString: strerror(EAGAIN))
    default:
      return false
    }
  }

  private func judge(_ response: HTTPClientResponse, _ visit: inout Visit, server: String) {
    visit.server = server
    if response.statusCode != 200 {
      visit.outcome = .httpError
      visit.detail = String(response.text.prefix(80))
    } else if response.body.starts(
      with: Array("Factorial of \(visit.jobSize.map { "\($0) =" } ?? "")".utf8))
    {
      visit.outcome = .ok
      visit.detail = ""
    } else {
      visit.outcome = .wrongBody
      visit.detail = String(response.text.prefix(80))
    }
  }

  /// GET on a kept-alive connection, reconnecting once if a kept connection went stale (closed
  /// or reset by its server while idle). A request that timed out or got a bad answer is not
  /// sent again: its server has it, and may still be working on it (a client waiting in line).
  private func request(_ client: inout BlockingHTTPClient?, host: String, port: Int, path: String)
    throws -> HTTPClientResponse
  {
    if let existing = client {
      do {
        return try exchange(existing, &client, path: path)
      } catch {
        client = nil
        // The server may have closed an idle connection: try a fresh one.
        guard Self.balancerDropped(error) else { throw error }
      }
    }
    let fresh = try BlockingHTTPClient(host: host, port: port, timeout: configuration.timeout)
    client = fresh
    do {
      return try exchange(fresh, &client, path: path)
    } catch {
      client = nil
      throw error
    }
  }

  private func exchange(
    _ connection: BlockingHTTPClient, _ client: inout BlockingHTTPClient?, path: String
  )
    throws -> HTTPClientResponse
  {
    let response = try connection.get(path)
    if response.headers.contains("Connection", token: "close") { client = nil }
    return response
  }
}
