import Glibc

/// Nanoseconds on the monotonic clock, for deadlines and durations that must not jump.
public enum MonotonicClock {
  /// The current monotonic time in nanoseconds.
  @inline(__always)
  public static func now() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
  }

  /// The nanoseconds from `start` to `end`, or 0 if `end` is not later: a start taken from
  /// elsewhere (another machine's books) may lie ahead of this clock.
  @inline(__always)
  public static func elapsed(from start: UInt64, to end: UInt64) -> UInt64 {
    end > start ? end - start : 0
  }

  /// Converts seconds to nanoseconds, clamping negatives to zero.
  @inline(__always)
  public static func nanoseconds(_ seconds: Double) -> UInt64 {
    seconds <= 0 ? 0 : UInt64(seconds * 1e9)
  }
}
