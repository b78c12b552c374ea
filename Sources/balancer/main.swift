import BalancerApp
import Foundation
import ProgramSupport

var options = BalancerConfiguration.commandLine
CommandLineOptions.parseOrExit(&options)
Program.prepare()
// A reload asked for before the balancer has read servers.json for good (its port checks may
// wait 2 s): it reads the file anyway. The handler that reloads replaces this once it starts.
signal(SIGHUP, SIG_IGN)

let configuration: BalancerConfiguration
do {
  configuration = try BalancerConfiguration(
    options, environment: ProcessInfo.processInfo.environment)
} catch {
  Program.fail(error.description, code: 2, program: "balancer")
}
if configuration.checkConfigOnly {
  for warning in configuration.warnings {
    FileHandle.standardError.write(Data("balancer: warning: \(warning)\n".utf8))
  }
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
