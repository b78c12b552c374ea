import Foundation

/// Notices edits to servers.json: `poll()` compares the file's stamp (which file it is, its
/// modification and change times and its size) and content with the last one seen and returns a
/// new pool when they changed and it is valid.
public final class ConfigWatcher {
  public let path: String
  private var lastSeen: Data?
  private var lastStamp: Stamp?
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

  /// What tells one version of the file from another without reading it: the file itself
  /// (device and inode: a file renamed over it, or a symbolic link swapped to another file, is
  /// another file even with the same size and modification time, as in a Nix store where every
  /// file is dated 1970), its modification and change times, and its size.
  private struct Stamp: Equatable {
    var device: UInt64
    var inode: UInt64
    var modified: timespec
    var changed: timespec
    var size: Int

    static func == (a: Stamp, b: Stamp) -> Bool {
      a.device == b.device && a.inode == b.inode && a.size == b.size
        && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
        && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
    }
  }

  /// The file's stamp, from one `stat` (Foundation's attribute lookup also reads the user and
  /// group databases: too much once a second).
  private func stamp() -> Stamp? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return Stamp(
      device: UInt64(info.st_dev), inode: UInt64(info.st_ino), modified: info.st_mtim,
      changed: info.st_ctim, size: Int(info.st_size))
  }
}
