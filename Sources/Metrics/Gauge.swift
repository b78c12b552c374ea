import Synchronization

/// A value that goes up and down (connections open, servers busy): one sample of a `gauge`
/// family. Safe to update from any thread; an update is a lock-free compare-and-swap and never
/// allocates.
public final class Gauge: Sendable {
  private let total = AtomicDouble()

  init() {}

  /// The current value.
  public var value: Double { total.value }

  /// Sets the value.
  public func set(_ value: Double) { total.store(value) }

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

  private func add(_ amount: Double) { total.add(amount) }

  func appendSamples(name: String, labels: String, to output: inout String) {
    PrometheusTextFormat.appendSample(
      name, labels: labels, value: PrometheusTextFormat.formatValue(value), to: &output)
  }
}
