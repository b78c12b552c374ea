/// What a client asking for a server gets.
public enum ClaimAnswer: Sendable {
  /// A server, with the lease the redirect carries.
  case lease(Lease)
  /// No server, for this reason (the client gets 503 with Retry-After).
  case unavailable(String)
  /// No server for this client now: it holds too many unused leases (429 with Retry-After).
  case tooManyLeases(String)
}

/// One client asking for a server (`GET /`), as the dispatchers see it: no HTTP, just who asks,
/// how to answer, and whether the client is still there.
///
/// The answer goes to a closure, or, in a subclass of this module, to its `deliver(_:waited:)`
/// (each of the balancer's redirects is one such object: no closure context to allocate).
public class ServerClaim {
  /// The key a hashing policy uses: the client's `?key=` unless empty, else its address.
  public let key: String
  /// The client's numeric address.
  public let client: String
  /// Whether the claim waited in line before it was answered.
  public private(set) var waited = false
  /// Called if the client leaves before it is answered; set by the dispatcher that parks it.
  private var onAbandon: (() -> Void)?
  /// Called once the claim is settled, answered or abandoned; set by whoever counts open claims.
  private var onSettled: (() -> Void)?
  private let deliverAnswer: ((ClaimAnswer, _ waited: Bool) -> Bool)?
  private var isAnswered = false

  /// - Parameters:
  ///   - key: the client's `?key=`, if it gave one (else, or if it is empty, the key is its
  ///     address).
  ///   - deliver: sends the answer to the client (and whether it waited in line for it);
  ///     returns false if the client is gone.
  public init(
    client: String, key: String?, deliver: @escaping (ClaimAnswer, _ waited: Bool) -> Bool
  ) {
    self.key = Self.key(key, of: client)
    self.client = client
    deliverAnswer = deliver
  }

  /// For a subclass that sends the answer itself, by overriding `deliver(_:waited:)`.
  init(client: String, key: String?) {
    self.key = Self.key(key, of: client)
    self.client = client
    deliverAnswer = nil
  }

  /// The key a hashing policy uses for `client`, which gave `key`.
  static func key(_ key: String?, of client: String) -> String {
    key.flatMap { $0.isEmpty ? nil : $0 } ?? client
  }

  /// Sends the answer to the client (and whether it waited in line for it); returns false if
  /// the client is gone. Called once, by `answer`.
  func deliver(_ answer: ClaimAnswer, waited: Bool) -> Bool {
    guard let deliverAnswer else {
      preconditionFailure("a ServerClaim made without a delivery must override deliver(_:waited:)")
    }
    return deliverAnswer(answer, waited)
  }

  /// Whether the claim still waits for its answer.
  public var isOpen: Bool { !isAnswered }

  /// The claim waits in line: `onAbandon` runs if the client leaves before it is answered.
  public func park(onAbandon: @escaping () -> Void) {
    waited = true
    self.onAbandon = onAbandon
  }

  /// `settled` runs once the claim is answered or abandoned (at once if it already is).
  public func whenSettled(_ settled: @escaping () -> Void) {
    guard !isAnswered else { return settled() }
    onSettled = settled
  }

  /// Sends the answer, once. Returns false if the client was gone (or had its answer already).
  @discardableResult
  public func answer(_ answer: ClaimAnswer) -> Bool {
    guard !isAnswered else { return false }
    isAnswered = true
    onAbandon = nil
    settle()
    return deliver(answer, waited: waited)
  }

  /// The client left: it is answered with nothing, and its dispatcher forgets it.
  public func abandon() {
    guard !isAnswered else { return }
    isAnswered = true
    let abandoned = onAbandon
    onAbandon = nil
    settle()
    abandoned?()
  }

  private func settle() {
    let settled = onSettled
    onSettled = nil
    settled?()
  }
}
