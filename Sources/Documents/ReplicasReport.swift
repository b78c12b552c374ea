/// The answer of `GET /rep`, `POST /add` and `DELETE /rm`, shaped as the second document's
/// balancer answered: `{"message": {"N": 3, "replicas": [...]}, "status": "successful"}`, with
/// each replica's details beside it; or `{"message": "<Error> ...", "status": "failure"}`.
public struct ReplicasReport: JSONDocument, Equatable {
  /// How many replicas there are and their names.
  public struct Summary: Codable, Sendable, Equatable {
    public var count: Int
    public var replicas: [String]

    public init(replicas: [String]) {
      count = replicas.count
      self.replicas = replicas
    }

    enum CodingKeys: String, CodingKey {
      case count = "N"
      case replicas
    }
  }

  /// One replica, with the same field names as `/status` uses for a server: its name, its
  /// address (`server`), its `state`, and how many leases it was handed (`leases`).
  public struct Replica: Codable, Sendable, Equatable {
    public var name: String
    public var server: String
    /// As in /status: `free`, `leased`, `down`, or `removed` (no longer in the pool).
    public var state: String
    public var leases: Int
    /// How many times the balancer restarted its process (servers it supervises only).
    public var restarts: Int?

    public init(name: String, server: String, state: String, leases: Int, restarts: Int?) {
      self.name = name
      self.server = server
      self.state = state
      self.leases = leases
      self.restarts = restarts
    }
  }

  public var message: Summary
  public var details: [Replica]
  public var status = "successful"

  public init(replicas: [Replica]) {
    message = Summary(replicas: replicas.map(\.name))
    details = replicas
  }
}

/// A refused change to the replicas: `{"message": "<Error> ...", "status": "failure"}`.
public struct ReplicasFailure: JSONDocument, Equatable {
  public var message: String
  public var status = "failure"

  public init(_ message: String) { self.message = message }
}
