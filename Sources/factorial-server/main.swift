import FactorialServerApp
import Foundation
import HTTPCore
import ProgramSupport

var options = FactorialServerConfiguration.commandLine
CommandLineOptions.parseOrExit(&options)
Program.prepare()

do {
  let configuration = try FactorialServerConfiguration(
    options, environment: ProcessInfo.processInfo.environment)
  let app = FactorialServerApp(configuration: configuration, loop: try EventLoop())
  try app.start()
  app.run()
} catch let error as CommandLineOptions.UsageError {
  Program.fail(error.description, code: 2, program: "factorial-server")
} catch {
  Program.fail("\(error)", code: 1, program: "factorial-server")
}
