import Foundation
import HTTPCore
import LoadTesting
import ProgramSupport

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "scale" {
  runScaling(Array(arguments.dropFirst()))
} else if arguments.first == "policies" {
  runPolicies(Array(arguments.dropFirst()))
} else {
  runLoad(arguments)
}

/// `loadtest URL [options]`: one run against a running balancer.
func runLoad(_ arguments: [String]) {
  var options = CommandLineOptions(
    program: "loadtest",
    summary: """
      Sends --requests visits to a balancer URL, --concurrency at a time, following each redirect
      as a browser does, and reports jobs per server, status codes, latency (total, at the
      balancer, at the server: mean, p50, p90, p99, max) and throughput. Refused connections,
      503s and wrong bodies are counted, never fatal; a visit whose server is unreachable goes back
      to the balancer (--retries). Also: loadtest scale --help, loadtest policies --help.
      usage: loadtest URL [options]
      """,
    options: LoadOptions.common)
  var rest = arguments
  let url = rest.first.flatMap { $0.hasPrefix("--") ? nil : $0 }
  if url != nil { rest.removeFirst() }
  CommandLineOptions.parseOrExit(&options, rest)
  guard let url else {
    Program.fail(
      "give the balancer's URL, e.g. http://127.0.0.1:8001/", code: 2, program: "loadtest")
  }
  let configuration = LoadOptions.configuration(url: url, options)
  let report = LoadOptions.run(configuration)
  print(report.text)
  LoadOptions.write(report, options)
  let failed = report.visits.count - report.succeeded
  exit(failed == 0 ? 0 : 3)
}
