import Glibc
import HTTPCore

/// The process a program must not outlive (`--exit-with-parent`): the one that started it, by the
/// PID `--parent-pid` gives, or else as found when the program reads it. A parent that exits in
/// the moment between starting the program and that reading is missed (the program then finds
/// its new parent, init), which is why a program that starts others passes its PID. The parent
/// is gone once this process has another one, so a PID used again by then fools nobody.
public struct ParentProcess: Sendable {
  /// The parent's process ID.
  public let pid: Int32

  /// `pid` (from `pid(from:)`).
  public init(pid: Int32) { self.pid = pid }

  /// Whether it has exited: this process now has another parent (init, or a subreaper).
  public var hasExited: Bool { getppid() != pid }

  /// Calls `body` on `loop` once, within half a second of the parent's exit.
  public func onExit(on loop: EventLoop, _ body: @escaping () -> Void) {
    var called = false
    loop.schedule(every: 0.5) {
      guard !called, hasExited else { return }
      called = true
      body()
    }
  }

  /// The `--parent-pid` option, as both programs offer it.
  public static var option: CommandLineOptions.Option {
    .value(
      "parent-pid", "PID",
      "the PID of the process that starts this one: exit once it has exited, even if it did"
        + " before this one started (implies --exit-with-parent)")
  }

  /// The parent's PID if the program must exit with it: the one `--parent-pid` gives, or with
  /// `--exit-with-parent` the parent now, as the flags are read (the sooner the better: the
  /// parent may exit while the program starts); nil with neither flag.
  public static func pid(from options: CommandLineOptions) throws(CommandLineOptions.UsageError)
    -> Int32?
  {
    guard options["parent-pid"] != nil else {
      return options.isSet("exit-with-parent") ? getppid() : nil
    }
    // Given: the default is never used.
    return Int32(try options.integer("parent-pid", in: 1...Int(Int32.max), default: 0))
  }
}
