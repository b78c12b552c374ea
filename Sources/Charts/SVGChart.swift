import Foundation

/// Draws simple, self-contained SVG charts — bars or lines, with axes, tick labels, axis titles
/// and a title — that any browser renders without scripts or fonts of its own.
public struct SVGChart {
  /// One line of a line chart, drawn over the series before it.
  public struct Series {
    public var name: String
    public var points: [(x: Double, y: Double)]
    /// Line width in pixels.
    public var width: Double
    /// 1 opaque; less lets a line drawn later or earlier show through where lines meet.
    public var opacity: Double
    /// An SVG dash pattern such as "6 4", or nil for a solid line.
    public var dash: String?
    public init(
      name: String, points: [(x: Double, y: Double)], width: Double = 2, opacity: Double = 1,
      dash: String? = nil
    ) {
      self.name = name
      self.points = points
      self.width = width
      self.opacity = opacity
      self.dash = dash
    }
  }

  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var width = 800.0
  public var height = 480.0
  private let margin = (left: 80.0, right: 30.0, top: 60.0, bottom: 70.0)
  private static let palette = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
  ]

  public init(title: String, xLabel: String, yLabel: String) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
  }

  private var plotWidth: Double { width - margin.left - margin.right }
  private var plotHeight: Double { height - margin.top - margin.bottom }

  /// A bar chart: one bar per label, its value printed above it.
  public func bars(_ bars: [(label: String, value: Double)]) -> String {
    let top = Self.niceCeiling(bars.map(\.value).max() ?? 1)
    var body = frame(yMax: top, yTicks: 5)
    let slot = plotWidth / Double(max(bars.count, 1))
    let barWidth = slot * 0.6
    for (index, bar) in bars.enumerated() {
      let x = margin.left + slot * Double(index) + (slot - barWidth) / 2
      let barHeight = top > 0 ? plotHeight * bar.value / top : 0
      let y = margin.top + plotHeight - barHeight
      body += rect(x, y, barWidth, barHeight, fill: Self.palette[index % Self.palette.count])
      body += text(
        x + barWidth / 2, y - 6, Self.format(bar.value), anchor: "middle", size: 13)
      body += text(
        x + barWidth / 2, margin.top + plotHeight + 20, bar.label, anchor: "middle", size: 13)
    }
    return document(body)
  }

  /// A line chart of one or more series against a numeric x axis, with a legend. Series are
  /// drawn in order, each over the ones before it; each line has a `<title>` with its name.
  public func lines(_ series: [Series], xTicks: [Double]? = nil) -> String {
    let allPoints = series.flatMap(\.points)
    let xMin = allPoints.map(\.x).min() ?? 0
    let xMax = max(allPoints.map(\.x).max() ?? 1, xMin + 1e-9)
    let top = Self.niceCeiling(allPoints.map(\.y).max() ?? 1)
    var body = frame(yMax: top, yTicks: 5)
    let ticks = xTicks ?? (0...5).map { xMin + (xMax - xMin) * Double($0) / 5 }
    for tick in ticks {
      let x = margin.left + plotWidth * (tick - xMin) / (xMax - xMin)
      body += line(x, margin.top + plotHeight, x, margin.top + plotHeight + 5, stroke: "#333")
      body += text(x, margin.top + plotHeight + 20, Self.format(tick), anchor: "middle", size: 12)
    }
    for (index, item) in series.enumerated() {
      let color = Self.palette[index % Self.palette.count]
      let coordinates = item.points.map { point -> String in
        let x = margin.left + plotWidth * (point.x - xMin) / (xMax - xMin)
        let y = margin.top + plotHeight - (top > 0 ? plotHeight * point.y / top : 0)
        return "\(Self.number(x)),\(Self.number(y))"
      }
      let style =
        "stroke=\"\(color)\" stroke-width=\"\(Self.number(item.width))\""
        + (item.opacity < 1 ? " stroke-opacity=\"\(Self.number(item.opacity, digits: 2))\"" : "")
        + (item.dash.map { " stroke-dasharray=\"\(Self.escape($0))\"" } ?? "")
      body +=
        "<polyline fill=\"none\" \(style) points=\"\(coordinates.joined(separator: " "))\"><title>\(Self.escape(item.name))</title></polyline>\n"
      if item.points.count <= 12 {
        let radius = Self.number(max(4, item.width + 1))
        let fill =
          "fill=\"\(color)\""
          + (item.opacity < 1 ? " fill-opacity=\"\(Self.number(item.opacity, digits: 2))\"" : "")
        for coordinate in coordinates {
          let parts = coordinate.split(separator: ",")
          body += "<circle cx=\"\(parts[0])\" cy=\"\(parts[1])\" r=\"\(radius)\" \(fill)/>\n"
        }
      }
      // Legend, top right: a sample of the line.
      let legendY = margin.top + 8 + Double(index) * 18
      let legendX = width - margin.right - 170
      body +=
        "<line x1=\"\(Self.number(legendX))\" y1=\"\(Self.number(legendY - 3))\" x2=\"\(Self.number(legendX + 14))\" y2=\"\(Self.number(legendY - 3))\" \(style)/>\n"
      body += text(legendX + 20, legendY + 1, item.name, anchor: "start", size: 12)
    }
    return document(body)
  }

  // MARK: - Pieces

  private func frame(yMax: Double, yTicks: Int) -> String {
    var body = rect(0, 0, width, height, fill: "#ffffff")
    body += text(width / 2, 30, title, anchor: "middle", size: 18, weight: "bold")
    let axisY = margin.top + plotHeight
    for tick in 0...yTicks {
      let value = yMax * Double(tick) / Double(yTicks)
      let y = axisY - plotHeight * Double(tick) / Double(yTicks)
      body += line(margin.left, y, margin.left + plotWidth, y, stroke: "#e0e0e0")
      body += text(margin.left - 8, y + 4, Self.format(value), anchor: "end", size: 12)
    }
    body += line(margin.left, margin.top, margin.left, axisY, stroke: "#333")
    body += line(margin.left, axisY, margin.left + plotWidth, axisY, stroke: "#333")
    body += text(margin.left + plotWidth / 2, height - 20, xLabel, anchor: "middle", size: 14)
    body +=
      "<text x=\"20\" y=\"\(Self.number(margin.top + plotHeight / 2))\" font-family=\"sans-serif\" font-size=\"14\" text-anchor=\"middle\" transform=\"rotate(-90 20 \(Self.number(margin.top + plotHeight / 2)))\">\(Self.escape(yLabel))</text>\n"
    return body
  }

  private func document(_ body: String) -> String {
    """
    <?xml version="1.0" encoding="UTF-8"?>
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Self.number(width))" height="\(Self.number(height))" viewBox="0 0 \(Self.number(width)) \(Self.number(height))">
    <title>\(Self.escape(title))</title>
    \(body)</svg>

    """
  }

  private func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String) -> String {
    "<rect x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" width=\"\(Self.number(w))\" height=\"\(Self.number(h))\" fill=\"\(fill)\"/>\n"
  }

  private func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String)
    -> String
  {
    "<line x1=\"\(Self.number(x1))\" y1=\"\(Self.number(y1))\" x2=\"\(Self.number(x2))\" y2=\"\(Self.number(y2))\" stroke=\"\(stroke)\"/>\n"
  }

  private func text(
    _ x: Double, _ y: Double, _ content: String, anchor: String, size: Int,
    weight: String = "normal"
  ) -> String {
    "<text x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" font-family=\"sans-serif\" font-size=\"\(size)\" font-weight=\"\(weight)\" text-anchor=\"\(anchor)\">\(Self.escape(content))</text>\n"
  }

  /// A round number at or above `value` (1, 2, 2.5 or 5 times a power of ten).
  static func niceCeiling(_ value: Double) -> Double {
    guard value > 0 else { return 1 }
    let power = pow(10, floor(log10(value)))
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] where step * power >= value { return step * power }
    return 10 * power
  }

  /// Axis and bar labels: whole numbers plainly, others with up to two decimals.
  static func format(_ value: Double) -> String {
    if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
    return String(format: "%.2f", value)
  }

  static func number(_ value: Double, digits: Int = 1) -> String {
    String(format: "%.\(digits)f", value)
  }

  static func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }
}
