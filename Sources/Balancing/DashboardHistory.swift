import Documents
import Foundation

/// The last minute of the balancer, second by second, for the live dashboard: jobs reported and
/// a bounded sample of client waits per second, and the most recent changes. Fixed size: it
/// holds 61 seconds and 20 changes whatever the load and however long it runs. Call from the
/// loop's thread; times are monotonic nanoseconds.
public final class DashboardHistory {
  private struct Bucket {
    var second: UInt64 = .max
    var jobs = 0
    var waits: [Double] = []
    var waitCount = 0
  }

  /// The most waits kept per second (a uniform sample beyond that).
  static let samplesPerSecond = 256
  static let changesKept = 20
  private var buckets = [Bucket](repeating: Bucket(), count: 61)
  private var changes: [DashboardData.Event] = []
  /// Sampling needs no secrecy: a cheap generator, no system call per draw.
  private var random = SplitMix64(seed: 0x5EED)
  private let timeFormatter: DateFormatter = {
    let formatter = DateFormatter()
    formatter.dateFormat = "HH:mm:ss"
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.locale = Locale(identifier: "en_US_POSIX")
    return formatter
  }()

  public init() {}

  /// A client was served after waiting `nanoseconds`, at `now`.
  public func recordWait(nanoseconds: UInt64, now: UInt64) {
    let seconds = Double(nanoseconds) / 1e9
    update(now) { bucket in
      bucket.waitCount += 1
      if bucket.waits.count < Self.samplesPerSecond {
        bucket.waits.append(seconds)
      } else {
        // Reservoir sampling keeps a uniform sample of the second's waits.
        let slot = Int.random(in: 0..<bucket.waitCount, using: &random)
        if slot < Self.samplesPerSecond { bucket.waits[slot] = seconds }
      }
    }
  }

  /// A lease was reported at `now`.
  public func recordJob(now: UInt64) { update(now) { $0.jobs += 1 } }

  /// A change of a server or lease worth showing (a log line).
  public func note(_ text: String, at date: Date = Date()) {
    changes.insert(DashboardData.Event(at: timeFormatter.string(from: date), text: text), at: 0)
    if changes.count > Self.changesKept { changes.removeLast() }
  }

  /// The dashboard's document at `now`, around `status`.
  public func data(status: PoolStatus, now: UInt64) -> DashboardData {
    let current = now / 1_000_000_000
    var seconds: [DashboardData.Second] = []
    // Every kept wait with the number of waits it stands for: a second's sample weighs as many
    // waits as the second had, so a busy second is not outweighed by quiet ones.
    var allWaits: [(seconds: Double, weight: Double)] = []
    var jobs = 0
    for back in stride(from: 60, through: 1, by: -1) {
      let second = current &- UInt64(back)
      let bucket = buckets[Int(second % 61)]
      guard bucket.second == second else {
        seconds.append(DashboardData.Second(jobs: 0, waitP50: nil, waitP99: nil))
        continue
      }
      let sorted = bucket.waits.sorted().map { (seconds: $0, weight: 1.0) }
      seconds.append(
        DashboardData.Second(
          jobs: bucket.jobs, waitP50: Self.percentile(sorted, 0.5),
          waitP99: Self.percentile(sorted, 0.99)))
      jobs += bucket.jobs
      let weight = Double(bucket.waitCount) / Double(max(1, bucket.waits.count))
      allWaits += sorted.map { ($0.seconds, weight) }
    }
    allWaits.sort { $0.seconds < $1.seconds }
    return DashboardData(
      status: status, seconds: seconds, jobsPerSecond: Double(jobs) / 60,
      waitP50: Self.percentile(allWaits, 0.5), waitP90: Self.percentile(allWaits, 0.9),
      waitP99: Self.percentile(allWaits, 0.99), events: changes)
  }

  private func update(_ now: UInt64, _ change: (inout Bucket) -> Void) {
    let second = now / 1_000_000_000
    let index = Int(second % 61)
    if buckets[index].second != second {
      buckets[index].second = second
      buckets[index].jobs = 0
      buckets[index].waitCount = 0
      buckets[index].waits.removeAll(keepingCapacity: true)
    }
    change(&buckets[index])
  }

  /// The `fraction` percentile (nearest rank) of values sorted by `seconds`, each standing for
  /// `weight` values (1 each within one second): the first whose running weight reaches
  /// `fraction` of the whole. nil if there are none.
  static func percentile(_ sorted: [(seconds: Double, weight: Double)], _ fraction: Double)
    -> Double?
  {
    guard let last = sorted.last else { return nil }
    let total = sorted.reduce(0) { $0 + $1.weight }
    let rank = (fraction * total).rounded(.up)
    var running = 0.0
    for value in sorted {
      running += value.weight
      // Weights are ratios of counts: allow for the rounding of their sum.
      if running >= rank - 1e-9 * total { return value.seconds }
    }
    return last.seconds
  }
}

/// SplitMix64: a small, fast pseudo-random generator (not for secrets), for sampling.
struct SplitMix64: RandomNumberGenerator {
  private var state: UInt64

  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var value = state
    value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
    value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
    return value ^ (value >> 31)
  }
}
