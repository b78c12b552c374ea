import Balancing
import HTTPCore
import XCTest

/// Which entries of a pool name one server process (found by a user's audit: a bare port and
/// `127.0.0.2:PORT` were taken for two servers, and one process was handed to two clients).
final class ServerIdentityTests: XCTestCase {
  /// Literals resolve to themselves, `localhost` to both loopbacks; this machine's addresses are
  /// the two loopbacks and one interface address.
  private let identifier = ServerIdentifier(
    resolve: { host in
      if host == "localhost" { return ["127.0.0.1", "::1"] }
      let address = AddressResolution.normalise(host)
      return address.contains(".") || address.contains(":") ? [address] : []
    }, localAddresses: ["127.0.0.1", "::1", "10.1.2.3"])

  private func entries(_ texts: [String]) -> [ServerAddress] {
    texts.map { ServerAddress(parsing: $0)! }
  }

  private func refusal(_ texts: [String], balancerPort: Int? = nil) -> String? {
    do {
      _ = try identifier.identities(of: entries(texts), balancerPort: balancerPort)
      return nil
    } catch {
      return error.message
    }
  }

  /// A bare port is a server the balancer starts (or one started for it) listening on every
  /// address of this machine: any loopback address at that port reaches the same process.
  func testABarePortIsTheSameServerAsAnyLoopbackAddressAtThatPort() {
    for other in ["127.0.0.2:5002", "127.255.0.9:5002", "[::ffff:127.0.0.2]:5002", "0.0.0.0:5002"] {
      XCTAssertEqual(
        refusal(["5002", other]), "\(other) and 5002 are the same server", other)
      XCTAssertEqual(
        refusal([other, "5002"]), "5002 and \(other) are the same server", other)
    }
    XCTAssertEqual(
      refusal(["127.0.0.2:5002", "0.0.0.0:5002"]),
      "0.0.0.0:5002 and 127.0.0.2:5002 are the same server")
  }

  /// Servers bound to one loopback address each are two servers, as before.
  func testTwoSpecificLoopbackAddressesAreTwoServers() {
    XCTAssertNil(refusal(["127.0.0.1:5002", "127.0.0.2:5002"]))
    XCTAssertNil(refusal(["127.0.0.2:5002", "127.0.0.3:5002"]))
    XCTAssertNil(refusal(["5002", "127.0.0.2:5003"]), "another port is another server")
  }

  /// Every spelling of this machine at the balancer's own port is the balancer.
  func testAnyLoopbackAddressAtTheBalancersPortIsTheBalancer() {
    for entry in ["8001", "127.0.0.1:8001", "127.0.0.2:8001", "localhost:8001", "10.1.2.3:8001"] {
      XCTAssertEqual(
        refusal([entry], balancerPort: 8001),
        "\(entry) is the balancer's own address (port 8001 on this machine)", entry)
    }
    XCTAssertNil(refusal(["10.9.9.9:8001"], balancerPort: 8001), "another machine")
  }

  /// The spellings the README lists stay one server.
  func testTheReadmesSpellingsAreOneServer() {
    let spellings = ["5002", "localhost:5002", "127.0.0.1:5002", "[::1]:5002", "10.1.2.3:5002"]
    for first in spellings {
      for second in spellings where second != first {
        XCTAssertNotNil(refusal([first, second]), "\(first), \(second)")
      }
    }
  }
}
