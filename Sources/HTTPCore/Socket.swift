import CEpoll
import Glibc

/// A failed system call, or an address that cannot be used.
public enum SocketError: Error, CustomStringConvertible, Equatable {
  case system(String, Int32)
  case badAddress(String)
  case addressInUse(port: Int)

  public var description: String {
    switch self {
    case .system(let call, let code): return "\(call) failed: \(String(cString: strerror(code)))"
    case .badAddress(let address): return "cannot resolve address '\(address)'"
    case .addressInUse(let port): return "port \(port) is already in use"
    }
  }
}

/// An IPv4 or IPv6 socket address, resolved once (numeric hosts or names via getaddrinfo).
public struct SocketAddress: Sendable, CustomStringConvertible {
  fileprivate var storage = sockaddr_storage()
  fileprivate var length: socklen_t = 0

  /// Resolves `host` (a name, an IPv4 or an IPv6 literal) and `port`.
  public init(host: String, port: Int) throws {
    guard (0...65535).contains(port) else { throw SocketError.badAddress("\(host):\(port)") }
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_family = AF_UNSPEC
    var result: UnsafeMutablePointer<addrinfo>?
    let name =
      host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    guard getaddrinfo(name, String(port), &hints, &result) == 0, let info = result else {
      throw SocketError.badAddress("\(host):\(port)")
    }
    defer { freeaddrinfo(result) }
    withUnsafeMutableBytes(of: &storage) { target in
      target.copyMemory(
        from: UnsafeRawBufferPointer(
          start: info.pointee.ai_addr, count: Int(info.pointee.ai_addrlen)))
    }
    length = info.pointee.ai_addrlen
  }

  /// The address family (AF_INET or AF_INET6).
  public var family: Int32 { Int32(storage.ss_family) }

  public var description: String {
    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
    var copy = storage
    return withUnsafePointer(to: &copy) { pointer in
      pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
        var service = [CChar](repeating: 0, count: 16)
        getnameinfo(
          address, length, &buffer, socklen_t(buffer.count), &service, socklen_t(service.count),
          NI_NUMERICHOST | NI_NUMERICSERV)
        let host = String(cString: buffer)
        let port = String(cString: service)
        return family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
      }
    }
  }

  func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    withUnsafePointer(to: storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
    }
  }
}

/// Small wrappers over the socket calls the core needs.
public enum Socket {
  /// Opens a non-blocking listening socket bound to `host:port` (port 0 picks a free one).
  public static func listen(host: String, port: Int, backlog: Int32 = 4096) throws -> Int32 {
    let address = try SocketAddress(host: host, port: port)
    let fd = cepoll_tcp_socket(address.family)
    guard fd >= 0 else { throw SocketError.system("socket", errno) }
    var on: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
    let bound = address.withSockaddr { bind(fd, $0, $1) }
    if bound != 0 {
      let code = errno
      close(fd)
      if code == EADDRINUSE { throw SocketError.addressInUse(port: port) }
      throw SocketError.system("bind \(address)", code)
    }
    guard Glibc.listen(fd, backlog) == 0 else {
      let code = errno
      close(fd)
      throw SocketError.system("listen", code)
    }
    return fd
  }

  /// Starts a non-blocking connect; the socket becomes writable when it completes or fails.
  public static func connect(to address: SocketAddress) throws -> Int32 {
    let fd = cepoll_tcp_socket(address.family)
    guard fd >= 0 else { throw SocketError.system("socket", errno) }
    let result = address.withSockaddr { Glibc.connect(fd, $0, $1) }
    if result != 0 && errno != EINPROGRESS {
      let code = errno
      close(fd)
      throw SocketError.system("connect \(address)", code)
    }
    setNoDelay(fd)
    return fd
  }

  /// Accepts one pending connection, or returns nil when none is waiting (or on EMFILE etc.).
  public static func accept(_ listener: Int32) -> (fd: Int32, error: Int32) {
    let fd = cepoll_accept(listener)
    return (fd, fd < 0 ? errno : 0)
  }

  /// Whether nothing listens on `port` on this machine (it can be bound on all interfaces).
  public static func isPortFree(_ port: Int) -> Bool {
    guard let fd = try? listen(host: "0.0.0.0", port: port, backlog: 1) else { return false }
    close(fd)
    return true
  }

  /// `count` distinct ports on 127.0.0.1 that were free a moment ago: each is held until all
  /// are chosen, then released for the caller's programs to bind.
  public static func freePorts(_ count: Int) throws -> [Int] {
    let sockets = try (0..<count).map { _ in try listen(host: "127.0.0.1", port: 0, backlog: 1) }
    defer { for fd in sockets { close(fd) } }
    return sockets.map(localPort)
  }

  /// The port a socket is bound to.
  public static func localPort(_ fd: Int32) -> Int {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    withUnsafeMutablePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
    }
    // sin_port and sin6_port both sit at offset 2, in network byte order.
    return withUnsafeBytes(of: &storage) {
      Int(UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)))
    }
  }

  /// The numeric IP address of a connected socket's peer ("127.0.0.1", "::1"), or "" if unknown.
  public static func peerAddress(_ fd: Int32) -> String { numericAddress(of: fd, getpeername) }

  /// The numeric IP address a socket is bound to ("0.0.0.0", "::", "127.0.0.1"), or "" if
  /// unknown.
  public static func localAddress(_ fd: Int32) -> String { numericAddress(of: fd, getsockname) }

  /// The address `query` (getpeername or getsockname) gives for `fd`, as numeric text.
  private static func numericAddress(
    of fd: Int32,
    _ query: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
  ) -> String {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let result = withUnsafeMutablePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { query(fd, $0, &length) }
    }
    guard result == 0 else { return "" }
    var host = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
    let named = withUnsafePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        getnameinfo($0, length, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST)
      }
    }
    return named == 0 ? String(cString: host) : ""
  }

  /// How reading a non-blocking socket dry ended.
  public enum ReadEnd: Equatable, Sendable {
    /// Nothing more to read now (or the read limit was reached; epoll reports the rest).
    case drained
    /// The peer closed its side.
    case endOfStream
    /// The read failed with this errno.
    case failed(Int32)
  }

  /// Reads what `fd` has into `input`, `scratch` at a time, at most `maxReads` times. A short
  /// read means the socket is dry for now.
  public static func readAvailable(
    _ fd: Int32, into input: inout [UInt8], scratch: UnsafeMutableRawBufferPointer,
    maxReads: Int = .max
  ) -> ReadEnd {
    for _ in 0..<maxReads {
      let count = read(fd, scratch.baseAddress, scratch.count)
      if count > 0 {
        input.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
        if count < scratch.count { return .drained }
      } else if count == 0 {
        return .endOfStream
      } else if errno == EAGAIN || errno == EINTR {
        return .drained
      } else {
        return .failed(errno)
      }
    }
    return .drained
  }

  /// How many bytes written to `fd` its peer has not acknowledged yet (the send queue), or nil.
  public static func unsentBytes(_ fd: Int32) -> Int? {
    var count: Int32 = 0
    guard ioctl(fd, UInt(TIOCOUTQ), &count) == 0 else { return nil }
    return Int(count)
  }

  /// The error left on a socket by a non-blocking connect (0 if it succeeded).
  public static func pendingError(_ fd: Int32) -> Int32 {
    var code: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
    return code
  }

  /// Disables Nagle's algorithm: responses are written whole, so waiting only adds latency.
  public static func setNoDelay(_ fd: Int32) {
    var on: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
  }

  /// Raises the soft open-file limit to the hard limit, so that many clients can wait at once.
  public static func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0,
      limit.rlim_cur < limit.rlim_max
    else { return }
    limit.rlim_cur = limit.rlim_max
    setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
  }
}

extension Socket {
  /// Writes to a closed connection must fail with EPIPE, not kill the process.
  public static func ignoreBrokenPipe() { cepoll_ignore_sigpipe() }
}
