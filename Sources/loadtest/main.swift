import Foundation
import HTTPCore
import LoadTesting
import ProgramSupport

// Each visiting thread keeps a connection to the balancer and one to every server: the
// open-file limit is raised as the balancer's is (and SIGPIPE ignored, stdout line-buffered).
Program.prepare()
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "scale" {
  runScaling(Array(arguments.dropFirst()))
} else if arguments.first == "policies" {
  runPolicies(Array(arguments.dropFirst()))
} else {
  runLoad(arguments)
}

/// `loadtest URL[,URL...] [options]`: one run against a running balancer, or several sharing one
/// queue.
func runLoad(_ arguments: [String]) {
  // The program is named with its URL so that --help shows the one usage line
  // "usage: loadtest URL [options]"; errors still begin "loadtest:".
  var options = CommandLineOptions(
    program: "loadtest URL",
    summary: """
      Sends --requests visits to the balancer at URL (e.g. http://127.0.0.1:8001/), --concurrency
      at a time, following each redirect as a browser does, and reports jobs per server, status
      codes, latency (total, at the balancer, at the server: mean, p50, p90, p99, max) and
      throughput. Refused connections, 503s and wrong bodies are counted, never fatal; a visit
      whose server is unreachable goes back to the balancer (--retries). Exits 0 when every visit
      got a factorial, 3 otherwise, 2 on a bad flag or an output file it cannot write.

      URL may list several balancers that share one queue, separated by commas
      (http://127.0.0.1:8001/,http://127.0.0.1:8002/): visit i starts at the balancer
      i mod k, as round-robin DNS would spread them, and a visit whose balancer refuses or drops
      the connection before answering (it was killed, say) tries again at the next one, counted
      as a retry (within --retries). The report then says how many visits each balancer answered.

      Also: loadtest scale [options] runs the whole system with N servers for each N, and
      loadtest policies [options] compares the routing policies (see their --help).
      """,
    options: LoadOptions.severalBalancers)
  var rest = arguments
  let url = rest.first.flatMap { $0.hasPrefix("--") ? nil : $0 }
  if url != nil { rest.removeFirst() }
  do {
    try options.parse(rest)
  } catch {
    LoadOptions.fail(error.description)
  }
  if options.isSet("help") {
    print(options.usage)
    exit(0)
  }
  guard let url else {
    LoadOptions.fail("give the balancer's URL, e.g. http://127.0.0.1:8001/ (see --help)")
  }
  let configuration = LoadOptions.configuration(url: url, options)
  LoadOptions.checkWritable(["json", "csv", "chart", "timeline-chart"].map { options[$0] })
  let report = LoadOptions.run(configuration, quiet: options.isSet("quiet"))
  print(report.text)
  guard LoadOptions.write(report, options) else { exit(2) }
  let failed = report.visits.count - report.succeeded
  exit(failed == 0 ? 0 : 3)
}
