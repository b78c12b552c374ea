import Foundation

/// Shows how far a run is: a bar redrawn in place on a terminal, a plain line every second
/// otherwise (a log file, a pipe).
public final class Progress: @unchecked Sendable {
  private let total: Int
  private let isTerminal: Bool
  private let done: () -> Int
  private var timer: DispatchSourceTimer?
  private let started = Date()

  public init(total: Int, done: @escaping () -> Int) {
    self.total = total
    self.done = done
    isTerminal = isatty(STDERR_FILENO) == 1
  }

  public func start() {
    let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "progress"))
    timer.schedule(deadline: .now(), repeating: isTerminal ? 0.1 : 1.0)
    timer.setEventHandler { [weak self] in self?.draw(final: false) }
    timer.resume()
    self.timer = timer
  }

  public func finish() {
    timer?.cancel()
    timer = nil
    draw(final: true)
  }

  private func draw(final: Bool) {
    let count = done()
    let elapsed = Date().timeIntervalSince(started)
    let rate = elapsed > 0 ? Double(count) / elapsed : 0
    let fraction = total > 0 ? Double(count) / Double(total) : 1
    let status = String(format: "%d/%d visits, %.0f/s, %.1f s", count, total, rate, elapsed)
    if isTerminal {
      let width = 30
      let filled = Int(fraction * Double(width))
      let bar =
        String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
      FileHandle.standardError.write(Data("\r[\(bar)] \(status)\(final ? "\n" : "")".utf8))
    } else {
      FileHandle.standardError.write(Data("progress: \(status)\n".utf8))
    }
  }
}
