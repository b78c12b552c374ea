/// The TYPE of a metric family in the text format.
enum MetricType: String {
  case counter, gauge, histogram
}

/// What a registry renders: a family's name, HELP, TYPE and, on request, its sample lines.
protocol MetricCollector: AnyObject {
  var name: String { get }
  var help: String { get }
  var type: MetricType { get }
  func appendSamples(to output: inout String)
}

/// A family whose samples are produced at render time by a closure: gauges read from the
/// program's state, counters kept elsewhere, info metrics.
final class CallbackCollector: MetricCollector {
  let name: String
  let help: String
  let type: MetricType
  private let append: (_ name: String, inout String) -> Void

  init(
    name: String, help: String, type: MetricType,
    append: @escaping (_ name: String, inout String) -> Void
  ) {
    self.name = name
    self.help = help
    self.type = type
    self.append = append
  }

  func appendSamples(to output: inout String) { append(name, &output) }
}
