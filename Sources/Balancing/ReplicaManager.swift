import Documents
import Foundation
import HTTPCore

/// The replicas as the second document's clients see them: `GET /rep`, `POST /add` and
/// `DELETE /rm`, on the same pool and queue, with servers.json rewritten after every change.
///
/// Knows the names and addresses of the replicas; the `ServerBroker` knows their states. Starts and
/// stops processes through a `ServerLauncher` when the balancer supervises them. No sockets: the
/// check that a port is free is a closure. Call from one thread.
public final class ReplicaManager {
  public let broker: ServerBroker
  /// The replicas in order, as servers.json lists them.
  public private(set) var entries: [ServerEntry]
  /// Where changes are written; nil to keep them in memory only.
  public var configPath: String?
  /// Starts and stops local servers; nil with `--no-spawn`.
  public var launcher: ServerLauncher?
  /// Without a launcher: whether a server that joins is asked first whether it is busy, and
  /// handed out only once it is idle (or does not answer): a balancer restarted while its
  /// servers run jobs for the clients of the one before does not give them a second job. For
  /// the availability queue only (the other policies give servers several jobs at once), and
  /// not where other books know the leases (a shared queue).
  public var checksJoiningServers = false
  /// Whether nothing on this machine listens on a port (so a new server may take it).
  public var isPortFree: (Int) -> Bool = { _ in true }
  /// The current monotonic time in nanoseconds.
  public var clock: () -> UInt64 = MonotonicClock.now
  /// Receives one line per change.
  public var log: ((String) -> Void)?
  /// The most servers one /add may start.
  public var maxAddedAtOnce = 64
  /// Receives the pool after each change made here (a reload, /add, /rm), to pass on to the
  /// balancers that share it; not called for a pool adopted from them.
  public var onChange: ((ServersFile) -> Void)?
  /// Called before /add or /rm works out its change from `entries`: the balancer takes a hand
  /// edit of servers.json it has not checked yet, which the rewrite would otherwise lose, and
  /// returns why the file must not be rewritten (it holds an edit that could not be loaded), or
  /// nil. With a reason, /add and /rm answer `409` and change nothing.
  public var beforeChange: (() -> String?)?
  /// Told each time servers.json is written here, with what was written (the balancer's
  /// `ConfigWatcher` compares the next edit with it).
  public var onWrite: ((ServersFile) -> Void)?

  public init(broker: ServerBroker, entries: [ServerEntry]) {
    self.broker = broker
    self.entries = entries
    broker.pool.onRemoved = { [weak self] server in self?.stopProcessIfUnlisted(port: server.port) }
  }

  /// The process this balancer runs for `server` (the launcher's name for it, a bare port): its
  /// own, or the one kept for an entry that names it another way (`5002` listed again as
  /// `127.0.0.1:5002`); nil if it runs none.
  public func process(of server: ServerAddress) -> ServerAddress? {
    let process = ServerAddress(port: server.port)
    guard let launcher, launcher.isSupervising(process),
      broker.identity(of: server)?.overlaps(.everyAddress(port: server.port)) ?? false
    else { return nil }
    return process
  }

  /// The pool's entries that name `process`, one of this balancer's (usually just its bare port).
  public func entries(runBy process: ServerAddress) -> [ServerAddress] {
    broker.pool.servers.filter { self.process(of: $0) == process }
  }

  /// Stops the process this balancer runs on `port` once no entry of the pool names it: an entry
  /// that left may have been the same process under another spelling, which keeps running,
  /// supervised, as long as one does.
  private func stopProcessIfUnlisted(port: Int) {
    let process = ServerAddress(port: port)
    guard let launcher, launcher.isSupervising(process), entries(runBy: process).isEmpty else {
      return
    }
    launcher.stop(process)
  }

  /// Applies servers.json as edited by hand: the pool follows it, and local servers that were
  /// added are started (they join as down until they answer). An invalid pool (a name that
  /// does not resolve, two entries that are one server, the balancer's own address) changes
  /// nothing.
  @discardableResult
  public func apply(_ file: ServersFile) throws(ServersFile.Invalid) -> (
    added: [ServerAddress], removed: [ServerAddress]
  ) {
    let change = try change(to: file)
    onChange?(file)
    return change
  }

  /// Takes the pool another balancer changed: applied as `apply` does, and written to
  /// servers.json (if that fails, the pool is still taken, and the error is logged). With
  /// `pendingEdit`, why servers.json holds a hand edit that could not be loaded, the file is
  /// left as it is, and the log says so: the edit is the admin's to fix or revert, and the file
  /// is then loaded as any edit (and becomes the pool of every balancer).
  public func adopt(_ file: ServersFile, pendingEdit: String? = nil) throws(ServersFile.Invalid) {
    guard file != ServersFile(entries: entries) else { return }
    let (added, removed) = try change(to: file)
    log?("pool changed by another balancer: \(added.count) added, \(removed.count) removed")
    guard let configPath else { return }
    if let pendingEdit {
      log?(
        "\(configPath) not rewritten with that pool: it holds an edit that could not be loaded"
          + " (\(pendingEdit)); once it is fixed or reverted, the file is loaded and becomes the"
          + " pool of every balancer")
      return
    }
    do {
      try file.write(to: configPath)
      onWrite?(file)
    } catch {
      log?("could not write \(configPath): \(error)")
    }
  }

  private func change(to file: ServersFile) throws(ServersFile.Invalid) -> (
    added: [ServerAddress], removed: [ServerAddress]
  ) {
    let fresh = Set(file.servers).subtracting(entries.map(\.address))
    let checked = try validate(file, fresh: fresh)
    let launched = Set(processesToStart(file, fresh: fresh))
    let change = try broker.reconfigure(
      file.servers, startingDown: launcher == nil ? [] : fresh, launched: launched,
      checkedFirst: launcher == nil && checksJoiningServers ? fresh : [], now: clock(),
      checked: checked)
    entries = file.entries
    for server in change.added where launched.contains(server) {
      launcher?.start(server)
    }
    return (change.added, change.removed)
  }

  /// The servers of `file` whose process this balancer starts when it takes the file: the new
  /// (`fresh`) bare ports whose process it does not run already; none without a launcher.
  private func processesToStart(_ file: ServersFile, fresh: Set<ServerAddress>) -> [ServerAddress] {
    guard let launcher else { return [] }
    return file.servers.filter {
      $0.host == nil && fresh.contains($0) && !launcher.isSupervising($0)
    }
  }

  /// Why the pool `file` describes cannot be used: a name that does not resolve, two entries
  /// that are one server, the balancer's own address; and, where this balancer starts servers,
  /// a new local port that something else listens on (its server could never listen: the same
  /// file is refused at start), or two entries on this machine at the port of a process it runs
  /// (which listens on every address). `fresh`: its servers that the pool does not list yet.
  /// Returns the servers' identities.
  private func validate(_ file: ServersFile, fresh: Set<ServerAddress>) throws(ServersFile.Invalid)
    -> [ServerAddress: ServerIdentity]
  {
    let identities = try broker.identities(of: file.servers)
    guard let launcher else { return identities }
    for server in processesToStart(file, fresh: fresh) where !isPortFree(server.port) {
      throw ServersFile.Invalid(
        message: "port \(server.port) is already in use: the balancer cannot start a server there")
    }
    var onThisMachine: [Int: ServerAddress] = [:]
    for server in file.servers
    where identities[server]?.isOnThisMachine ?? false
      && launcher.isSupervising(ServerAddress(port: server.port))
    {
      if let other = onThisMachine[server.port] {
        throw ServersFile.Invalid(
          message:
            "\(other) and \(server) are the same server (the process this balancer runs on port"
            + " \(server.port) listens on every address)")
      }
      onThisMachine[server.port] = server
    }
    return identities
  }

  // MARK: - Routes

  /// `GET /rep`.
  public func replicas() -> HTTPResponse {
    respond(.ok, successBody())
  }

  /// `POST /add` with `{"n": 2, "hostnames": ["S4", "S5"]}`.
  public func add(body: [UInt8]) -> HTTPResponse {
    let request: (n: Int, names: [String])
    switch parse(body, verb: "add", example: #"{"n": 2, "hostnames": ["S4", "S5"]}"#) {
    case .failure(let message): return failure(message)
    case .success(let value): request = value
    }
    if let conflict = pendingEditConflict() { return conflict }
    guard request.n <= maxAddedAtOnce else {
      return failure("<Error> n may be at most \(maxAddedAtOnce) in one request")
    }
    guard request.names.count <= request.n else {
      return failure("<Error> Length of hostname list is more than newly added instances")
    }
    var taken = Set(entries.map(\.address))
    var added: [ServerEntry] = []
    for name in request.names {
      if entries.contains(where: { Self.names(name, $0) }) {
        return failure("<Error> \(name) is already in the pool")
      }
      if let address = ServerAddress(parsing: name) {
        // Without a launcher the server is started by someone else: it listens there already.
        guard !taken.contains(address),
          address.host != nil || launcher?.isSupervising(address) ?? true
            || isPortFree(address.port)
        else {
          return failure("<Error> port \(address.port) is already taken")
        }
        taken.insert(address)
        added.append(ServerEntry(address: address))
      } else {
        guard !ServersFile.looksLikeAddress(name) else {
          return failure("<Error> '\(name)' is not a port from 1 to 65535 or host:port")
        }
        guard ServersFile.isValidName(name) else {
          return failure("<Error> '\(name)' is not a usable name (1 to 64 printable characters)")
        }
        guard let port = nextFreePort(after: taken) else {
          return failure("<Error> no free port left for \(name)")
        }
        taken.insert(ServerAddress(port: port))
        added.append(ServerEntry(name: name, address: ServerAddress(port: port)))
      }
    }
    for _ in request.names.count..<request.n {
      guard let port = nextFreePort(after: taken) else {
        return failure("<Error> no free port left")
      }
      taken.insert(ServerAddress(port: port))
      added.append(ServerEntry(address: ServerAddress(port: port)))
    }
    let file = ServersFile(entries: entries + added)
    if let failed = check(file) ?? save(file) { return failed }
    _ = try? apply(file)
    log?("added " + added.map(\.displayName).joined(separator: ", "))
    return respond(.ok, successBody())
  }

  /// `DELETE /rm` with `{"n": 1, "hostnames": ["S4"]}`.
  public func remove(body: [UInt8]) -> HTTPResponse {
    let request: (n: Int, names: [String])
    switch parse(body, verb: "remove", example: #"{"n": 1, "hostnames": ["S4"]}"#) {
    case .failure(let message): return failure(message)
    case .success(let value): request = value
    }
    if let conflict = pendingEditConflict() { return conflict }
    guard request.names.count <= request.n else {
      return failure("<Error> Length of hostname list is more than removable instances")
    }
    guard request.n < entries.count else {
      return failure(
        "<Error> cannot remove \(request.n) of \(entries.count) replicas: at least one must remain")
    }
    var chosen: [ServerEntry] = []
    for name in request.names {
      guard let entry = entries.first(where: { Self.names(name, $0) }) ?? sameServer(as: name)
      else { return failure("<Error> \(name) is not in the pool") }
      guard !chosen.contains(entry) else {
        return failure("<Error> \(entry.displayName) is named twice in hostnames")
      }
      chosen.append(entry)
    }
    // Then others of the balancer's choosing: the most recently added first.
    for entry in entries.reversed() where chosen.count < request.n && !chosen.contains(entry) {
      chosen.append(entry)
    }
    let file = ServersFile(entries: entries.filter { !chosen.contains($0) })
    if let failed = check(file) ?? save(file) { return failed }
    _ = try? apply(file)
    log?("removed " + chosen.map(\.displayName).joined(separator: ", "))
    return respond(.ok, successBody())
  }

  // MARK: - Helpers

  /// Whether `name`, from a request's hostnames, names `entry`: its name, its address as
  /// servers.json writes it, or that address written another way (`05002` for `5002`).
  private static func names(_ name: String, _ entry: ServerEntry) -> Bool {
    entry.displayName == name || entry.address.description == name
      || ServerAddress(parsing: name) == entry.address
  }

  /// The replica that `name`, an address, is another name for (`127.0.0.1:5002` or
  /// `localhost:5002` for `5002`: the same port on the same machine, as /add and servers.json
  /// tell them apart); nil if it names none, or is no address.
  private func sameServer(as name: String) -> ServerEntry? {
    guard let address = ServerAddress(parsing: name),
      case .success(let named) = broker.identifier.identity(of: address)
    else { return nil }
    return entries.first { broker.identity(of: $0.address)?.overlaps(named) ?? false }
  }

  private func parse(_ body: [UInt8], verb: String, example: String) -> Result<
    (n: Int, names: [String]), Message
  > {
    guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
      return .failure(Message(text: "<Error> the body must be a JSON object like \(example)"))
    }
    let unknown = Set(object.keys).subtracting(["n", "hostnames"])
    guard unknown.isEmpty else {
      return .failure(
        Message(text: "<Error> unknown field \(unknown.sorted().joined(separator: ", "))"))
    }
    // true and 1.0 bridge to Int too; neither is a whole number written as one.
    guard let value = object["n"], !ServersFile.isJSONBoolean(value),
      !ServersFile.isJSONFractional(value), let n = value as? Int, n > 0
    else {
      return .failure(
        Message(text: "<Error> n must be a positive whole number of servers to \(verb)"))
    }
    var names: [String] = []
    if let list = object["hostnames"], !(list is NSNull) {
      guard let strings = list as? [String], strings.allSatisfy({ !$0.isEmpty }) else {
        return .failure(Message(text: "<Error> hostnames must be a list of non-empty strings"))
      }
      guard Set(strings).count == strings.count else {
        return .failure(Message(text: "<Error> hostnames lists a name twice"))
      }
      names = strings
    }
    return .success((n, names))
  }

  /// The `409` for a servers.json whose hand edit could not be loaded (after taking an edit not
  /// yet checked); nil when the file may be rewritten.
  private func pendingEditConflict() -> HTTPResponse? {
    guard let problem = beforeChange?() else { return nil }
    return respond(
      .conflict,
      ReplicasFailure(
        "<Error> servers.json has an edit that could not be loaded: \(problem); fix or revert it"
          + " first (nothing was changed)"))
  }

  /// A failure message for the client (an Error so that it can ride in a Result).
  private struct Message: Error {
    let text: String
  }

  private func failure(_ message: Message) -> HTTPResponse { failure(message.text) }

  private func failure(_ message: String) -> HTTPResponse {
    respond(.badRequest, ReplicasFailure(message))
  }

  /// The next port above every local port in use (and above 5000) that nothing listens on.
  private func nextFreePort(after taken: Set<ServerAddress>) -> Int? {
    let localPorts = taken.filter { $0.host == nil }.map(\.port)
    var port = max(5000, localPorts.max() ?? 5000) + 1
    while port <= 65535 {
      if !taken.contains(ServerAddress(port: port)) && isPortFree(port) { return port }
      port += 1
    }
    return nil
  }

  /// Why the pool `file` describes cannot be used, as the response to give; nil if it can.
  private func check(_ file: ServersFile) -> HTTPResponse? {
    do {
      _ = try validate(file, fresh: Set(file.servers).subtracting(entries.map(\.address)))
      return nil
    } catch {
      return failure("<Error> \(error.message)")
    }
  }

  /// Writes servers.json; on failure, the response to give (and nothing changes).
  private func save(_ file: ServersFile) -> HTTPResponse? {
    guard let configPath else { return nil }
    do {
      try file.write(to: configPath)
      onWrite?(file)
      return nil
    } catch {
      return respond(
        .internalServerError, ReplicasFailure("<Error> could not write \(configPath): \(error)"))
    }
  }

  private func successBody() -> ReplicasReport {
    ReplicasReport(
      replicas: entries.map { entry in
        ReplicasReport.Replica(
          name: entry.displayName, server: entry.address.description,
          state: broker.stateName(entry.address), leases: broker.store.servedCount(entry.address),
          restarts: entry.address.host == nil ? launcher?.restartCount(entry.address) : nil)
      })
  }

  private func respond(_ status: HTTPStatus, _ document: some JSONDocument) -> HTTPResponse {
    .json(status, document.encoded())
  }
}
