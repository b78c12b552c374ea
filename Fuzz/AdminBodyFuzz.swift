// libFuzzer target for the bodies of `POST /add` and `DELETE /rm` (run it with
// `bench/fuzz.sh admin-body SECONDS`).
//
// Each input is a short session of changes to a fresh pool of three replicas (5001, 5002, 5003 on
// a balancer at 8001, no servers.json, no processes, names resolved by the loopback-only
// resolver: no name lookups): the input is cut at every 0xFF byte into up to 8 requests, and the
// first byte of each says which (even: /add, odd: /rm); the rest is its body. After each request:
//   - the answer is 200 or 400, and a JSON document;
//   - 400 (bad input) says why (`<Error> ...`) and changes nothing: the replicas and the pool are
//     what they were;
//   - 200 did what the body asked: /add appended exactly n replicas after the old ones, among
//     them every name it gave; /rm took away exactly n replicas, every name it gave among them,
//     kept the others in order, and left at least one;
//   - the replicas stay usable: distinct addresses, distinct names, the pool's servers the same
//     set, and `GET /rep` lists them in order.
// Anything else traps.

import Balancing
import Foundation
import HTTPCore

/// A balancer over 5001-5003 whose replica routes are exercised, as `BalancerApp` builds one.
private func makeReplicas() -> ReplicaManager {
  let issuer = LeaseIssuer(store: LeaseLedger())
  let pool = ServerPool(servers: [5001, 5002, 5003].map { ServerAddress(port: $0) })
  let dispatcher = QueueDispatcher(queue: AvailabilityQueue<ServerAddress>(), issuer: issuer)
  let broker = ServerBroker(pool: pool, issuer: issuer, dispatcher: dispatcher)
  broker.balancerPort = 8001
  let replicas = Balancer(broker: broker).replicas
  // Every fourth port counts as taken on this machine.
  replicas.isPortFree = { $0 % 4 != 0 }
  return replicas
}

/// What a request asked, read back from a body that was accepted.
private func requested(_ body: ArraySlice<UInt8>) -> (n: Int, names: [String]) {
  guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
    let n = object["n"] as? Int
  else { fatalError("accepted a body without a whole n: \(text(body))") }
  return (n, object["hostnames"] as? [String] ?? [])
}

private func text(_ bytes: some Collection<UInt8>) -> String {
  String(decoding: bytes.prefix(300), as: UTF8.self).debugDescription
}

/// Whether `entry` is the one `name` names: its name, or its address however written.
private func names(_ name: String, _ entry: ServerEntry) -> Bool {
  entry.displayName == name || ServerAddress(parsing: name) == entry.address
}

/// The replicas' invariants, whatever the requests were.
private func checkUsable(_ replicas: ReplicaManager) {
  let entries = replicas.entries
  guard !entries.isEmpty else { fatalError("no replica left") }
  guard Set(entries.map(\.address)).count == entries.count else {
    fatalError("two replicas are one server: \(entries.map(\.address))")
  }
  guard Set(entries.map(\.displayName)).count == entries.count else {
    fatalError("two replicas share a name: \(entries.map(\.displayName))")
  }
  guard Set(replicas.broker.pool.servers) == Set(entries.map(\.address)) else {
    fatalError("the pool \(replicas.broker.pool.servers) is not the replicas \(entries)")
  }
  let listed = replicas.replicas()
  guard listed.status.code == 200,
    let object = try? JSONSerialization.jsonObject(with: Data(listed.body)) as? [String: Any],
    let message = object["message"] as? [String: Any],
    let shown = message["replicas"] as? [String], shown == entries.map(\.displayName)
  else { fatalError("GET /rep does not list \(entries.map(\.displayName)): \(text(listed.body))") }
}

/// Checks one answer of /add (`adding`) or /rm against the replicas before and after it.
private func checkAnswer(
  _ response: HTTPResponse, adding: Bool, body: ArraySlice<UInt8>, before: [ServerEntry],
  poolBefore: [ServerAddress], replicas: ReplicaManager
) {
  let after = replicas.entries
  switch response.status.code {
  case 400:
    guard
      let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
      let message = object["message"] as? String, message.hasPrefix("<Error> ")
    else { fatalError("400 without a reason: \(text(response.body))") }
    guard after == before, replicas.broker.pool.servers == poolBefore else {
      fatalError("refused (\(message)) but changed \(before) to \(after)")
    }
  case 200:
    let (n, given) = requested(body)
    if adding {
      guard after.count == before.count + n, Array(after.prefix(before.count)) == before else {
        fatalError("/add n=\(n) changed \(before) to \(after)")
      }
      let added = after.dropFirst(before.count)
      for name in given where !added.contains(where: { names(name, $0) }) {
        fatalError("/add of \(name.debugDescription) added \(Array(added))")
      }
    } else {
      guard after.count == before.count - n, after.allSatisfy(before.contains),
        after == before.filter(after.contains)
      else { fatalError("/rm n=\(n) changed \(before) to \(after)") }
      for name in given where after.contains(where: { names(name, $0) }) {
        fatalError("/rm of \(name.debugDescription) kept it: \(after)")
      }
    }
  default:
    fatalError("answered \(response.status.code): \(text(response.body))")
  }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let input = UnsafeBufferPointer(start: data, count: size)
  let replicas = makeReplicas()
  for request in input.split(separator: 0xFF, omittingEmptySubsequences: true).prefix(8) {
    let adding = request.first! % 2 == 0
    let body = ArraySlice(request.dropFirst())
    let before = replicas.entries
    let poolBefore = replicas.broker.pool.servers
    let response = adding ? replicas.add(body: Array(body)) : replicas.remove(body: Array(body))
    checkAnswer(
      response, adding: adding, body: body, before: before, poolBefore: poolBefore,
      replicas: replicas)
    checkUsable(replicas)
  }
  return 0
}
