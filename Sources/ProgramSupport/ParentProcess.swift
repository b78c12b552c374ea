import Glibc

/// The process a program must not outlive (`--exit-with-parent`): the one `--parent-pid` names,
/// or else the one that started it, as found when the program reads it. A parent that exits in
/// the moment between starting the program and that reading is missed (the program then finds
/// its new parent, init), which is why a program that starts others passes its PID.
public struct ParentProcess: Sendable {
  /// The parent's process ID.
  public let pid: Int32

  /// `pid`, or else the current parent.
  public init(pid: Int32? = nil) { self.pid = pid ?? getppid() }

  /// Whether it has exited: this process now has another parent (init, or a subreaper).
  public var hasExited: Bool { getppid() != pid }

  /// The `--parent-pid` option, as both programs offer it.
  public static var option: CommandLineOptions.Option {
    .value(
      "parent-pid", "PID",
      "exit once process PID exits, even if it did before this one started (implies"
        + " --exit-with-parent)")
  }

  /// The PID `--parent-pid` gives, if any.
  public static func pid(from options: CommandLineOptions) throws(CommandLineOptions.UsageError)
    -> Int32?
  {
    guard options["parent-pid"] != nil else { return nil }
    return Int32(try options.integer("parent-pid", in: 1...Int(Int32.max), default: 1))
  }
}
