import Synchronization

/// A `Double` held as its bit pattern in an atomic word: what counters and gauges add to from
/// any thread without a lock.
struct AtomicDouble: ~Copyable, Sendable {
  private let bits: Atomic<UInt64>

  init(_ value: Double = 0) { bits = Atomic(value.bitPattern) }

  var value: Double { Double(bitPattern: bits.load(ordering: .relaxed)) }

  func store(_ value: Double) { bits.store(value.bitPattern, ordering: .relaxed) }

  /// Adds `amount` (a compare-and-swap loop: no update is lost between threads).
  func add(_ amount: Double) {
    var current = bits.load(ordering: .relaxed)
    while true {
      let next = (Double(bitPattern: current) + amount).bitPattern
      let (exchanged, original) = bits.weakCompareExchange(
        expected: current, desired: next, ordering: .relaxed)
      if exchanged { return }
      current = original
    }
  }
}
