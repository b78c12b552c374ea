import CEpoll
import Glibc
import Synchronization

/// Something that wants to hear when its file descriptor is ready.
public protocol EventHandler: AnyObject {
  /// Called on the loop's thread with the epoll readiness bits (`Readiness`).
  func handleEvent(_ readiness: Readiness)
}

/// The readiness bits epoll reported for a file descriptor.
public struct Readiness: OptionSet, Sendable {
  public let rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }
  public static let readable = Readiness(rawValue: CEPOLL_IN)
  public static let writable = Readiness(rawValue: CEPOLL_OUT)
  public static let error = Readiness(rawValue: CEPOLL_ERR)
  public static let hangup = Readiness(rawValue: CEPOLL_HUP)
  public static let peerClosed = Readiness(rawValue: CEPOLL_RDHUP)
}

/// Identifies a timer so that it can be cancelled.
public struct TimerID: Hashable, Sendable {
  fileprivate let value: UInt64
}

/// A single-threaded epoll event loop, in the spirit of redis' `ae.c`.
///
/// File descriptors are registered with an `EventHandler` and an interest set; timers run after a
/// delay or periodically; `execute(_:)` posts work from any thread. Everything else in this module
/// runs on the loop's thread, so loop-owned state needs no locks.
public final class EventLoop: @unchecked Sendable {
  private let epollFD: Int32
  /// A second epoll set for file descriptors that may wake in great numbers at once and can wait
  /// (connections parked by their handler): it is itself watched by `epollFD`, and at most
  /// `backgroundBatch` of its events are handled per turn, so a crowd of them never delays the
  /// rest (new connections, answers, timers) by more than one batch.
  private let backgroundFD: Int32
  private let backgroundBatch = 128
  /// Which descriptors are in the background set.
  private var inBackground: [Bool] = []
  /// Which descriptors are watched edge-triggered (`EPOLLET`), kept across interest changes.
  private var edgeFlags: [UInt32] = []
  /// How many times each descriptor was registered. Its events carry the count they were
  /// registered with (`token`): a descriptor closed in a turn may have its number reused at
  /// once for another (a connection closed from another's event, then a new one accepted),
  /// and the event the closed one was ready with, later in the same turn, is not the new one's.
  private var registrations: [UInt32] = []
  private let wakeFD: Int32
  private var handlers: [EventHandler?] = []
  private var timers: [Timer] = []
  private var nextTimerID: UInt64 = 0
  private let posted = Mutex<[@Sendable () -> Void]>([])
  private let stopRequested = Atomic<Bool>(false)
  private var signalHandlers: [Int32: () -> Void] = [:]

  /// The loop's notion of now, refreshed once per wake-up; hold it to read the time cheaply.
  public let clock = LoopClock(now: MonotonicClock.now())

  /// The loop's notion of now (monotonic nanoseconds), refreshed once per wake-up.
  public var now: UInt64 { clock.now }

  private struct Timer {
    let id: TimerID
    var deadline: UInt64
    let interval: UInt64?
    let body: () -> Void
  }

  /// Creates the epoll instance and the wake-up eventfd.
  public init() throws {
    epollFD = cepoll_create()
    guard epollFD >= 0 else { throw SocketError.system("epoll_create1", errno) }
    wakeFD = cepoll_eventfd()
    guard wakeFD >= 0 else { throw SocketError.system("eventfd", errno) }
    guard cepoll_add(epollFD, wakeFD, CEPOLL_IN, UInt64(wakeFD)) == 0 else {
      throw SocketError.system("epoll_ctl", errno)
    }
    backgroundFD = cepoll_create()
    guard backgroundFD >= 0 else { throw SocketError.system("epoll_create1", errno) }
    guard cepoll_add(epollFD, backgroundFD, CEPOLL_IN, UInt64(backgroundFD)) == 0 else {
      throw SocketError.system("epoll_ctl", errno)
    }
  }

  deinit {
    close(backgroundFD)
    close(wakeFD)
    close(epollFD)
  }

  /// Starts watching `fd` for `interest`, calling `handler` when it is ready.
  ///
  /// `edgeTriggered`: the handler hears when readiness arrives (new bytes, room freed after a
  /// write that did not fit), not for as long as it lasts, so it must read until the socket is
  /// dry and may leave bytes in the kernel without being woken again for them. Such a
  /// descriptor can stay watched for reading and writing all its life: no interest changes.
  public func register(
    _ fd: Int32, interest: Readiness, handler: EventHandler, edgeTriggered: Bool = false
  ) throws {
    let index = Int(fd)
    if index >= handlers.count {
      handlers.append(contentsOf: repeatElement(nil, count: index + 1 - handlers.count))
      inBackground.append(contentsOf: repeatElement(false, count: index + 1 - inBackground.count))
      edgeFlags.append(contentsOf: repeatElement(0, count: index + 1 - edgeFlags.count))
      registrations.append(contentsOf: repeatElement(0, count: index + 1 - registrations.count))
    }
    inBackground[index] = false
    edgeFlags[index] = edgeTriggered ? CEPOLL_ET : 0
    registrations[index] &+= 1
    guard cepoll_add(epollFD, fd, events(fd, interest), token(fd)) == 0 else {
      throw SocketError.system("epoll_ctl(add)", errno)
    }
    handlers[index] = handler
  }

  /// Changes what `fd` is watched for.
  public func setInterest(_ fd: Int32, _ interest: Readiness) {
    _ = cepoll_modify(set(of: fd), fd, events(fd, interest), token(fd))
  }

  /// What `fd`'s events carry: its number, and in the high half its registration's count.
  private func token(_ fd: Int32) -> UInt64 {
    let count = Int(fd) < registrations.count ? registrations[Int(fd)] : 0
    return UInt64(count) << 32 | UInt64(UInt32(bitPattern: fd))
  }

  /// The handler of the descriptor an event with `token` is for, unless the descriptor it was
  /// registered as is gone (unregistered, or closed and its number registered again).
  private func handler(for token: UInt64) -> EventHandler? {
    let fd = Int(token & 0xFFFF_FFFF)
    guard fd < handlers.count, registrations[fd] == UInt32(token >> 32) else { return nil }
    return handlers[fd]
  }

  /// The epoll event bits for watching `fd` for `interest`.
  private func events(_ fd: Int32, _ interest: Readiness) -> UInt32 {
    let edge = Int(fd) < edgeFlags.count ? edgeFlags[Int(fd)] : 0
    return interest.rawValue | CEPOLL_RDHUP | edge
  }

  /// Moves `fd` to the background set (or back) with a new interest: background descriptors
  /// are served a batch per turn, after everything else is ready.
  public func setInterest(_ fd: Int32, _ interest: Readiness, background: Bool) {
    let index = Int(fd)
    guard index < inBackground.count, inBackground[index] != background else {
      return setInterest(fd, interest)
    }
    _ = cepoll_remove(set(of: fd), fd)
    inBackground[index] = background
    _ = cepoll_add(set(of: fd), fd, events(fd, interest), token(fd))
  }

  /// Stops watching `fd`; call before closing it.
  public func unregister(_ fd: Int32) {
    _ = cepoll_remove(set(of: fd), fd)
    if Int(fd) < handlers.count {
      handlers[Int(fd)] = nil
      inBackground[Int(fd)] = false
      edgeFlags[Int(fd)] = 0
    }
  }

  private func set(of fd: Int32) -> Int32 {
    Int(fd) < inBackground.count && inBackground[Int(fd)] ? backgroundFD : epollFD
  }

  /// Runs `body` once on the loop after `seconds`.
  @discardableResult
  public func schedule(after seconds: Double, _ body: @escaping () -> Void) -> TimerID {
    addTimer(delay: MonotonicClock.nanoseconds(seconds), interval: nil, body)
  }

  /// Runs `body` on the loop every `seconds`, first after one interval.
  @discardableResult
  public func schedule(every seconds: Double, _ body: @escaping () -> Void) -> TimerID {
    let interval = max(MonotonicClock.nanoseconds(seconds), 1_000_000)
    return addTimer(delay: interval, interval: interval, body)
  }

  /// Cancels a timer; cancelling one that already ran is harmless.
  public func cancel(_ timer: TimerID) {
    timers.removeAll { $0.id == timer }
  }

  /// Runs `body` on the loop's thread soon. Safe to call from any thread.
  public func execute(_ body: @escaping @Sendable () -> Void) {
    posted.withLock { $0.append(body) }
    cepoll_eventfd_signal(wakeFD)
  }

  /// Calls `body` on the loop whenever the process receives `signal`.
  public func onSignal(_ signal: Int32, _ body: @escaping () -> Void) {
    signalHandlers[signal] = body
    _ = cepoll_forward_signal(signal, wakeFD)
  }

  /// Asks `run()` to return after the current iteration. Safe to call from any thread.
  public func stop() {
    stopRequested.store(true, ordering: .releasing)
    cepoll_eventfd_signal(wakeFD)
  }

  /// Waits for and dispatches events until `stop()` is called.
  public func run() {
    var events = [cepoll_event](repeating: cepoll_event(), count: 256)
    while !stopRequested.load(ordering: .acquiring) {
      let count = events.withUnsafeMutableBufferPointer {
        cepoll_wait(epollFD, $0.baseAddress, Int32($0.count), timeoutMilliseconds())
      }
      clock.now = MonotonicClock.now()
      if count > 0 {
        for index in 0..<Int(count) {
          let token = events[index].token
          if token == UInt64(wakeFD) {
            cepoll_eventfd_drain(wakeFD)
            runPosted()
            runSignals()
          } else if token == UInt64(backgroundFD) {
            runBackground()
          } else if let handler = handler(for: token) {
            handler.handleEvent(Readiness(rawValue: events[index].events))
          }
        }
      }
      runDueTimers()
    }
    stopRequested.store(false, ordering: .releasing)
  }

  /// One batch of the background set's events (the set stays ready if more are waiting).
  private func runBackground() {
    var events = [cepoll_event](repeating: cepoll_event(), count: backgroundBatch)
    let count = events.withUnsafeMutableBufferPointer {
      cepoll_wait(backgroundFD, $0.baseAddress, Int32($0.count), 0)
    }
    guard count > 0 else { return }
    for index in 0..<Int(count) {
      if let handler = handler(for: events[index].token) {
        handler.handleEvent(Readiness(rawValue: events[index].events))
      }
    }
  }

  private func addTimer(delay: UInt64, interval: UInt64?, _ body: @escaping () -> Void) -> TimerID {
    nextTimerID += 1
    let id = TimerID(value: nextTimerID)
    timers.append(
      Timer(id: id, deadline: MonotonicClock.now() + delay, interval: interval, body: body))
    return id
  }

  private func timeoutMilliseconds() -> Int32 {
    guard let next = timers.lazy.map(\.deadline).min() else { return -1 }
    let current = MonotonicClock.now()
    if next <= current { return 0 }
    return Int32(min((next - current + 999_999) / 1_000_000, 60_000))
  }

  private func runDueTimers() {
    let current = now
    guard timers.contains(where: { $0.deadline <= current }) else { return }
    let due = timers.filter { $0.deadline <= current }
    guard !due.isEmpty else { return }
    for timer in due {
      // An earlier timer in this batch may have cancelled this one.
      guard let index = timers.firstIndex(where: { $0.id == timer.id }) else { continue }
      if let interval = timer.interval {
        timers[index].deadline = current + interval
      } else {
        timers.remove(at: index)
      }
      timer.body()
    }
  }

  private func runPosted() {
    let work = posted.withLock { queue -> [@Sendable () -> Void] in
      defer { queue.removeAll(keepingCapacity: true) }
      return queue
    }
    for body in work { body() }
  }

  private func runSignals() {
    let received = cepoll_take_signals()
    guard received != 0 else { return }
    for (signal, body) in signalHandlers where received & (1 << UInt64(signal)) != 0 {
      body()
    }
  }
}
