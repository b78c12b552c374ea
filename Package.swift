// swift-tools-version:6.0
import PackageDescription

/// The hot path's targets (the balancer's and the factorial server's) are built without the
/// runtime's exclusivity checks in release builds: the compiler still proves exclusive access
/// statically, and on the event loop's single thread the dynamic checks cost about a tenth of
/// the balancer's instructions per request (callgrind).
let fastRelease: [SwiftSetting] = [
  .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
]

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
    .target(name: "HTTPCore", dependencies: ["CEpoll"], swiftSettings: fastRelease),
    // Exact big-integer factorial.
    .target(name: "Factorial", swiftSettings: fastRelease),
    // The JSON documents the programs exchange and show (health, status, replicas), Codable.
    .target(name: "Documents"),
    // The factorial server's routes and its worker threads. No sockets.
    .target(
      name: "FactorialService", dependencies: ["Documents", "Factorial", "HTTPCore", "Metrics"],
      swiftSettings: fastRelease),
    // Balancing logic: pool, leases, dispatchers (availability queue, policies), routes. No sockets.
    .target(
      name: "Balancing", dependencies: ["Documents", "HTTPCore", "Metrics"],
      swiftSettings: fastRelease),
    // Running and restarting the factorial-server processes the balancer supervises.
    .target(name: "Supervision", dependencies: ["Balancing", "Documents", "HTTPCore"]),
    // SVG bar and line charts for the load tester's reports.
    .target(name: "Charts"),
    // Prometheus metrics: counters, gauges, histograms, and the text exposition format.
    .target(name: "Metrics"),
    // A RESP2 Redis client on the event loop: parser, pipelined connection, scripts.
    .target(name: "RedisClient", dependencies: ["HTTPCore"]),
    // The availability queue, leases and pool shared by several balancers, in Redis.
    .target(name: "SharedQueue", dependencies: ["Balancing", "HTTPCore", "RedisClient"]),
    // The load tester: visits, the runner, reports.
    .target(name: "LoadTesting", dependencies: ["Charts", "HTTPCore"]),
    // What both programs share around `main`: flags, logging, signals.
    .target(name: "ProgramSupport", dependencies: ["HTTPCore"]),
    // The balancer program: its configuration from flags, and the app that wires it together.
    .target(
      name: "BalancerApp",
      dependencies: [
        "Balancing", "Documents", "HTTPCore", "ProgramSupport", "SharedQueue", "Supervision",
      ]),
    // The factorial-server program: configuration and app.
    .target(
      name: "FactorialServerApp", dependencies: ["FactorialService", "HTTPCore", "ProgramSupport"],
      swiftSettings: fastRelease),
    .executableTarget(name: "balancer", dependencies: ["BalancerApp", "ProgramSupport"]),
    .executableTarget(
      name: "factorial-server", dependencies: ["FactorialServerApp", "ProgramSupport"]),
    .target(
      name: "TestSupport", dependencies: ["Balancing", "HTTPCore"], path: "Tests/TestSupport"),
    .executableTarget(
      name: "loadtest", dependencies: ["Documents", "HTTPCore", "LoadTesting", "ProgramSupport"]),
    .testTarget(name: "HTTPCoreTests", dependencies: ["HTTPCore", "TestSupport"]),
    .testTarget(name: "ProgramSupportTests", dependencies: ["ProgramSupport"]),
    .testTarget(
      name: "FactorialTests",
      dependencies: [
        "Documents", "Factorial", "FactorialService", "FactorialServerApp", "HTTPCore",
        "TestSupport",
      ]),
    .testTarget(name: "LoadTestingTests", dependencies: ["Charts", "LoadTesting"]),
    .testTarget(name: "MetricsTests", dependencies: ["Metrics"]),
    // The Redis client's parser and SHA-1, and the client against a real redis-server.
    .testTarget(
      name: "RedisClientTests", dependencies: ["RedisClient", "HTTPCore", "TestSupport"]),
    // The shared queue, leases and lock against a real redis-server.
    .testTarget(
      name: "SharedQueueTests",
      dependencies: ["Balancing", "HTTPCore", "RedisClient", "SharedQueue", "TestSupport"]),
    .testTarget(
      name: "BalancingTests",
      dependencies: ["BalancerApp", "Balancing", "Documents", "HTTPCore", "TestSupport"]),
    .testTarget(
      name: "EndToEndTests",
      dependencies: [
        "balancer", "factorial-server", "loadtest", "Documents", "Factorial", "HTTPCore",
        "TestSupport",
      ]),
  ],
  swiftLanguageModes: [.v5]
)
