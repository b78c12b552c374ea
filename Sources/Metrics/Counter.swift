import Synchronization

/// A monotonically increasing count (requests served, errors, bytes): one sample of a `counter`
/// family. Safe to increment from any thread; an increment is a lock-free compare-and-swap and
/// never allocates.
public final class Counter: Sendable {
  private let total = AtomicDouble()

  init() {}

  /// The current total.
  public var value: Double { total.value }

  /// Adds one.
  public func increment() { add(1) }

  /// Adds `amount`, which must not be negative.
  public func increment(by amount: Int) {
    precondition(amount >= 0, "a counter only goes up")
    add(Double(amount))
  }

  /// Adds `amount`, which must not be negative (nor NaN).
  public func increment(by amount: Double) {
    precondition(amount >= 0, "a counter only goes up")
    add(amount)
  }

  private func add(_ amount: Double) { total.add(amount) }

  func appendSamples(name: String, labels: String, to output: inout String) {
    PrometheusTextFormat.appendSample(
      name, labels: labels, value: PrometheusTextFormat.formatValue(value), to: &output)
  }
}
