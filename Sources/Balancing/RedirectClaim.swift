import HTTPCore

/// A `GET /` waiting for its server: the claim, with what the balancer needs to answer it (the
/// request's method and target, the host for the redirect, when it arrived, its responder), in
/// one object per request.
final class RedirectClaim: ServerClaim {
  private let balancer: Balancer
  /// The request's method and target, for the log and the redirect's query.
  let method: String
  let target: String
  /// The host name the client used for the balancer, which the redirect names.
  let host: String
  /// When the request arrived (monotonic nanoseconds), for the wait it had.
  let arrived: UInt64
  let responder: HTTPResponder

  init(
    _ request: HTTPRequest, key: String?, host: String, arrived: UInt64,
    responder: HTTPResponder, balancer: Balancer
  ) {
    method = request.method
    target = request.target
    self.host = host
    self.arrived = arrived
    self.responder = responder
    self.balancer = balancer
    super.init(client: request.remoteAddress, key: key)
  }

  override func deliver(_ answer: ClaimAnswer, waited: Bool) -> Bool {
    balancer.answer(self, with: answer, waited: waited)
  }

  /// The client went away before its answer: the claim is abandoned, its dispatcher forgets it.
  func clientLeft() {
    guard isOpen else { return }
    abandon()
    balancer.log?("\(method) \(target) client left while waiting")
  }
}
