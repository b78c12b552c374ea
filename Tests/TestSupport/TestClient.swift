import HTTPCore

/// The tests' client is the core's blocking client.
public typealias TestClient = BlockingHTTPClient
public typealias TestURL = HTTPURL

/// A failure raised by test helpers.
public struct TestFailure: Error, CustomStringConvertible {
  public let description: String
  public init(_ description: String) { self.description = description }
}
