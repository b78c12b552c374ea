import Foundation

/// A `--run-at` command, started the way a shell starts one.
enum ShellCommand {
  /// Starts `/bin/sh -c command` as a shell would start it, and returns its process id; a thread
  /// reaps it when it exits (nobody waits for it). loadtest ignores SIGPIPE (`Program.prepare`),
  /// and an ignored signal stays ignored across exec, where a shell cannot undo it: in a command
  /// started with it ignored, a pipeline's writer is no longer stopped when its reader leaves
  /// (`yes | head` runs on until the writer notices EPIPE, if it ever does). So the child gets
  /// SIGPIPE's default disposition and no blocked signals; its descriptors past stderr are
  /// closed, as `Process` closes them.
  static func spawn(_ command: String) throws(SpawnError) -> pid_t {
    var attributes = posix_spawnattr_t()
    var actions = posix_spawn_file_actions_t()
    posix_spawnattr_init(&attributes)
    posix_spawn_file_actions_init(&actions)
    defer {
      posix_spawnattr_destroy(&attributes)
      posix_spawn_file_actions_destroy(&actions)
    }
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGPIPE)
    var unblocked = sigset_t()
    sigemptyset(&unblocked)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setsigmask(&attributes, &unblocked)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
    // (One that closes before the spawn is no error: a close action fails only out of range.)
    let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    for fd in open.compactMap({ Int32($0) }) where fd > 2 {
      posix_spawn_file_actions_addclose(&actions, fd)
    }
    let arguments: [UnsafeMutablePointer<CChar>?] = [
      strdup("/bin/sh"), strdup("-c"), strdup(command), nil,
    ]
    defer { for argument in arguments { free(argument) } }
    var child: pid_t = 0
    let code = posix_spawn(&child, "/bin/sh", &actions, &attributes, arguments, environ)
    guard code == 0 else { throw SpawnError(code: code) }
    let pid = child
    Thread.detachNewThread {
      var status: Int32 = 0
      while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    }
    return pid
  }

  /// Why `/bin/sh` could not be started.
  struct SpawnError: Error, CustomStringConvertible {
    let code: Int32
    var description: String { String(cString: strerror(code)) }
  }
}
