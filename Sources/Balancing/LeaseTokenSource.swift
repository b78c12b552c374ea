import Glibc

/// Makes lease tokens: 128 bits from the kernel's random source, as 32 hex digits. Randomness is
/// read from /dev/urandom 4 KiB at a time, so a token costs no system call. Not thread-safe.
public struct LeaseTokenSource {
  private var buffer = [UInt8](repeating: 0, count: 4096)
  private var offset = 4096

  public init() {}

  /// A fresh unguessable token.
  public mutating func next() -> String {
    if offset + 16 > buffer.count { refill() }
    let start = offset
    offset += 16
    // Written straight into the string's own storage: no temporary, no second copy.
    return String(unsafeUninitializedCapacity: 32) { text in
      buffer.withUnsafeBufferPointer { random in
        for index in 0..<16 {
          let byte = random[start + index]
          text[2 * index] = Self.hexDigit(byte >> 4)
          text[2 * index + 1] = Self.hexDigit(byte & 0x0F)
        }
      }
      return 32
    }
  }

  @inline(__always) private static func hexDigit(_ value: UInt8) -> UInt8 {
    value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
  }

  private mutating func refill() {
    var filled = 0
    let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
    if fd >= 0 {
      defer { close(fd) }
      while filled < buffer.count {
        let count = buffer.withUnsafeMutableBytes {
          read(fd, $0.baseAddress! + filled, $0.count - filled)
        }
        if count > 0 {
          filled += count
        } else if count == 0 || errno != EINTR {
          break
        }
      }
    }
    if filled < buffer.count {
      // No /dev/urandom (a bare chroot): the standard library's generator is also cryptographic.
      var generator = SystemRandomNumberGenerator()
      for index in filled..<buffer.count { buffer[index] = generator.next() }
    }
    offset = 0
  }
}
