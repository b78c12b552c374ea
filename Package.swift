// swift-tools-version:6.0
import PackageDescription

let package = Package(
  name: "FactorialBalancer",
  products: [
    .executable(name: "balancer", targets: ["balancer"]),
    .executable(name: "factorial-server", targets: ["factorial-server"]),
    .executable(name: "loadtest", targets: ["loadtest"]),
  ],
  targets: [
    // System headers (epoll, eventfd, accept4, signals) behind a tiny C shim.
    .target(name: "CEpoll"),
    // The HTTP/1.1 protocol core: event loop, sockets, parser, server and client.
    .target(name: "HTTPCore", dependencies: ["CEpoll"]),
    // Exact big-integer factorial.
    .target(name: "Factorial"),
    // The factorial server's routes and its worker threads. No sockets.
    .target(name: "FactorialService", dependencies: ["Factorial", "HTTPCore"]),
    // Balancing logic: availability queue, pool configuration, routes. No sockets.
    .target(name: "Balancing", dependencies: ["HTTPCore"]),
    // Running and restarting the factorial-server processes the balancer supervises.
    .target(name: "Supervision", dependencies: ["Balancing", "HTTPCore"]),
    // SVG bar and line charts for the load tester's reports.
    .target(name: "Charts"),
    // The load tester: visits, the runner, reports.
    .target(name: "LoadTesting", dependencies: ["Charts", "HTTPCore"]),
    // What both programs share around `main`: flags, logging, signals.
    .target(name: "ProgramSupport", dependencies: ["HTTPCore"]),
    .executableTarget(
      name: "balancer", dependencies: ["Balancing", "HTTPCore", "ProgramSupport", "Supervision"]),
    .executableTarget(
      name: "factorial-server", dependencies: ["FactorialService", "HTTPCore", "ProgramSupport"]),
    .target(name: "TestSupport", dependencies: ["HTTPCore"], path: "Tests/TestSupport"),
    .executableTarget(
      name: "loadtest", dependencies: ["HTTPCore", "LoadTesting", "ProgramSupport"]),
    .testTarget(name: "HTTPCoreTests", dependencies: ["HTTPCore", "TestSupport"]),
    .testTarget(
      name: "FactorialTests",
      dependencies: ["Factorial", "FactorialService", "HTTPCore", "TestSupport"]),
    .testTarget(name: "LoadTestingTests", dependencies: ["Charts", "LoadTesting"]),
    .testTarget(name: "BalancingTests", dependencies: ["Balancing", "HTTPCore", "TestSupport"]),
    .testTarget(
      name: "EndToEndTests",
      dependencies: [
        "balancer", "factorial-server", "loadtest", "Factorial", "HTTPCore", "TestSupport",
      ]),
  ],
  swiftLanguageModes: [.v5]
)
