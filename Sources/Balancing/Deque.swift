/// A double-ended queue on a growable ring buffer: O(1) append and popFirst.
public struct Deque<Element>: Sequence {
  private var storage: [Element?] = []
  private var head = 0
  public private(set) var count = 0

  public init() {}

  public var isEmpty: Bool { count == 0 }
  public var first: Element? { count == 0 ? nil : storage[head] }

  public mutating func append(_ element: Element) {
    if count == storage.count { grow() }
    storage[(head + count) % storage.count] = element
    count += 1
  }

  public mutating func popFirst() -> Element? {
    guard count > 0 else { return nil }
    let element = storage[head]
    storage[head] = nil
    head = (head + 1) % storage.count
    count -= 1
    return element
  }

  public var last: Element? { count == 0 ? nil : storage[(head + count - 1) % storage.count] }

  public mutating func popLast() -> Element? {
    guard count > 0 else { return nil }
    let index = (head + count - 1) % storage.count
    let element = storage[index]
    storage[index] = nil
    count -= 1
    return element
  }

  /// The position (0 = first) of the first element matching `predicate`.
  public func firstIndex(where predicate: (Element) -> Bool) -> Int? {
    for offset in 0..<count where predicate(storage[(head + offset) % storage.count]!) {
      return offset
    }
    return nil
  }

  /// Removes the element at `offset` (0 = first), keeping the others' order: the ones behind it
  /// move up one place. O(n), without allocating.
  public mutating func remove(at offset: Int) {
    precondition(offset >= 0 && offset < count, "Deque index out of range")
    for position in offset..<(count - 1) {
      storage[(head + position) % storage.count] = storage[(head + position + 1) % storage.count]
    }
    storage[(head + count - 1) % storage.count] = nil
    count -= 1
  }

  public init<S: Sequence>(_ elements: S) where S.Element == Element {
    for element in elements { append(element) }
  }

  public func makeIterator() -> AnyIterator<Element> {
    var offset = 0
    return AnyIterator {
      guard offset < count else { return nil }
      defer { offset += 1 }
      return storage[(head + offset) % storage.count]
    }
  }

  private mutating func grow() {
    var bigger = [Element?](repeating: nil, count: Swift.max(16, storage.count * 2))
    for offset in 0..<count { bigger[offset] = storage[(head + offset) % storage.count] }
    storage = bigger
    head = 0
  }
}

extension Deque where Element: Equatable {
  public func firstIndex(of element: Element) -> Int? { firstIndex { $0 == element } }
  public func contains(_ element: Element) -> Bool { firstIndex(of: element) != nil }
}
