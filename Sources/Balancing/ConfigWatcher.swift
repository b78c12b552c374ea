import Foundation

/// Notices edits to servers.json: `poll()` compares the file's stamp (which file it is, its
/// modification and change times and its size) and content with the last one seen and returns a
/// new pool when they changed and it is valid.
///
/// It also keeps its verdict on the file as it last found it: `pendingProblem` says why the
/// version on disk could not be loaded, so that the balancer does not rewrite servers.json over
/// a hand edit that is still waiting to be fixed.
public final class ConfigWatcher {
  public let path: String
  private var lastSeen: Data?
  private var lastStamp: Stamp?
  /// Whether the last check found no file (said once, not at every check until it is back).
  private var wasMissing = false
  /// Why the file on disk, as of the last check (the version with `lastStamp`), could not be
  /// loaded: it is not a valid pool, it cannot be read, or its pool was refused (`reject`). Nil
  /// when that version was loaded, or when there is no file (a rewrite then loses nothing).
  public private(set) var pendingProblem: String?

  /// Starts from the file as it is now (already loaded by the caller). With `loaded`, the pool
  /// the caller loaded from it: if the file no longer holds that pool (it was edited since), the
  /// first `poll` reads it as an edit.
  public init(path: String, loaded: ServersFile? = nil) {
    self.path = path
    lastStamp = stamp()
    lastSeen = FileManager.default.contents(atPath: path)
    if let loaded, lastSeen.flatMap({ try? ServersFile.parse($0) }) != loaded {
      lastStamp = nil
      lastSeen = nil
    }
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
      let reason = "\(path): cannot read the file"
      pendingProblem = current == nil ? nil : reason
      // Whatever comes back is read afresh, even the text last read: the verdict changed.
      lastSeen = nil
      return .invalid(reason)
    }
    // The same text as last read: the same verdict.
    if !force && data == lastSeen { return .unchanged }
    lastSeen = data
    do {
      let file = try ServersFile.parse(data)
      pendingProblem = nil
      return .valid(file)
    } catch {
      let reason = "\(path): \(error.message)"
      pendingProblem = reason
      return .invalid(reason)
    }
  }

  /// Records that the balancer wrote `file` (`/add`, `/rm`, a pool adopted from another
  /// balancer): its text is the one the next edit is told apart from, so that an edit back to the
  /// text before the rewrite is an edit. The file is read at the next check, which takes any
  /// edit made since the write.
  public func wrote(_ file: ServersFile) {
    lastSeen = Data(file.json.utf8)
    lastStamp = nil
    wasMissing = false
    pendingProblem = nil
  }

  /// Records that the pool of the version last returned as `.valid` could not be used (a name
  /// that does not resolve, one server listed twice, the balancer's own address): it stays
  /// pending, as an invalid file does, until the file changes.
  public func reject(_ reason: String) {
    pendingProblem = reason
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
