/// Percentiles of a set of durations (milliseconds), nearest-rank.
public struct LatencySummary: Sendable, Equatable {
  public var count: Int
  public var mean: Double
  public var p50: Double
  public var p90: Double
  public var p99: Double
  public var max: Double

  public init(_ values: [Double]) {
    let sorted = values.sorted()
    count = sorted.count
    mean = sorted.isEmpty ? 0 : sorted.reduce(0, +) / Double(sorted.count)
    p50 = Self.percentile(sorted, 50)
    p90 = Self.percentile(sorted, 90)
    p99 = Self.percentile(sorted, 99)
    max = sorted.last ?? 0
  }

  /// The nearest-rank percentile of sorted values: the smallest value with at least p% at or below.
  static func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[Swift.max(0, Swift.min(sorted.count - 1, rank - 1))]
  }
}
