import Synchronization

/// A labelled metric: one name, HELP and TYPE, and a child `Counter`, `Gauge` or `Histogram` per
/// combination of label values (e.g. `server="a",code="200"`), created on first use and rendered
/// in the order they were created.
///
/// Looking a child up takes a lock and hashes the values; on a hot path keep the child
/// (`let ok = responses.labels("a", "200")`) and update it directly. Safe to use from any thread.
public final class MetricFamily<Child: AnyObject & Sendable>: Sendable {
  /// The metric name.
  public let name: String
  /// The label names, in the order `labels(_:)` takes their values.
  public let labelNames: [String]
  let help: String
  let type: MetricType
  private let makeChild: @Sendable () -> Child
  private let appendChild: @Sendable (Child, _ name: String, _ labels: String, inout String) -> Void
  private let children = Mutex(Children())

  private struct Children {
    var index: [[String]: Int] = [:]
    /// Each child with its label pairs, escaped once at creation.
    var entries: [(labels: String, child: Child)] = []
  }

  init(
    name: String, help: String, type: MetricType, labelNames: [String],
    makeChild: @escaping @Sendable () -> Child,
    appendChild: @escaping @Sendable (Child, String, String, inout String) -> Void
  ) {
    self.name = name
    self.help = help
    self.type = type
    self.labelNames = labelNames
    self.makeChild = makeChild
    self.appendChild = appendChild
  }

  /// The child for these label values (one per label name, in order), created on first use.
  public func labels(_ values: String...) -> Child { labels(values) }

  /// The child for these label values (one per label name, in order), created on first use.
  public func labels(_ values: [String]) -> Child {
    precondition(
      values.count == labelNames.count,
      "\(name) takes \(labelNames.count) label values (\(labelNames)), got \(values.count)")
    return children.withLock { children in
      if let position = children.index[values] { return children.entries[position].child }
      let child = makeChild()
      children.index[values] = children.entries.count
      children.entries.append(
        (PrometheusTextFormat.labelPairs(names: labelNames, values: values), child))
      return child
    }
  }
}

extension MetricFamily: MetricCollector {
  func appendSamples(to output: inout String) {
    let entries = children.withLock { $0.entries }
    for (labels, child) in entries { appendChild(child, name, labels, &output) }
  }
}
