import Foundation

/// Notices edits to servers.json: `poll()` compares the file's modification time, size and
/// content with the last one seen and returns a new pool when they changed and it is valid.
public final class ConfigWatcher {
  public let path: String
  private var lastSeen: Data?
  private var lastStamp: (Date, Int)?
  /// Whether the last check found no file (said once, not at every check until it is back).
  private var wasMissing = false

  /// Starts from the file as it is now (already loaded by the caller).
  public init(path: String) {
    self.path = path
    lastStamp = stamp()
    lastSeen = FileManager.default.contents(atPath: path)
  }

  /// What a check found.
  public enum Change {
    case unchanged
    case valid(ServersFile)
    case invalid(String)
  }

  /// Checks the file; with `force` (SIGHUP) it is read even if its stamp looks the same.
  public func poll(force: Bool = false) -> Change {
    let current = stamp()
    if !force, let current, let lastStamp, current == lastStamp { return .unchanged }
    if !force && current == nil && wasMissing { return .unchanged }
    wasMissing = current == nil
    lastStamp = current
    guard let data = FileManager.default.contents(atPath: path) else {
      return .invalid("\(path): cannot read the file")
    }
    if !force && data == lastSeen { return .unchanged }
    lastSeen = data
    do {
      return .valid(try ServersFile.parse(data))
    } catch {
      return .invalid("\(path): \(error.message)")
    }
  }

  /// The file's modification time and size, from one `stat` (Foundation's attribute lookup
  /// also reads the user and group databases: too much once a second).
  private func stamp() -> (Date, Int)? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    let modified = Date(
      timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
    return (modified, Int(info.st_size))
  }
}
