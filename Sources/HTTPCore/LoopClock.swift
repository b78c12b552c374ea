/// An event loop's notion of now (monotonic nanoseconds), refreshed once per wake-up.
///
/// A small object of its own, so that what reads the time on every request (connections, the
/// balancer's clock) can hold it strongly: no weak or unowned reference to the loop, whose
/// reference counting is slow once anything holds it weakly.
public final class LoopClock: @unchecked Sendable {
  /// The time of the loop's last wake-up. Read and written on the loop's thread only.
  public internal(set) var now: UInt64

  init(now: UInt64) { self.now = now }
}
