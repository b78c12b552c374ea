import Glibc
import HTTPCore

/// One balancer a factorial server reports to: a host (a name, an IPv4 address or an IPv6
/// address, kept without brackets) and a port. Written `HOST:PORT`, an IPv6 address in brackets:
/// `127.0.0.1:8001`, `lb1.example:8001`, `[::1]:8001`.
public struct BalancerAddress: Hashable, Sendable, CustomStringConvertible {
  public let host: String
  public let port: Int

  /// `host` may carry the brackets of an IPv6 address (`[::1]`); they are dropped.
  public init(host: String, port: Int) {
    self.host =
      host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    self.port = port
  }

  /// Reads `HOST:PORT` (an IPv6 address as `[ADDRESS]:PORT`); the reason if it is not one.
  public static func parse(_ text: String) -> Result<BalancerAddress, Reason> {
    let host: Substring
    let portText: Substring
    if text.hasPrefix("[") {
      guard let close = text.firstIndex(of: "]") else {
        return .failure(Reason("no ']' closes the IPv6 address"))
      }
      host = text[text.index(after: text.startIndex)..<close]
      guard isIPv6Address(host) else {
        return .failure(Reason("'\(host)' between brackets is not an IPv6 address"))
      }
      let rest = text[text.index(after: close)...]
      guard rest.first == ":" else { return .failure(Reason("no ':PORT' after the address")) }
      portText = rest.dropFirst()
    } else {
      guard let colon = text.lastIndex(of: ":") else {
        return .failure(Reason("no ':PORT'"))
      }
      host = text[..<colon]
      portText = text[text.index(after: colon)...]
      guard !host.isEmpty else { return .failure(Reason("no host before ':'")) }
      guard !host.contains(":") || !host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." })
      else {
        return .failure(Reason("an IPv6 address goes in brackets, as in [::1]:8001"))
      }
      guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-_".contains($0)) })
      else {
        return .failure(Reason("'\(host)' is not a host name or address"))
      }
    }
    guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
      let port = Int(portText), (1...65535).contains(port)
    else {
      return .failure(Reason("the port must be a number from 1 to 65535"))
    }
    return .success(BalancerAddress(host: String(host), port: port))
  }

  /// Whether `text` is an IPv6 address (`inet_pton` reads it), with an optional zone after `%`
  /// (`fe80::1%eth0`).
  static func isIPv6Address(_ text: Substring) -> Bool {
    let address = text.prefix { $0 != "%" }
    if address.count < text.count {
      let zone = text.dropFirst(address.count + 1)
      guard !zone.isEmpty,
        zone.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
      else { return false }
    }
    var bytes = in6_addr()
    return inet_pton(AF_INET6, String(address), &bytes) == 1
  }

  /// Why a text is not `HOST:PORT`.
  public struct Reason: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
  }

  /// The host as a URL or a Host header names it: an IPv6 address in brackets.
  public var urlHost: String { host.contains(":") ? "[\(host)]" : host }

  /// `HOST:PORT`, as `--balancer` takes it.
  public var description: String { "\(urlHost):\(port)" }

  /// Whether the balancer is on this machine: `localhost`, or a loopback or unspecified address
  /// (the rules the balancer applies to its servers).
  public var isOnThisMachine: Bool {
    host.lowercased() == "localhost"
      || AddressResolution.isLoopback(AddressResolution.normalise(host))
  }

  /// Two addresses with one identity are one balancer: the same port and the same host as
  /// written (case and IPv6 forms aside), every way of naming this machine counting as one.
  /// Names are not resolved.
  public var identity: String {
    let machine = isOnThisMachine ? "this machine" : AddressResolution.normalise(host)
    return "\(machine) port \(port)"
  }
}
