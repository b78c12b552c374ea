import BalancerApp
import Foundation
import ProgramSupport

var options = BalancerConfiguration.commandLine
CommandLineOptions.parseOrExit(&options)
Program.prepare()

let configuration: BalancerConfiguration
do {
  configuration = try BalancerConfiguration(
    options, environment: ProcessInfo.processInfo.environment)
} catch {
  Program.fail(error.description, code: 2, program: "balancer")
}
if configuration.checkConfigOnly {
  do {
    for port in try BalancerApp.localPorts(configuration) { print(port) }
    exit(0)
  } catch {
    Program.fail(error.description, code: error.exitCode, program: "balancer")
  }
}
do {
  let app = try BalancerApp.make(configuration)
  try app.start()
  app.run()
} catch let error as BalancerApp.StartupError {
  Program.fail(error.description, code: error.exitCode, program: "balancer")
} catch {
  Program.fail("\(error)", code: 1, program: "balancer")
}
