import Glibc

/// One client connection of an `HTTPServer`: reads, parses, hands requests to the handler one at a
/// time (pipelined requests wait their turn, so answers keep their order), and writes answers.
///
/// Watched edge-triggered for reading and writing from accept to close, so parking a request,
/// answering it and waiting for room to write cost no `epoll_ctl` calls: a parked connection
/// simply does not read when told that bytes arrived, and reads them once it is answered.
final class HTTPConnection: EventHandler, ResponseSink {
  let fd: Int32
  /// Touched only when the connection changes sets or closes: an unowned reference to a server
  /// that others hold weakly is slow to follow, so what every request needs is kept below.
  private unowned let server: HTTPServer
  private let handler: HTTPHandler
  /// The loop's time and the server's read buffer, held directly for every request.
  private let clock: LoopClock
  private let readBuffer: UnsafeMutableRawBufferPointer
  private var parser: HTTPRequestParser
  private var input: [UInt8] = []
  private var inputStart = 0
  private var output: [UInt8] = []
  private var outputStart = 0
  /// Callbacks to run once `output` has been written up to `end`.
  private var completions: [(end: Int, body: () -> Void)] = []
  /// The request the handler is answering; further requests wait until it is answered.
  private var current: HTTPResponder?
  /// The state behind the current request's responder, opened anew for each request.
  private let exchange = HTTPResponder.Exchange()
  private var closeAfterWrite = false
  private var isProcessing = false
  /// A request is parked with the handler: the connection reads nothing until it is answered.
  private var isParked = false
  /// Bytes arrived while parked or backed up and were left in the kernel (no new event will
  /// say so).
  private var hasUnreadInput = false
  /// Requests already read wait until the client takes the answers before them (`isBackedUp`).
  private var isHeldBack = false
  /// The client shut its side (the event said so): what it sent before is all there is, even
  /// when the read that drained the socket did not reach the end (a request and its FIN that
  /// arrive together make one edge-triggered event, and no later one).
  private var clientFinished = false
  /// `100 Continue` went out for the request whose body is awaited.
  private var continueSent = false
  /// When the request was parked; a long wait moves it to the loop's background set.
  private var parkedAt: UInt64 = 0
  private var isInBackground = false
  private var isClosed = false
  private var lastActivity: UInt64
  private var requestStarted: UInt64?
  private var writeStarted: UInt64 = 0
  /// The kernel's send queue at the last write-timeout check.
  private var lastUnsent: Int?
  /// The client's IP address, looked up once.
  private lazy var remoteAddress = Socket.peerAddress(fd)

  init(fd: Int32, server: HTTPServer, handler: HTTPHandler) {
    self.fd = fd
    self.server = server
    self.handler = handler
    clock = server.loop.clock
    readBuffer = server.readBuffer
    parser = HTTPRequestParser(
      limits: server.configuration.limits, bodyLimit: server.configuration.bodyLimit)
    lastActivity = clock.now
  }

  /// Unwritten answer bytes past which no further request is served, nor read: a client that
  /// pipelines requests and reads no answers makes the server hold this much and one answer
  /// more, not every answer until the write timeout. The kernel's buffers hold more.
  static let maxUnwrittenOutput = 256 << 10

  /// The client is not taking its answers: serve and read nothing more until it does.
  private var isBackedUp: Bool { output.count - outputStart > Self.maxUnwrittenOutput }

  /// The interim answer to a request that waits to be told to send its body.
  private static let continueLine = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

  /// The interest a connection is registered with, for its whole life (edge-triggered).
  static let interest: Readiness = [.readable, .writable]

  func handleEvent(_ readiness: Readiness) {
    if readiness.contains(.writable) && outputStart < output.count {
      flush()
      // The client took enough of its answers: serve what waited for that, and read on.
      if !isClosed && !isBackedUp && (isHeldBack || hasUnreadInput && current == nil) { serve() }
    }
    guard !isClosed else { return }
    if !readiness.isDisjoint(with: [.peerClosed, .hangup, .error]) {
      if readiness.contains(.peerClosed) { clientFinished = true }
      readAvailable()
    } else if readiness.contains(.readable) {
      // A parked request, or a client that does not take its answers, reads nothing more:
      // what the client sends next stays in the kernel.
      if isParked || isBackedUp { hasUnreadInput = true } else { readAvailable() }
    }
  }

  private func readAvailable() {
    hasUnreadInput = false
    let end = Socket.readAvailable(fd, into: &input, scratch: readBuffer)
    if case .failed = end {
      close()
      return
    }
    if end == .endOfStream { clientFinished = true }
    lastActivity = clock.now
    if current != nil
      && input.count - inputStart > parser.limits.maxHeadBytes + parser.limits.maxBodyBytes
    {
      close()  // a client piling up requests while its first one waits
      return
    }
    serve()
  }

  /// Serves the requests read, and writes their answers; while the client takes them, serves
  /// those held back for it, then reads what it sent meanwhile.
  private func serve() {
    repeat {
      process()
      if clientFinished { finishInput() }
      flush()
    } while isHeldBack && !isBackedUp && !isClosed
    if hasUnreadInput && !isBackedUp && current == nil && !isClosed { readAvailable() }
  }

  /// The client is gone (or will send nothing more): a parked request has nobody to answer;
  /// answers already given to the requests before it go out, then the connection closes (at
  /// once if there are none). Requests held back until the client reads are served first.
  private func finishInput() {
    guard !isHeldBack else { return }
    // Marked first: a handler told of the cancel finds no request to be read after it.
    closeAfterWrite = true
    if let parked = current {
      current = nil
      isParked = false
      parked.cancel()
    }
  }

  /// Parses and dispatches buffered requests until one is parked or the input runs out.
  private func process() {
    guard !isProcessing else { return }
    isProcessing = true
    defer { isProcessing = false }
    isHeldBack = false
    while current == nil && !closeAfterWrite && !isClosed && inputStart < input.count {
      if isBackedUp {
        isHeldBack = true
        break
      }
      let result = input.withUnsafeBytes {
        parser.parse(UnsafeRawBufferPointer(rebasing: $0[inputStart...]))
      }
      // Consumed: the request moves out of the result instead of being copied (a copy retains
      // and releases each of its strings and arrays).
      switch consume result {
      case .needMore:
        if requestStarted == nil { requestStarted = clock.now }
        if !continueSent && parser.expectsContinue {
          // Every request before it is answered (the loop runs only then): this comes next.
          continueSent = true
          output.append(contentsOf: Self.continueLine)
        }
        compactInput()
        return
      case .complete(var request, let consumed):
        request.remoteAddress = remoteAddress
        inputStart += consumed
        requestStarted = nil
        continueSent = false
        let responder = makeResponder(for: request)
        current = responder
        handler.handle(request, responder: responder)
        parser.recycle(&request.headers)
        if current != nil { park() }
      case .failed(let error):
        inputStart = input.count
        closeAfterWrite = true
        HTTPResponse.text(error.status, error.message).write(
          into: &output, close: true, omitBody: false)
      }
    }
    compactInput()
  }

  /// The responder for `request`, on the connection's exchange (the request before it is
  /// finished: a request is read only once `current` is nil).
  private func makeResponder(for request: HTTPRequest) -> HTTPResponder {
    let keepAlive = request.keepAlive
    return HTTPResponder(
      opening: exchange, sink: self, isHead: request.method == "HEAD",
      closesConnection: !keepAlive, confirmsKeepAlive: keepAlive && request.minorVersion == 0)
  }

  /// The handler keeps the request to answer later: read nothing more meanwhile (the kernel holds
  /// what the client sends next; only its hang-up is acted on), and keep no large buffer.
  private func park() {
    isParked = true
    parkedAt = clock.now
    if inputStart == input.count && input.capacity > 4096 {
      input = []
      inputStart = 0
    }
  }

  /// A connection parked for a while waits in the loop's background set (moved there by the
  /// sweep): a crowd of them hanging up at once is handled a batch at a time, never ahead of
  /// everyone else. A short wait stays where it is, so it costs no system calls.
  private func moveToBackground(_ background: Bool) {
    guard isInBackground != background else { return }
    isInBackground = background
    server.loop.setInterest(fd, Self.interest, background: background)
  }

  private func compactInput() {
    if inputStart == input.count {
      input.removeAll(keepingCapacity: input.capacity <= 4096)
      inputStart = 0
    } else if inputStart > 4096 && inputStart * 2 > input.count {
      input.removeFirst(inputStart)
      inputStart = 0
    }
  }

  func send(_ response: HTTPResponse, for responder: HTTPResponder, onComplete: (() -> Void)?) {
    guard !isClosed, let answered = current, responder.isSame(as: answered) else {
      onComplete?()
      return
    }
    current = nil
    if isParked {
      isParked = false
      moveToBackground(false)
    }
    // The connection closes after this answer if the request asked, or if the server was told
    // to close it meanwhile (`closeWhenIdle`): either way the answer says so (RFC 9112 §9.6).
    if responder.closesConnection { closeAfterWrite = true }
    response.write(
      into: &output, close: closeAfterWrite, keepAlive: responder.confirmsKeepAlive,
      omitBody: responder.isHead)
    if let onComplete { completions.append((output.count, onComplete)) }
    if !isProcessing {
      // Answered later (a parked request): write now, then serve any pipelined requests,
      // those already read and those left in the kernel meanwhile.
      serve()
    }
  }

  private func flush() {
    while outputStart < output.count {
      let written = output.withUnsafeBytes {
        write(fd, $0.baseAddress! + outputStart, $0.count - outputStart)
      }
      if written > 0 {
        outputStart += written
        writeStarted = clock.now  // the write timeout counts from the last progress
        lastUnsent = nil
      } else if written < 0 && (errno == EAGAIN || errno == EINTR) {
        break
      } else {
        close()
        return
      }
    }
    runCompletions()
    // What did not fit is written when the kernel says there is room (edge-triggered).
    if outputStart == output.count {
      output.removeAll(keepingCapacity: output.capacity <= 65536)
      outputStart = 0
      if closeAfterWrite { close() }
    }
  }

  private func runCompletions() {
    guard !completions.isEmpty else { return }
    var index = 0
    while index < completions.count && completions[index].end <= outputStart { index += 1 }
    guard index > 0 else { return }
    let done = completions[0..<index]
    completions.removeFirst(index)
    for completion in done { completion.body() }
  }

  /// Closes now if nothing is being written or awaited; otherwise once the response is out.
  func closeWhenIdle() {
    if current == nil && outputStart == output.count { close() } else { closeAfterWrite = true }
  }

  func enforceTimeouts(now: UInt64, configuration: HTTPServer.Configuration) {
    if isParked && !isInBackground && outputStart == output.count
      && now - parkedAt > 200_000_000
    {
      moveToBackground(true)
    }
    if outputStart < output.count {
      guard now - writeStarted > MonotonicClock.nanoseconds(configuration.writeTimeout) else {
        return
      }
      // The kernel wakes writers only once much of its buffer is free: a client still taking
      // bytes from it is making progress, though this side wrote nothing for a while.
      let unsent = Socket.unsentBytes(fd)
      if let unsent, let lastUnsent, unsent < lastUnsent {
        writeStarted = now
        self.lastUnsent = unsent
        return
      }
      lastUnsent = unsent
      if unsent == nil
        || now - writeStarted > 2 * MonotonicClock.nanoseconds(configuration.writeTimeout)
      {
        close()
      }
      return
    }
    if current != nil { return }
    if let requestStarted {
      if now - requestStarted > MonotonicClock.nanoseconds(configuration.requestTimeout) {
        closeAfterWrite = true
        inputStart = input.count
        HTTPResponse.text(.requestTimeout, "the request did not arrive in time")
          .write(into: &output, close: true, omitBody: false)
        flush()
      }
    } else if now - max(lastActivity, writeStarted)
      > MonotonicClock.nanoseconds(configuration.idleTimeout)
    {
      // Idle since the last read or the last answer's last write, whichever came later: a
      // request that waited long (parked) was not idle meanwhile.
      close()
    }
  }

  func close() {
    guard !isClosed else { return }
    isClosed = true
    server.loop.unregister(fd)
    Glibc.close(fd)
    server.connectionDidClose(self)
    let abandoned = current
    current = nil
    abandoned?.cancel()
    let pending = completions
    completions.removeAll()
    for completion in pending { completion.body() }
  }
}
