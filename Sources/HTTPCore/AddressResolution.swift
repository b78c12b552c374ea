import Glibc

/// Numeric addresses for names, and this machine's own addresses: what is needed to tell that
/// two ways of naming a server (`localhost:5002`, `127.0.0.1:5002`, `5002`) are one server.
/// Resolution blocks (getaddrinfo): call it when loading a configuration, not per request.
public enum AddressResolution {
  /// The numeric addresses `host` resolves to (a name, an IPv4 literal, or an IPv6 literal with
  /// or without brackets), normalised by `normalise`; empty if it does not resolve.
  public static func resolve(_ host: String) -> [String] {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_family = AF_UNSPEC
    var result: UnsafeMutablePointer<addrinfo>?
    let name =
      host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    guard getaddrinfo(name, nil, &hints, &result) == 0 else { return [] }
    defer { freeaddrinfo(result) }
    var addresses: [String] = []
    var next = result
    while let info = next {
      if let text = numericHost(info.pointee.ai_addr, info.pointee.ai_addrlen),
        !addresses.contains(text)
      {
        addresses.append(text)
      }
      next = info.pointee.ai_next
    }
    return addresses
  }

  /// The addresses of this machine's interfaces (loopback included), normalised.
  public static func localAddresses() -> Set<String> {
    var first: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&first) == 0 else { return ["127.0.0.1", "::1"] }
    defer { freeifaddrs(first) }
    var addresses: Set<String> = ["127.0.0.1", "::1"]
    var next = first
    while let entry = next {
      if let address = entry.pointee.ifa_addr {
        let family = Int32(address.pointee.sa_family)
        let length =
          family == AF_INET
          ? socklen_t(MemoryLayout<sockaddr_in>.size)
          : family == AF_INET6 ? socklen_t(MemoryLayout<sockaddr_in6>.size) : 0
        if length > 0, let text = numericHost(address, length) { addresses.insert(text) }
      }
      next = entry.pointee.ifa_next
    }
    return addresses
  }

  /// An address as text in one form: no brackets, no IPv6 zone, IPv4-mapped IPv6 as IPv4,
  /// lower case.
  public static func normalise(_ address: String) -> String {
    var text = address.lowercased()
    if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
    if let zone = text.firstIndex(of: "%") { text = String(text[..<zone]) }
    if text.hasPrefix("::ffff:"), text.dropFirst(7).contains(".") {
      text = String(text.dropFirst(7))
    }
    return text
  }

  /// Whether `address` (normalised) is the usual loopback (127.0.0.1, ::1) or unspecified
  /// address: one that means "this machine" for a server listening on all interfaces. Other
  /// 127.x addresses are distinct: a server may listen on 127.0.0.2 alone.
  public static func isLoopback(_ address: String) -> Bool {
    address == "127.0.0.1" || address == "::1" || address == "0.0.0.0" || address == "::"
  }

  /// Whether `address` (normalised) is in the loopback ranges, 127.0.0.0/8 or ::1: an address of
  /// this machine whichever interfaces it has. (`isLoopback` names only the usual ones, as a
  /// local server's reports come from them.)
  public static func isInLoopbackRange(_ address: String) -> Bool {
    address == "::1" || address.hasPrefix("127.") && !address.contains(":")
  }

  private static func numericHost(_ address: UnsafePointer<sockaddr>, _ length: socklen_t)
    -> String?
  {
    var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
    guard getnameinfo(address, length, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0
    else { return nil }
    return normalise(String(cString: host))
  }
}
