import Synchronization

/// A value that goes up and down (connections open, servers busy): one sample of a `gauge`
/// family. Safe to update from any thread; an update is a lock-free compare-and-swap and never
/// allocates.
public final class Gauge: Sendable {
  private let bits = Atomic<UInt64>(Double(0).bitPattern)

  init() {}

  /// The current value.
  public var value: Double { Double(bitPattern: bits.load(ordering: .relaxed)) }

  /// Sets the value.
  public func set(_ value: Double) { bits.store(value.bitPattern, ordering: .relaxed) }

  /// Sets the value.
  public func set(_ value: Int) { set(Double(value)) }

  /// Adds one.
  public func increment() { add(1) }

  /// Adds `amount`.
  public func increment(by amount: Double) { add(amount) }

  /// Adds `amount`.
  public func increment(by amount: Int) { add(Double(amount)) }

  /// Subtracts one.
  public func decrement() { add(-1) }

  /// Subtracts `amount`.
  public func decrement(by amount: Double) { add(-amount) }

  /// Subtracts `amount`.
  public func decrement(by amount: Int) { add(-Double(amount)) }

  private func add(_ amount: Double) {
    var current = bits.load(ordering: .relaxed)
    while true {
      let next = (Double(bitPattern: current) + amount).bitPattern
      let (exchanged, original) = bits.weakCompareExchange(
        expected: current, desired: next, ordering: .relaxed)
      if exchanged { return }
      current = original
    }
  }

  func appendSamples(name: String, labels: String, to output: inout String) {
    PrometheusTextFormat.appendSample(
      name, labels: labels, value: PrometheusTextFormat.formatValue(value), to: &output)
  }
}
