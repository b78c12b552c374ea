import Balancing
import Foundation
import HTTPCore
import RedisClient

/// Keeps the pool the same on every balancer that shares the books: a change made at one (a
/// servers.json edit, `/add`, `/rm`) is published to Redis as servers.json text with a version,
/// and the others, which look for a new version four times a second, adopt it. A balancer that
/// starts takes the pool already in Redis, if there is one, over its own servers.json.
public final class SharedMembership {
  public let store: SharedLeaseStore
  /// Applies a pool published by another balancer.
  public var adopt: ((ServersFile) -> Void)?
  /// This balancer's pool, published at the start if Redis holds none.
  public var localPool: (() -> ServersFile)?
  public var log: ((String) -> Void)?
  /// Called once, after the first read of the shared pool (and its adoption).
  public var onSynced: (() -> Void)?
  private var version: Int64 = 0
  /// The pool's text as last read from or written to Redis.
  private var lastText: String?
  /// Changes of this balancer on their way to Redis.
  private var publishing = 0
  /// A pool that could not be sent (Redis away), to send again first: a change, or this
  /// balancer's first pool (offered only while Redis holds none).
  private var unsent: (text: String, first: Bool)?
  /// Whether the pool in Redis has been read once (changes are published only after that).
  public private(set) var isSynced = false
  private var timer: TimerID?

  public init(store: SharedLeaseStore) {
    self.store = store
  }

  /// Reads the shared pool now, then four times a second.
  public func start(on loop: EventLoop) {
    poll()
    timer = loop.schedule(every: 0.25) { [weak self] in self?.poll() }
  }

  public func stop(on loop: EventLoop) {
    if let timer { loop.cancel(timer) }
    timer = nil
  }

  /// Publishes a change made at this balancer (nothing if it is the pool last read from or
  /// written to Redis, such as a pool just adopted and written to servers.json).
  public func publish(_ file: ServersFile) {
    guard isSynced else { return }  // the first read publishes the local pool if need be
    let text = file.json
    guard text != lastText else { return }
    send(text, first: false)
  }

  /// Sends a pool: a change made here, or (`first`) this balancer's own pool because Redis held
  /// none when it looked, which must not replace one another balancer published meanwhile.
  private func send(_ text: String, first: Bool) {
    lastText = text
    unsent = nil
    publishing += 1
    store.run(SharedScripts.publishConfig, [text, first ? "first" : "change"]) {
      [weak self] result in
      guard let self else { return }
      self.publishing -= 1
      switch result {
      case .success(let reply):
        if let version = reply.int, version > 0 { self.version = version }
      // (-1: another balancer's pool came first; the next read adopts it.)
      case .failure:
        // Redis is away: the pool is sent again before the pool is next read, so that a change
        // is not lost to the older pool Redis comes back with.
        self.unsent = (text, first)
      }
    }
  }

  private func poll() {
    if let unsent {
      guard publishing == 0 else { return }
      return send(unsent.text, first: unsent.first)
    }
    store.run(SharedScripts.readConfig, []) { [weak self] result in
      guard let self, case .success(let reply) = result, let parts = reply.array, parts.count >= 1,
        let version = parts[0].int
      else { return }
      let text = parts.count > 1 ? parts[1].string : nil
      let first = !self.isSynced
      self.isSynced = true
      defer { if first { self.onSynced?() } }
      guard let text else {
        // None yet, or Redis came back without its data: this balancer's pool is the one.
        if let local = self.localPool?() { self.send(local.json, first: true) }
        return
      }
      // A read answered while a change of ours is on its way predates it: wait for the next.
      guard self.publishing == 0 else { return }
      // The pool in Redis is the one: adopted whenever it differs from this balancer's, so
      // that two changes made at once at two balancers end with the same pool everywhere.
      let local = self.localPool?().json
      guard version != self.version || text != local else { return }
      let known = version == self.version && text == self.lastText
      self.version = version
      self.lastText = text
      guard text != local else { return }
      do {
        let file = try ServersFile.parse(Data(text.utf8))
        self.adopt?(file)
      } catch {
        if !known {
          self.log?("the shared pool (version \(version)) is not valid, ignored: \(error)")
        }
      }
    }
  }
}
