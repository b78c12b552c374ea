import Foundation
import Glibc
import HTTPCore
import TestSupport
import XCTest

/// Servers on other hosts: each factorial server in a network namespace of its own, with its own
/// address, the balancer in another, all joined by a bridge, as separate machines on one LAN
/// would be. Needs `ip` (iproute2) and root; without network namespaces the test is skipped,
/// saying why.
///
/// Topology (N chosen per run, from the test process's pid):
///
///     <prefix>-sw   the "switch": bridge br0, one veth port per host below
///     <prefix>-bal  the balancer, 10.213.N.1, port 8001
///     <prefix>-s1…3 factorial servers, 10.213.N.2…4, port 5001 each
///     root          the test process itself, 10.213.N.254 on <prefix>h (a veth into the switch)
///
/// `<prefix>` is `lbnt<pid>`: left-overs of a run whose process is gone are deleted first.
final class NetworkNamespaceTests: SystemTestCase {
  private static let namePrefix = "lbnt"
  private static let serverCount = 3
  private static let serverPort = 5001
  private static let lbPort = 8001

  private var ipTool = ""
  private var prefix = ""
  private var subnet = ""
  /// Namespaces this run created, in order; deleted in reverse.
  private var namespaces: [String] = []
  private var hostLink: String?
  private var serverNamespaces: [String] = []
  private var serverHosts: [String] = []
  private var balancerHost = ""

  private var switchNamespace: String { prefix + "-sw" }
  private var balancerNamespace: String { prefix + "-bal" }

  // MARK: - Set-up and tear-down

  override func setUpWithError() throws {
    try super.setUpWithError()
    guard let ip = Self.findExecutable("ip") else {
      let message =
        "network namespaces not available: no `ip` command (Debian: apt-get install iproute2)"
      if ProcessInfo.processInfo.environment["CI"] != nil { throw TestFailure(message) }
      throw XCTSkip(message)
    }
    ipTool = ip
    prefix = "\(Self.namePrefix)\(getpid())"
    removeLeftovers()
    do {
      try buildTopology()
    } catch {
      removeNetwork()
      throw error
    }
  }

  override func tearDown() {
    // The processes first (a namespace lives on while a process is in it), then the network.
    for process in processes { process.stop() }
    removeNetwork()
    super.tearDown()
  }

  private func buildTopology() throws {
    // Whether this system allows network namespaces at all: a refusal here is a skip.
    let probe = try ip(["netns", "add", switchNamespace], check: false)
    guard probe.status == 0 else {
      throw XCTSkip(
        "network namespaces not available: `ip netns add` failed (uid \(getuid())): \(probe.output.trimmed)"
      )
    }
    namespaces.append(switchNamespace)
    subnet = try freeSubnet()
    balancerHost = "\(subnet).1"
    serverNamespaces = (1...Self.serverCount).map { "\(prefix)-s\($0)" }
    serverHosts = (1...Self.serverCount).map { "\(subnet).\($0 + 1)" }

    let bridge = try ip(
      ["-n", switchNamespace, "link", "add", "br0", "type", "bridge"], check: false)
    guard bridge.status == 0 else {
      throw XCTSkip("network namespaces not available: no bridge: \(bridge.output.trimmed)")
    }
    try ip(["-n", switchNamespace, "link", "set", "lo", "up"])
    try ip(["-n", switchNamespace, "link", "set", "br0", "up"])

    // One host per namespace: a veth pair, `eth0` in the host, its port on the bridge.
    let hosts = [(balancerNamespace, balancerHost)] + Array(zip(serverNamespaces, serverHosts))
    for (index, (namespace, address)) in hosts.enumerated() {
      try ip(["netns", "add", namespace])
      namespaces.append(namespace)
      let port = "port\(index)"
      let pair = try ip(
        [
          "-n", switchNamespace, "link", "add", port, "type", "veth", "peer", "name", "eth0",
          "netns", namespace,
        ], check: false)
      guard pair.status == 0 else {
        throw XCTSkip("network namespaces not available: no veth pair: \(pair.output.trimmed)")
      }
      try ip(["-n", switchNamespace, "link", "set", port, "master", "br0", "up"])
      try ip(["-n", namespace, "link", "set", "lo", "up"])
      try ip(["-n", namespace, "addr", "add", "\(address)/24", "dev", "eth0"])
      try ip(["-n", namespace, "link", "set", "eth0", "up"])
    }
    // The test process reaches the LAN from the root namespace through one more port.
    let link = prefix + "h"
    try ip(
      [
        "-n", switchNamespace, "link", "add", "port-root", "type", "veth", "peer", "name", link,
        "netns", "\(getpid())",
      ])
    hostLink = link
    try ip(["-n", switchNamespace, "link", "set", "port-root", "master", "br0", "up"])
    try ip(["addr", "add", "\(subnet).254/24", "dev", link])
    try ip(["link", "set", link, "up"])
  }

  /// A 10.213.N.0/24 that no address or route of the root namespace uses yet.
  private func freeSubnet() throws -> String {
    let used = try ip(["-4", "-o", "addr", "show"]).output + ip(["-4", "route", "show"]).output
    let start = Int(getpid()) % 250
    for offset in 0..<250 {
      let candidate = "10.213.\((start + offset) % 250 + 1)"
      if !used.contains(candidate + ".") { return candidate }
    }
    throw TestFailure("no free 10.213.N.0/24 in the root namespace:\n\(used)")
  }

  /// Deletes this run's namespaces (killing anything still in them) and its root link. Safe to
  /// call more than once, and after a set-up that stopped half way.
  private func removeNetwork() {
    for namespace in namespaces.reversed() {
      killProcesses(in: namespace)
      _ = try? ip(["netns", "del", namespace], check: false)
    }
    namespaces.removeAll()
    // Deleting the switch's namespace destroys its veth ports and their peers; make sure.
    if let link = hostLink, (try? ip(["link", "show", link], check: false).status) == 0 {
      _ = try? ip(["link", "del", link], check: false)
    }
    hostLink = nil
  }

  /// Namespaces and links named `lbnt<pid>…` whose test process is gone (or is this one: the
  /// same pid again) are left-overs of a run that could not clean up.
  private func removeLeftovers() {
    func isStale(_ name: String) -> Bool {
      guard name.hasPrefix(Self.namePrefix) else { return false }
      let digits = name.dropFirst(Self.namePrefix.count).prefix { $0.isNumber }
      guard let pid = Int32(digits), !digits.isEmpty else { return false }
      return pid == getpid() || (kill(pid, 0) == -1 && errno == ESRCH)
    }
    let listed = (try? ip(["netns", "list"], check: false).output) ?? ""
    for line in listed.split(separator: "\n") {
      let name = String(line.split(separator: " ").first ?? "")
      guard isStale(name) else { continue }
      killProcesses(in: name)
      _ = try? ip(["netns", "del", name], check: false)
    }
    let links = (try? ip(["-o", "link", "show"], check: false).output) ?? ""
    for line in links.split(separator: "\n") {
      // "12: lbnt123h@if5: <BROADCAST,…"
      let fields = line.split(separator: " ")
      guard fields.count > 1 else { continue }
      let name = String(fields[1].prefix { $0 != "@" && $0 != ":" })
      if isStale(name) { _ = try? ip(["link", "del", name], check: false) }
    }
  }

  private func killProcesses(in namespace: String) {
    let pids = (try? ip(["netns", "pids", namespace], check: false).output) ?? ""
    for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) where pid != getpid() {
      kill(pid, SIGKILL)
    }
  }

  // MARK: - Processes in namespaces

  /// Runs `ip` with `arguments` and waits at most `timeout` seconds; with `check`, a non-zero
  /// exit is an error.
  @discardableResult
  private func ip(_ arguments: [String], check: Bool = true, timeout: Double = 10) throws -> (
    status: Int32, output: String
  ) {
    let result = try Self.run(ipTool, arguments, timeout: timeout)
    if check && result.status != 0 {
      throw TestFailure(
        "ip \(arguments.joined(separator: " ")) exited \(result.status): \(result.output.trimmed)")
    }
    return result
  }

  /// Runs a program to its end (killed after `timeout` seconds), with its output.
  private static func run(_ path: String, _ arguments: [String], timeout: Double) throws -> (
    status: Int32, output: String
  ) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let exited = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in exited.signal() }
    let output = OutputBuffer()
    let drained = DispatchSemaphore(value: 0)
    pipe.fileHandleForReading.readabilityHandler = { handle in
      let chunk = handle.availableData
      if chunk.isEmpty {
        handle.readabilityHandler = nil
        drained.signal()
        return
      }
      output.append(chunk)
    }
    try process.run()
    if exited.wait(timeout: .now() + timeout) == .timedOut {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      throw TestFailure("\(path) \(arguments.joined(separator: " ")) took over \(timeout) s")
    }
    _ = drained.wait(timeout: .now() + 1)
    return (process.terminationStatus, output.text)
  }

  private static func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/bin"]
    return directories.map { "\($0)/\(name)" }.first {
      FileManager.default.isExecutableFile(atPath: $0)
    }
  }

  /// Starts a product (`balancer`, `factorial-server`) inside `namespace`. `ip netns exec`
  /// execs the program itself, so the process (and its pid) is the program's.
  private func startInNamespace(_ namespace: String, _ product: String, _ arguments: [String])
    throws -> ManagedProcess
  {
    let binary = ManagedProcess.productsDirectory.appendingPathComponent(product).path
    let process = try ManagedProcess(
      ipTool, ["netns", "exec", namespace, binary] + arguments, directory: directory)
    processes.append(process)
    return process
  }

  /// Whether a TCP connection from inside `namespace` to `host:port` succeeds.
  private func canConnect(from namespace: String, to host: String, port: Int) throws -> Bool {
    let result = try ip(
      ["netns", "exec", namespace, "bash", "-c", "exec 3<>/dev/tcp/\(host)/\(port)"], check: false,
      timeout: 5)
    return result.status == 0
  }

  // MARK: - Talking to the balancer on its own address

  override var balancerURL: String { "http://\(balancerHost):\(balancerPort)/" }

  override func get(_ path: String) throws -> HTTPClientResponse {
    try TestClient(host: balancerHost, port: balancerPort, timeout: 5).get(path)
  }

  private func totals() throws -> [String: Int] { try status()["totals"] as! [String: Int] }

  private func refusedReports() throws -> [String: Int] {
    try status()["refused_reports"] as? [String: Int] ?? [:]
  }

  private func serverURL(_ host: String) -> String {
    "http://\(host):\(Self.serverPort)/\(Self.serverPort)"
  }

  // MARK: - The test

  func testServersOnOtherHostsAreBalancedReportAndAreMarkedDownWhenKilled() throws {
    // The pool: three servers on other hosts, the same port on each.
    let entries = serverHosts.map { "\"\($0):\(Self.serverPort)\"" }
    try writeConfig("{\"available_servers\": [\(entries.joined(separator: ", "))]}")
    balancerPort = Self.lbPort
    // The servers first, as in a deployment where they run before the balancer: one that
    // did not listen yet would fail the balancer's first heartbeat and start out down.
    var serverProcesses: [String: ManagedProcess] = [:]
    for (namespace, host) in zip(serverNamespaces, serverHosts) {
      let server = try startInNamespace(
        namespace, "factorial-server",
        [
          "--port", "\(Self.serverPort)", "--balancer", "\(balancerHost):\(Self.lbPort)",
          "--exit-with-parent",
        ])
      // The server reports to the balancer's address on the LAN, from its own.
      try server.waitForOutput("listening on port \(Self.serverPort)")
      serverProcesses[host] = server
    }
    // Short lease timeout and heartbeat, so that a killed server is found down in a few
    // seconds; no claim checks, so that a lease is only ever reported or expired.
    balancer = try startInNamespace(
      balancerNamespace, "balancer",
      [
        "--port", "\(Self.lbPort)", "--config", configPath, "--no-spawn", "--lease-timeout", "2",
        "--claim-timeout", "0", "--heartbeat-interval", "1",
      ])
    try balancer.waitForOutput("[balancer] listening on port \(Self.lbPort)")

    // Connectivity: the test process reaches every host, every server reaches the balancer.
    XCTAssertEqual(try get("/health").statusCode, 200)
    for (namespace, host) in zip(serverNamespaces, serverHosts) {
      let health = try TestClient(host: host, port: Self.serverPort, timeout: 5).get("/health")
      XCTAssertEqual(health.statusCode, 200, "\(host): \(health.text)")
      XCTAssertTrue(
        try canConnect(from: namespace, to: balancerHost, port: Self.lbPort),
        "\(namespace) cannot reach the balancer at \(balancerHost):\(Self.lbPort)")
    }
    // Each server joins once a check found it idle (it may have been busy with a job from a
    // balancer before this one).
    let names = serverHosts.map { "\($0):\(Self.serverPort)" }
    let allFree = Dictionary(uniqueKeysWithValues: names.map { ($0, "free") })
    try eventually("every server checked and free") { try serverStates() == allFree }

    // (1, 2) Redirects name the servers' own addresses; the client follows, gets its factorial,
    // and each server's report (from its own address) is accepted.
    var seen: Set<String> = []
    for round in 1...6 {
      let (response, urls) = try TestClient.follow(balancerURL + "?n=\(100 + round)", timeout: 10)
      XCTAssertEqual(response.statusCode, 200, response.text)
      assertCorrectFactorial(response.text)
      XCTAssertTrue(response.text.hasPrefix("Factorial of \(100 + round) = "))
      XCTAssertEqual(urls.count, 2, "\(urls)")
      // `http://<server's address>:5001/5001?n=<the client's n>&lease=<token>`
      let parts = urls.last!.split(separator: "?", maxSplits: 1).map(String.init)
      let location = parts[0]
      XCTAssertTrue(serverHosts.contains { location == serverURL($0) }, urls.last!)
      XCTAssertTrue(parts.count == 2 && parts[1].hasPrefix("n=\(100 + round)&lease="), urls.last!)
      seen.insert(location)
      try eventually("report \(round) to arrive", timeout: 5) { try totals()["reported"] == round }
    }
    XCTAssertEqual(seen, Set(serverHosts.map(serverURL)), "every remote server handed out")
    try eventually("every server free again", timeout: 5) {
      try serverStates().values.allSatisfy { $0 == "free" }
    }
    XCTAssertEqual(
      try totals(), ["leased": 6, "reported": 6, "expired": 0, "reclaimed": 0, "in_flight": 0])
    XCTAssertEqual(try refusedReports(), [:])
    for host in serverHosts {
      XCTAssertTrue(
        balancer.output.contains("\(host):\(Self.serverPort): reported after "),
        "no report logged for \(host)")
    }

    // (3a) kill -9 a server that holds a lease its client never used.
    let leased = try get("/")
    XCTAssertEqual(leased.statusCode, 302)
    let leasedLocation = leased.headers["Location"]?.withoutLease ?? ""
    guard let victim = serverHosts.first(where: { serverURL($0) == leasedLocation }) else {
      return XCTFail("redirect to an unknown server: \(leasedLocation)")
    }
    let victimName = "\(victim):\(Self.serverPort)"
    XCTAssertEqual(try serverStates()[victimName], "leased")
    try assertIsServerInOtherNamespace(serverProcesses[victim]!)
    serverProcesses[victim]!.signal(SIGKILL)
    XCTAssertNotNil(serverProcesses[victim]!.waitForExit(timeout: 5), "kill -9 did not end it")
    let killed = Date()
    try eventually("the killed leased server to be down", timeout: 10) {
      try serverStates()[victimName] == "down"
    }
    let leasedDownAfter = Date().timeIntervalSince(killed)
    print(
      "netns: leased server \(victimName) down \(String(format: "%.1f", leasedDownAfter)) s after kill -9"
    )
    XCTAssertLessThan(leasedDownAfter, 8)
    XCTAssertTrue(
      balancer.output.contains("\(victimName): leased server does not answer: down"),
      balancer.output)
    XCTAssertEqual(
      try totals(), ["leased": 7, "reported": 6, "expired": 1, "reclaimed": 0, "in_flight": 0])

    // The other two serve everything from now on.
    let survivors = serverHosts.filter { $0 != victim }
    var servedBy: [String: Int] = [:]
    for _ in 0..<20 {
      let (response, urls) = try TestClient.follow(balancerURL, timeout: 10)
      XCTAssertEqual(response.statusCode, 200, response.text)
      assertCorrectFactorial(response.text)
      let location = urls.last!.withoutLease
      XCTAssertTrue(survivors.contains { serverURL($0) == location }, "handed out \(location)")
      servedBy[location, default: 0] += 1
    }
    XCTAssertEqual(Set(servedBy.keys), Set(survivors.map(serverURL)), "\(servedBy)")
    try eventually("the 20 reports", timeout: 5) { try totals()["reported"] == 26 }
    XCTAssertEqual(try serverStates()[victimName], "down")

    // (3b) kill -9 an idle server: the heartbeat finds it, and the last one serves alone.
    let idle = survivors[0]
    let idleName = "\(idle):\(Self.serverPort)"
    let last = survivors[1]
    try eventually("both survivors free", timeout: 5) {
      let states = try serverStates()
      return states[idleName] == "free" && states["\(last):\(Self.serverPort)"] == "free"
    }
    try assertIsServerInOtherNamespace(serverProcesses[idle]!)
    serverProcesses[idle]!.signal(SIGKILL)
    XCTAssertNotNil(serverProcesses[idle]!.waitForExit(timeout: 5), "kill -9 did not end it")
    let killedIdle = Date()
    try eventually("the killed idle server to be down", timeout: 10) {
      try serverStates()[idleName] == "down"
    }
    let idleDownAfter = Date().timeIntervalSince(killedIdle)
    print(
      "netns: idle server \(idleName) down \(String(format: "%.1f", idleDownAfter)) s after kill -9"
    )
    XCTAssertLessThan(idleDownAfter, 8)
    for _ in 0..<5 {
      let (response, urls) = try TestClient.follow(balancerURL, timeout: 10)
      XCTAssertEqual(response.statusCode, 200, response.text)
      assertCorrectFactorial(response.text)
      XCTAssertEqual(urls.last!.withoutLease, serverURL(last))
    }
    try eventually("the last 5 reports", timeout: 5) { try totals()["reported"] == 31 }
    XCTAssertEqual(
      try totals(), ["leased": 32, "reported": 31, "expired": 1, "reclaimed": 0, "in_flight": 0])
    XCTAssertEqual(try refusedReports(), [:])
    XCTAssertEqual(
      try serverStates(),
      [victimName: "down", idleName: "down", "\(last):\(Self.serverPort)": "free"])

    // The balancer tells the servers apart by the address reports come from: a report without a
    // lease from the last server's host is that server's (409: it reports with leases), from
    // the test's own address it is nobody's (403).
    let lastNamespace = serverNamespaces[serverHosts.firstIndex(of: last)!]
    XCTAssertEqual(try statusLine(from: lastNamespace, "/port_update/\(Self.serverPort)"), 409)
    XCTAssertEqual(try get("/port_update/\(Self.serverPort)").statusCode, 403)
    XCTAssertEqual(try refusedReports(), ["lease_required": 1, "foreign_source": 1])
    XCTAssertEqual(try totals()["reported"], 31)
  }

  /// A partition between the balancer and a server (a blackhole route on the balancer's host
  /// only) while the server holds a lease its client has not used yet: the lease's check gets no
  /// answer, the lease ends and the server is down. Once the partition heals, the lease is
  /// revoked there before the server is leased again, so the client held up meanwhile gets no
  /// job on a server now leased to another: it is sent back to the balancer. (Before, the
  /// server was back on the probe's first answer and that client's job ran beside the next.)
  func testALeaseStrandedByAPartitionIsRevokedBeforeItsServerIsLeasedAgain() throws {
    let host = serverHosts[0]
    let name = "\(host):\(Self.serverPort)"
    try writeConfig("{\"available_servers\": [\"\(name)\"]}")
    balancerPort = Self.lbPort
    let server = try startInNamespace(
      serverNamespaces[0], "factorial-server",
      [
        "--port", "\(Self.serverPort)", "--balancer", "\(balancerHost):\(Self.lbPort)",
        "--exit-with-parent",
      ])
    try server.waitForOutput("listening on port \(Self.serverPort)")
    // A lease's check comes 2 s after it is issued; no claim checks, so that the held-up
    // client's lease is only ever reported or ended by that check.
    balancer = try startInNamespace(
      balancerNamespace, "balancer",
      [
        "--port", "\(Self.lbPort)", "--config", configPath, "--no-spawn", "--lease-timeout", "2",
        "--claim-timeout", "0", "--heartbeat-interval", "1",
      ])
    try balancer.waitForOutput("[balancer] listening on port \(Self.lbPort)")
    try eventually("the server free") { try serverStates()[name] == "free" }

    let held = try get("/")
    XCTAssertEqual(held.statusCode, 302)
    let heldURL = try XCTUnwrap(URL(string: held.headers["Location"] ?? ""))
    XCTAssertEqual(heldURL.host, host)
    let blackhole = ["-n", balancerNamespace, "route", "add", "blackhole", "\(host)/32"]
    try ip(blackhole)
    try eventually("the server to be down", timeout: 10) { try serverStates()[name] == "down" }
    XCTAssertTrue(
      balancer.output.contains("\(name): leased server does not answer: down"), balancer.output)
    try ip(["-n", balancerNamespace, "route", "del", "blackhole", "\(host)/32"])
    try eventually("the server back", timeout: 15) { try serverStates()[name] == "free" }
    XCTAssertTrue(
      balancer.output.contains("\(name): a lease that ended while it was down revoked there"),
      balancer.output)

    // The next client gets the server; the held-up one comes at last and gets no job.
    let next = try get("/")
    XCTAssertEqual(next.statusCode, 302)
    XCTAssertEqual(try serverStates()[name], "leased")
    let late = try TestClient(host: host, port: Self.serverPort, timeout: 5).get(
      heldURL.path + "?" + (heldURL.query ?? ""))
    XCTAssertEqual(late.statusCode, 302, "the stranded lease started a job: \(late.text)")
    XCTAssertEqual(late.headers["Location"], balancerURL)
    let (response, _) = try TestClient.follow(next.headers["Location"] ?? "", timeout: 10)
    XCTAssertEqual(response.statusCode, 200, response.text)
    assertCorrectFactorial(response.text)
    try eventually("the next client's report", timeout: 5) { try totals()["reported"] == 1 }
    XCTAssertEqual(
      try totals(), ["leased": 2, "reported": 1, "expired": 1, "reclaimed": 0, "in_flight": 0])
    XCTAssertEqual(try refusedReports(), [:])
  }

  /// The status code of `GET path` sent to the balancer from inside `namespace`.
  private func statusLine(from namespace: String, _ path: String) throws -> Int? {
    let script =
      "exec 3<>/dev/tcp/\(balancerHost)/\(balancerPort) && "
      + "printf 'GET \(path) HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' >&3 && "
      + "head -n 1 <&3"
    let result = try ip(["netns", "exec", namespace, "bash", "-c", script], timeout: 5)
    // "HTTP/1.1 409 Conflict"
    let fields = result.output.split(separator: " ")
    return fields.count > 1 ? Int(fields[1]) : nil
  }

  /// The process the test kills is the factorial server itself (`ip netns exec` execs it), and
  /// it runs in another network namespace than the test.
  private func assertIsServerInOtherNamespace(
    _ process: ManagedProcess, file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let pid = process.process.processIdentifier
    let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
    XCTAssertEqual(
      URL(fileURLWithPath: executable).lastPathComponent, "factorial-server", file: file, line: line
    )
    let theirs = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")
    let ours = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
    XCTAssertNotEqual(
      theirs, ours, "the server runs in the test's own namespace", file: file, line: line)
  }
}

/// Output read on the pipe's thread, taken on the test's.
private final class OutputBuffer: @unchecked Sendable {
  private let lock = NSLock()
  private var data = Data()

  func append(_ chunk: Data) {
    lock.lock()
    data.append(chunk)
    lock.unlock()
  }

  var text: String {
    lock.lock()
    defer { lock.unlock() }
    return String(decoding: data, as: UTF8.self)
  }
}

extension String {
  fileprivate var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
