// What one wake-up costs on this machine: two processes pass a small message back and forth over
// a connected socket, each sleeping in poll(2) until the other's message arrives, as the
// balancer, its servers and their clients do for every job. Prints the CPU time (user + system,
// from getrusage) each side spends per round trip, and the round trip's wall time.
//
// Built and run by bench/wakeup-cost.sh, which runs it with both processes free to go to either
// CPU (the scheduler's choice, as for the real programs) and with both held on one CPU (taskset),
// over TCP on 127.0.0.1 and over a Unix socket pair.
//
// Usage: wakeup_cost tcp|unix ROUND_TRIPS
import Glibc

func fail(_ message: String) -> Never {
  fputs("wakeup_cost: \(message)\n", stderr)
  exit(2)
}

func cpuSeconds(_ who: Int32) -> Double {
  var usage = rusage()
  getrusage(__rusage_who_t(who), &usage)
  func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
  return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

func monotonicSeconds() -> Double {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// A connected pair of stream sockets: over TCP on 127.0.0.1 (Nagle off, as the programs set it)
/// or a Unix socket pair.
func connectedPair(tcp: Bool) -> (Int32, Int32) {
  if !tcp {
    var pair: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else {
      fail("socketpair failed")
    }
    return (pair[0], pair[1])
  }
  let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  let bound = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
      bind(listener, $0, length) == 0 && listen(listener, 1) == 0
        && getsockname(listener, $0, &length) == 0
    }
  }
  guard bound else { fail("cannot listen on 127.0.0.1") }
  let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  let connected = withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) == 0 }
  }
  guard connected else { fail("cannot connect to 127.0.0.1") }
  let server = accept(listener, nil, nil)
  close(listener)
  var on: Int32 = 1
  for fd in [client, server] {
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
  }
  return (client, server)
}

/// Sleeps in poll(2) until `fd` is readable, then reads what is there. (The programs sleep in
/// epoll_wait, which Glibc's module does not offer; both sleep on the socket's wait queue and are
/// woken the same way, by the writer's `sock_def_readable`.)
func awaitMessage(on fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
  var watched = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
  guard poll(&watched, 1, -1) == 1 else { return false }
  return read(fd, buffer.baseAddress, buffer.count) > 0
}

let arguments = CommandLine.arguments
if arguments.count == 2, arguments[1] == "--help" || arguments[1] == "-h" {
  print("usage: wakeup_cost tcp|unix ROUND_TRIPS")
  exit(0)
}
guard arguments.count == 3, arguments[1] == "tcp" || arguments[1] == "unix",
  let roundTrips = Int(arguments[2]), roundTrips > 0
else { fail("usage: wakeup_cost tcp|unix ROUND_TRIPS") }

let (near, far) = connectedPair(tcp: arguments[1] == "tcp")
let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
buffer.initializeMemory(as: UInt8.self, repeating: 0x78)
// A request the size of a report, an answer the size of the report's answer.
let requestBytes = 96
let answerBytes = 40

let child = fork()
if child == 0 {
  close(near)
  for _ in 0..<roundTrips {
    guard awaitMessage(on: far, into: buffer) else { break }
    _ = write(far, buffer.baseAddress, answerBytes)
  }
  _exit(0)
}
close(far)
let startWall = monotonicSeconds()
let startCPU = cpuSeconds(RUSAGE_SELF.rawValue)
for _ in 0..<roundTrips {
  _ = write(near, buffer.baseAddress, requestBytes)
  guard awaitMessage(on: near, into: buffer) else { fail("the other process stopped answering") }
}
let ownCPU = cpuSeconds(RUSAGE_SELF.rawValue) - startCPU
var status: Int32 = 0
waitpid(child, &status, 0)
let wall = monotonicSeconds() - startWall
let childCPU = cpuSeconds(RUSAGE_CHILDREN.rawValue)
let perTrip = 1e6 / Double(roundTrips)
func micros(_ value: Double) -> String {
  let scaled = Int((value * perTrip * 10).rounded())
  return "\(scaled / 10).\(scaled % 10)"
}
print(
  "\(arguments[1]): round trip \(micros(wall)) µs; CPU per round trip: asking side \(micros(ownCPU)) µs, answering side \(micros(childCPU)) µs"
)
