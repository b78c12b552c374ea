/// A factorial server's answer to the balancer's claim check, `POST /revoke?lease=<token>`:
/// `revoked` (the lease's job had not started; it never will) or `started` (its client came; the
/// lease runs on).
public struct LeaseRevocation: JSONDocument, Equatable {
  /// What became of the lease: `revoked` or `started`.
  public enum State: String, Codable, Sendable {
    case revoked, started
  }

  public var lease: String
  public var state: State

  public init(lease: String, state: State) {
    self.lease = lease
    self.state = state
  }
}
