import Synchronization

/// A distribution of observed values (waits, latencies in seconds) over fixed bucket upper
/// bounds: one child of a `histogram` family, rendered as cumulative `_bucket{le=...}` samples
/// ending with `le="+Inf"`, then `_sum` and `_count`.
///
/// Safe to observe from any thread: an observation takes an uncontended `Mutex`, searches the
/// bounds and bumps one pre-sized slot, without allocating.
public final class Histogram: Sendable {
  /// The finite upper bounds, strictly increasing; `+Inf` is implicit.
  public let upperBounds: [Double]
  /// `le` label pairs for the buckets, `+Inf` last, formatted once.
  private let bucketLabels: [String]
  private let state: Mutex<State>

  private struct State {
    /// Per bucket (not cumulative), one slot per bound and a last one for `+Inf`.
    var counts: [UInt64]
    var sum: Double = 0
  }

  /// The bounds a histogram uses: `bounds` checked, with a trailing `+Inf` dropped.
  static func validatedBounds(_ bounds: [Double]) -> [Double] {
    var bounds = bounds
    if bounds.last == .infinity { bounds.removeLast() }
    for (index, bound) in bounds.enumerated() {
      precondition(bound.isFinite, "histogram bucket bounds must be finite (+Inf is implicit)")
      precondition(
        index == 0 || bounds[index - 1] < bound, "histogram bucket bounds must strictly increase")
    }
    return bounds
  }

  /// `le="..."` for each bound and `+Inf`, to share between the children of a family.
  static func leLabels(for bounds: [Double]) -> [String] {
    bounds.map { "le=\"\(PrometheusTextFormat.formatValue($0))\"" } + ["le=\"+Inf\""]
  }

  init(upperBounds: [Double], bucketLabels: [String]) {
    self.upperBounds = upperBounds
    self.bucketLabels = bucketLabels
    self.state = Mutex(State(counts: Array(repeating: 0, count: upperBounds.count + 1)))
  }

  /// Records one value, typically seconds, in the first bucket whose bound is at least `value`
  /// (a value exactly on a bound counts in that bound's bucket). NaN is ignored.
  public func observe(_ value: Double) {
    guard !value.isNaN else { return }
    // Binary search for the first bound >= value; `upperBounds.count` means `+Inf`.
    var low = 0
    var high = upperBounds.count
    while low < high {
      let middle = (low + high) / 2
      if upperBounds[middle] < value { low = middle + 1 } else { high = middle }
    }
    state.withLock { state in
      state.counts[low] += 1
      state.sum += value
    }
  }

  /// Records a duration given in nanoseconds (as the event loop's clock counts) as seconds.
  public func observe(nanoseconds: UInt64) {
    observe(Double(nanoseconds) / 1_000_000_000)
  }

  /// A consistent view of the histogram: cumulative bucket counts (`+Inf` last), sum and count.
  public func snapshot() -> (cumulativeCounts: [UInt64], sum: Double, count: UInt64) {
    let (counts, sum) = state.withLock { ($0.counts, $0.sum) }
    var cumulative = counts
    var running: UInt64 = 0
    for index in cumulative.indices {
      running += cumulative[index]
      cumulative[index] = running
    }
    return (cumulative, sum, running)
  }

  func appendSamples(name: String, labels: String, to output: inout String) {
    let (cumulative, sum, count) = snapshot()
    let prefix = labels.isEmpty ? "" : labels + ","
    for (bucket, le) in zip(cumulative, bucketLabels) {
      PrometheusTextFormat.appendSample(
        name, suffix: "_bucket", labels: prefix + le, value: String(bucket), to: &output)
    }
    PrometheusTextFormat.appendSample(
      name, suffix: "_sum", labels: labels, value: PrometheusTextFormat.formatValue(sum),
      to: &output)
    PrometheusTextFormat.appendSample(
      name, suffix: "_count", labels: labels, value: String(count), to: &output)
  }
}
