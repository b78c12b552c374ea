// libFuzzer target for servers.json loading (run it with `bench/fuzz.sh servers-file SECONDS`).
//
// The input is the whole file. `ServersFile.parse` must not crash; a rejection must say why.
// When it accepts the file, the result must be a usable pool (at least one entry, ports 1-65535,
// distinct addresses, distinct and valid names), and it must round-trip: its `json` text parses
// again, to an equal value whose `json` is the same text. Anything else traps.
//
// A failed round trip traps with a first line that names its kind ("round trip: ..."); kinds
// listed one per line in the environment variable FUZZ_KNOWN_FAILURES are let through instead,
// so that `FUZZ_KEEP_GOING=1 bench/fuzz.sh` can look for new findings past ones that are not
// fixed yet. Broken invariants always trap.

import Balancing
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let file: ServersFile
  do {
    file = try ServersFile.parse(Data(bytes: data, count: size))
  } catch {
    guard !error.message.isEmpty else { fatalError("rejected without a message") }
    return 0
  }
  check(file)
  let text = file.json
  let again: ServersFile
  do {
    again = try ServersFile.parse(Data(text.utf8))
  } catch {
    fail("round trip: the json is rejected", "\(error)\n\(text)")
    return 0
  }
  if again != file {
    fail("round trip: the pool changed", "\(file.entries)\n\(again.entries)\nvia \(text)")
  } else if again.json != text {
    fail("round trip: the json is not stable", "\(text)\n\(again.json)")
  }
  return 0
}

/// Traps with `kind` on the first line, unless it is a known failure.
private func fail(_ kind: String, _ details: String) {
  if knownFailures.contains(Substring(kind)) { return }
  fatalError("\(kind)\n\(details)")
}

/// What an accepted file promises the balancer.
private func check(_ file: ServersFile) {
  guard !file.entries.isEmpty else { fatalError("accepted an empty pool") }
  guard Set(file.servers).count == file.servers.count else {
    fatalError("accepted a duplicate address: \(file.servers)")
  }
  for entry in file.entries {
    guard (1...65535).contains(entry.address.port) else {
      fatalError("accepted port \(entry.address.port)")
    }
    if let host = entry.address.host, host.isEmpty { fatalError("accepted an empty host") }
    if let name = entry.name, !ServersFile.isValidName(name) {
      fatalError("accepted the name \(name.debugDescription)")
    }
  }
  let names = file.entries.map(\.displayName)
  guard Set(names).count == names.count else { fatalError("accepted a duplicate name: \(names)") }
}
