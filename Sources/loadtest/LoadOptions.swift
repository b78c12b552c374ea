import Foundation
import HTTPCore
import LoadTesting
import ProgramSupport

/// The flags `loadtest` and `loadtest scale` share, and what they do.
enum LoadOptions {
  static let common: [CommandLineOptions.Option] = [
    .value("requests", "N", "visits to make (default 10000)"),
    .value("concurrency", "N", "visits at a time, each on its own thread (default 64)"),
    .value("timeout", "SECONDS", "for each read or write (default 30)"),
    .value(
      "retries", "N", "times to go back to the balancer when a server is unreachable (default 3)"),
    .value("json", "FILE", "write the summary as JSON"),
    .value("csv", "FILE", "write one row per visit"),
    .value("chart", "FILE.svg", "draw a bar chart of requests per server"),
    .value("timeline-chart", "FILE.svg", "draw requests per server per second over the run"),
    .value(
      "run-at", "N:COMMAND", "run a shell command once N visits have finished (more: ;N:COMMAND)"),
    .value(
      "mix", "N:WEIGHT,...",
      "ask for job sizes ?n=N with these weights, e.g. 100:80,2000:15,20000:5 (heavy-tailed)"),
    .value("seed", "N", "seed for the job-size picks and arrival times (default 1)"),
    .value(
      "rate", "PER_SECOND",
      "open loop: start visits at this average rate (Poisson), --concurrency caps those in flight"),
    .value("keys", "N", "add key=client-K (K among N clients) for consistent hashing"),
    .flag("quiet", "no progress display"),
  ]

  /// `common` as `loadtest URL` shows it: its --retries also moves on to the next balancer.
  static var severalBalancers: [CommandLineOptions.Option] {
    common.map { option in
      guard option.name == "retries" else { return option }
      return .value(
        "retries", "N",
        "times a visit tries again: back to its balancer when its server is unreachable, at the"
          + " next balancer (URL,URL...) when one refuses or drops it (default 3)")
    }
  }

  static func fail(_ message: String) -> Never {
    Program.fail(message, code: 2, program: "loadtest")
  }

  /// `url` is one balancer's URL, or several comma-separated (`loadtest URL,URL...`).
  static func configuration(url: String, _ options: CommandLineOptions) -> LoadRunner.Configuration
  {
    let balancers: [HTTPURL]
    do {
      balancers = try LoadRunner.Configuration.balancers(from: url)
    } catch {
      fail(error.description)
    }
    var configuration = LoadRunner.Configuration(balancers: balancers)
    do {
      configuration.requests = try options.integer("requests", in: 1...10_000_000, default: 10000)
      configuration.concurrency = try options.integer("concurrency", in: 1...4096, default: 64)
      configuration.timeout = try options.number("timeout", in: 0.1...3600, default: 30)
      configuration.retries = try options.integer("retries", in: 0...100, default: 3)
    } catch {
      fail(error.description)
    }
    if let mix = options["mix"] {
      for item in items(of: mix, flag: "mix") {
        let parts = item.split(separator: ":")
        // A weight is a finite number above 0: `inf` (or `1e999`) would take every pick, and
        // `nan` none.
        guard parts.count == 2, let n = Int(parts[0]), (0...100_000).contains(n),
          let weight = CommandLineOptions.decimal(parts[1]), weight > 0
        else {
          fail(
            "--mix: '\(item)' is not N:WEIGHT with N from 0 to 100000 and WEIGHT a finite number"
              + " above 0")
        }
        configuration.jobMix.append((n, weight))
      }
      // `--mix ""` (an unset variable, say) would run the default sizes as if asked for.
      guard !configuration.jobMix.isEmpty else {
        fail("--mix: no N:WEIGHT given in '\(mix)'")
      }
      guard configuration.jobMix.reduce(0, { $0 + $1.weight }).isFinite else {
        fail("--mix: the weights add up to more than a number can hold; use smaller ones")
      }
    }
    if options["rate"] != nil {
      do {
        configuration.rate = try options.number("rate", in: 0.001...1_000_000, default: 1)
      } catch {
        fail(error.description)
      }
    }
    if options["keys"] != nil {
      do {
        configuration.keys = try options.integer("keys", in: 1...10_000_000, default: 1)
      } catch {
        fail(error.description)
      }
    }
    if let seed = options["seed"] {
      guard let value = UInt64(seed) else { fail("--seed: '\(seed)' is not a whole number") }
      configuration.seed = value
    }
    if let runAt = options["run-at"] {
      do {
        configuration.runAt = try RunAtList.parse(runAt, visits: configuration.requests)
      } catch { fail("--run-at: \(error)") }
    }
    return configuration
  }

  static func run(_ configuration: LoadRunner.Configuration, quiet: Bool = false) -> LoadReport {
    let runner = LoadRunner(configuration: configuration)
    let progress = quiet ? nil : Progress(total: configuration.requests) { runner.completed }
    progress?.start()
    let report = runner.run { command in
      FileHandle.standardError.write(Data("\nran: \(command)\n".utf8))
    }
    progress?.finish()
    return report
  }

  /// Writes the files `options` asks for; false if one could not be written (said on stderr).
  static func write(_ report: LoadReport, _ options: CommandLineOptions) -> Bool {
    save([
      (options["json"], { report.json }),
      (options["csv"], { report.csv }),
      (options["chart"], { report.serverChart() }),
      (
        options["timeline-chart"],
        { report.timelineChart(bucket: max(0.1, report.duration / 40)) }
      ),
    ])
  }

  /// Writes each of `files` whose path is given, its text made only then; false if one could
  /// not be written (each said on stderr). Every one is tried.
  static func save(_ files: [(path: String?, text: () -> String)]) -> Bool {
    var written = true
    for case (let path?, let text) in files { written = save(text(), to: path) && written }
    return written
  }

  /// The comma-separated items of a list flag's value; an empty item between others is refused
  /// (a list of only commas gives none, for the caller to refuse as no item at all).
  static func items(of list: String, flag: String) -> [Substring] {
    let items = list.split(separator: ",", omittingEmptySubsequences: false)
    if items.contains(where: \.isEmpty) && items.contains(where: { !$0.isEmpty }) {
      fail("--\(flag): an empty item in '\(list)'")
    }
    return items.filter { !$0.isEmpty }
  }

  /// Exits 2 with the reason unless every file of `paths` can be written: it has a name, its
  /// directory exists and takes new files, and it is not a directory. Checked before a run, so
  /// that a mistyped path does not cost the run's results.
  static func checkWritable(_ paths: [String?]) {
    for case let path? in paths {
      if path.isEmpty { fail("cannot write an output file whose name is empty") }
      var isDirectory: ObjCBool = false
      if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory),
        isDirectory.boolValue
      {
        fail("cannot write \(path): it is a directory")
      }
      let parent = (path as NSString).deletingLastPathComponent
      if access(parent.isEmpty ? "." : parent, W_OK | X_OK) != 0 {
        fail("cannot write \(path): \(String(cString: strerror(errno)))")
      }
    }
  }

  /// Writes `text` to `path` at once; false, said in one line on stderr, if it could not.
  private static func save(_ text: String, to path: String) -> Bool {
    do {
      try text.write(toFile: path, atomically: true, encoding: .utf8)
      return true
    } catch {
      var reason = error.localizedDescription
      if let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError,
        underlying.domain == NSPOSIXErrorDomain
      {
        reason = String(cString: strerror(Int32(underlying.code)))
      }
      FileHandle.standardError.write(Data("loadtest: cannot write \(path): \(reason)\n".utf8))
      return false
    }
  }
}
