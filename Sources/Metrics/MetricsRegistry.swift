/// The metrics a program exposes, kept in registration order and rendered in the Prometheus text
/// exposition format 0.0.4 (`render()`, served with `MetricsRegistry.contentType`).
///
/// The registry is meant for one thread, the event loop's: register and render there, and the
/// closures of closure-backed gauges and counters run there at render time. The `Counter`,
/// `Gauge`, `Histogram` and `MetricFamily` objects it hands out may be updated from any thread.
///
/// Names must be valid and unique (a histogram `x` also takes `x_bucket`, `x_sum`, `x_count`);
/// breaking that is a programming error and stops the program.
public final class MetricsRegistry {
  /// The `Content-Type` of `render()`'s text.
  public static let contentType = PrometheusTextFormat.contentType

  private var collectors: [MetricCollector] = []
  private var takenNames: Set<String> = []

  public init() {}

  // MARK: Counters

  /// Registers a counter without labels.
  public func counter(_ name: String, help: String) -> Counter {
    counter(name, help: help, labelNames: []).labels([])
  }

  /// Registers a counter family with these label names; children are created by `labels(_:)`.
  public func counter(_ name: String, help: String, labelNames: [String]) -> MetricFamily<Counter> {
    add(
      MetricFamily(
        name: name, help: help, type: .counter, labelNames: labelNames, makeChild: { Counter() },
        appendChild: { counter, name, labels, output in
          counter.appendSamples(name: name, labels: labels, to: &output)
        }))
  }

  /// Registers a counter whose total is read from `value` at render time, for totals the program
  /// already keeps. `value` must never go down.
  public func counter(_ name: String, help: String, value: @escaping () -> Double) {
    addCallback(name, help: help, type: .counter, labelNames: []) { [([], value())] }
  }

  /// Registers a labelled counter whose samples are read from `values` at render time, one per
  /// entry, each with one label value per label name (totals the program keeps by reason).
  /// No sample's value may ever go down.
  public func counter(
    _ name: String, help: String, labelNames: [String],
    values: @escaping () -> [(labels: [String], value: Double)]
  ) {
    addCallback(name, help: help, type: .counter, labelNames: labelNames, samples: values)
  }

  // MARK: Gauges

  /// Registers a gauge without labels.
  public func gauge(_ name: String, help: String) -> Gauge {
    gauge(name, help: help, labelNames: []).labels([])
  }

  /// Registers a gauge family with these label names; children are created by `labels(_:)`.
  public func gauge(_ name: String, help: String, labelNames: [String]) -> MetricFamily<Gauge> {
    add(
      MetricFamily(
        name: name, help: help, type: .gauge, labelNames: labelNames, makeChild: { Gauge() },
        appendChild: { gauge, name, labels, output in
          gauge.appendSamples(name: name, labels: labels, to: &output)
        }))
  }

  /// Registers a gauge whose value is read from `value` at render time ("clients waiting now").
  public func gauge(_ name: String, help: String, value: @escaping () -> Double) {
    addCallback(name, help: help, type: .gauge, labelNames: []) { [([], value())] }
  }

  /// Registers a labelled gauge whose samples are read from `values` at render time, one per
  /// entry, each with one label value per label name ("servers now" by `state`).
  public func gauge(
    _ name: String, help: String, labelNames: [String],
    values: @escaping () -> [(labels: [String], value: Double)]
  ) {
    addCallback(name, help: help, type: .gauge, labelNames: labelNames, samples: values)
  }

  /// Registers an info metric: a gauge with constant labels and value 1, e.g.
  /// `build_info{version="1.2.0"} 1`. The labels are rendered in the order given.
  public func info(_ name: String, help: String, labels: KeyValuePairs<String, String>) {
    let names = labels.map(\.key)
    let values = labels.map(\.value)
    addCallback(name, help: help, type: .gauge, labelNames: names) { [(values, 1)] }
  }

  // MARK: Histograms

  /// Registers a histogram without labels over these finite, strictly increasing upper bounds
  /// (`+Inf` is implicit; by default `Buckets.waitSeconds`).
  public func histogram(
    _ name: String, help: String, buckets: [Double] = Buckets.waitSeconds
  ) -> Histogram {
    histogram(name, help: help, labelNames: [], buckets: buckets).labels([])
  }

  /// Registers a histogram family with these label names (not `le`), all children sharing the
  /// same upper bounds (by default `Buckets.waitSeconds`).
  public func histogram(
    _ name: String, help: String, labelNames: [String], buckets: [Double] = Buckets.waitSeconds
  ) -> MetricFamily<Histogram> {
    precondition(!labelNames.contains("le"), "\(name): a histogram cannot have a label named le")
    let bounds = Histogram.validatedBounds(buckets)
    let leLabels = Histogram.leLabels(for: bounds)
    return add(
      MetricFamily(
        name: name, help: help, type: .histogram, labelNames: labelNames,
        makeChild: { Histogram(upperBounds: bounds, bucketLabels: leLabels) },
        appendChild: { histogram, name, labels, output in
          histogram.appendSamples(name: name, labels: labels, to: &output)
        }))
  }

  // MARK: Rendering

  /// Every family in registration order: `# HELP`, `# TYPE`, then its samples.
  public func render() -> String {
    var output = ""
    output.reserveCapacity(256 * collectors.count)
    for collector in collectors {
      output += "# HELP "
      output += collector.name
      output += " "
      output += PrometheusTextFormat.escapeHelp(collector.help)
      output += "\n# TYPE "
      output += collector.name
      output += " "
      output += collector.type.rawValue
      output += "\n"
      collector.appendSamples(to: &output)
    }
    return output
  }

  // MARK: Registration

  private func add<Child>(_ family: MetricFamily<Child>) -> MetricFamily<Child> {
    register(family, labelNames: family.labelNames)
    return family
  }

  private func addCallback(
    _ name: String, help: String, type: MetricType, labelNames: [String],
    samples: @escaping () -> [(labels: [String], value: Double)]
  ) {
    let collector = CallbackCollector(name: name, help: help, type: type) { name, output in
      for sample in samples() {
        precondition(
          sample.labels.count == labelNames.count,
          "\(name) takes \(labelNames.count) label values (\(labelNames)), got \(sample.labels.count)"
        )
        PrometheusTextFormat.appendSample(
          name, labels: PrometheusTextFormat.labelPairs(names: labelNames, values: sample.labels),
          value: PrometheusTextFormat.formatValue(sample.value), to: &output)
      }
    }
    register(collector, labelNames: labelNames)
  }

  private func register(_ collector: MetricCollector, labelNames: [String]) {
    let name = collector.name
    precondition(PrometheusTextFormat.isValidMetricName(name), "invalid metric name \(name)")
    for label in labelNames {
      precondition(PrometheusTextFormat.isValidLabelName(label), "\(name): invalid label \(label)")
    }
    precondition(Set(labelNames).count == labelNames.count, "\(name): repeated label name")
    let sampleNames =
      collector.type == .histogram
      ? [name, name + "_bucket", name + "_sum", name + "_count"] : [name]
    for sampleName in sampleNames {
      precondition(takenNames.insert(sampleName).inserted, "metric \(sampleName) registered twice")
    }
    collectors.append(collector)
  }
}
