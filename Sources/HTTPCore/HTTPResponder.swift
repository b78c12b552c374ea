/// Where a responder delivers its response: a live connection, or a test's collector.
public protocol ResponseSink: AnyObject {
  /// Writes `response`; `onComplete` runs once it has been handed to the kernel or the
  /// connection is gone.
  func send(_ response: HTTPResponse, for responder: HTTPResponder, onComplete: (() -> Void)?)
}

/// The one-time right to answer a request, now or later.
///
/// A handler may answer at once or keep the responder and answer when it can (a client waiting
/// for a free server keeps only its responder and its parked connection, no thread). If the
/// client goes away first, `onCancel` runs, so the handler can forget the request.
public final class HTTPResponder {
  /// Held until the answer is sent or the request cancelled, then let go: a strong reference
  /// that never outlives the exchange (a weak one would cost every connection a side table
  /// and a slow reference count).
  private var sink: ResponseSink?
  /// Whether the request was HEAD (the sink leaves the body out).
  public private(set) var isHead: Bool
  /// Whether the connection will close after this response.
  public private(set) var closesConnection: Bool
  /// Whether the response says `Connection: keep-alive`: an HTTP/1.0 client that asked to keep
  /// the connection takes it to close after the answer unless told it is kept (RFC 9112
  /// Appendix C.2.2, RFC 2068 §19.7.1).
  public private(set) var confirmsKeepAlive: Bool
  /// Called at most once, if the connection closes before `respond` was called.
  public var onCancel: (() -> Void)?
  /// Whether `respond` has been called (or the request was cancelled).
  public private(set) var isFinished = false

  public init(
    sink: ResponseSink, isHead: Bool = false, closesConnection: Bool = false,
    confirmsKeepAlive: Bool = false
  ) {
    self.sink = sink
    self.isHead = isHead
    self.closesConnection = closesConnection
    self.confirmsKeepAlive = confirmsKeepAlive && !closesConnection
  }

  /// Makes an answered responder the right to answer another request on the same sink. Only
  /// once it has answered, and only while nothing else holds it (`isKnownUniquelyReferenced`): nobody
  /// can then answer or cancel the earlier request through it.
  func reuse(
    for sink: ResponseSink, isHead: Bool, closesConnection: Bool, confirmsKeepAlive: Bool
  ) {
    self.sink = sink
    onCancel = nil  // set after the answer, it could never have run
    self.isHead = isHead
    self.closesConnection = closesConnection
    self.confirmsKeepAlive = confirmsKeepAlive && !closesConnection
    isFinished = false
  }

  /// Sends the response. Later calls are ignored. Returns false if the client is gone.
  @discardableResult
  public func respond(_ response: HTTPResponse, onComplete: (() -> Void)? = nil) -> Bool {
    guard !isFinished else { return false }
    isFinished = true
    onCancel = nil
    guard let sink else {
      onComplete?()
      return false
    }
    self.sink = nil
    sink.send(response, for: self, onComplete: onComplete)
    return true
  }

  /// Marks the request abandoned by its client and tells the handler.
  public func cancel() {
    guard !isFinished else { return }
    isFinished = true
    sink = nil
    let cancelled = onCancel
    onCancel = nil
    cancelled?()
  }
}

/// Answers requests. Implementations hold the application's routes and logic, not sockets.
public protocol HTTPHandler: AnyObject {
  /// Handles one request; must eventually call `responder.respond` unless it is cancelled.
  func handle(_ request: HTTPRequest, responder: HTTPResponder)
}
