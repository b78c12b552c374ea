/// Consistent hashing as in the second document: a ring of `slots` positions, each server placed
/// at `virtualNodes` of them; a key belongs to the first server at or after its own position.
///
/// Positions come from a 64-bit FNV-1a hash, and servers that land on the same slot are ordered
/// by name, so a server's place never depends on which others are present: adding or removing
/// one of N servers moves only the keys that land on its arcs, about 1/N of them.
public struct HashRing: Sendable {
  public let slots: Int
  public let virtualNodes: Int
  /// (slot, server), sorted by slot then by server.
  private var ring: [(slot: Int, server: ServerAddress)] = []

  public init(slots: Int = 512, virtualNodes: Int = 9, servers: [ServerAddress] = []) {
    precondition(slots > 0 && virtualNodes > 0)
    self.slots = slots
    self.virtualNodes = virtualNodes
    rebuild(servers)
  }

  /// Places exactly these servers on the ring.
  public mutating func rebuild(_ servers: [ServerAddress]) {
    ring = servers.flatMap { server in
      (0..<virtualNodes).map { node in (Self.slot(of: "\(server)#\(node)", slots: slots), server) }
    }
    ring.sort { ($0.slot, $0.server) < ($1.slot, $1.server) }
  }

  /// The server that owns `key`, or nil when the ring is empty.
  public func server(for key: String) -> ServerAddress? {
    guard !ring.isEmpty else { return nil }
    let position = Self.slot(of: key, slots: slots)
    // The first virtual node at or after the key's slot, wrapping around.
    var low = 0
    var high = ring.count
    while low < high {
      let middle = (low + high) / 2
      if ring[middle].slot < position { low = middle + 1 } else { high = middle }
    }
    return ring[low == ring.count ? 0 : low].server
  }

  /// A key's slot: FNV-1a (64-bit) of its UTF-8 bytes, modulo the number of slots.
  static func slot(of key: String, slots: Int) -> Int {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in key.utf8 {
      hash ^= UInt64(byte)
      hash = hash &* 0x100_0000_01b3
    }
    // Mix the high bits in, so that small moduli see them too.
    hash ^= hash >> 29
    return Int(hash % UInt64(slots))
  }
}
