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
///
/// A value: its copies are the same right, and once the request is answered or cancelled every
/// copy is spent. A connection answers its requests one at a time through one `Exchange`, opened
/// anew for each request, so a responder kept from an earlier request answers nothing, whoever
/// kept it and however (a value cannot be held weakly).
public struct HTTPResponder {
  /// The state of a connection's current request, reused from one request to the next; the
  /// generation tells which request a responder was made for.
  final class Exchange {
    fileprivate var generation: UInt64 = 0
    /// Held until the answer is sent or the request cancelled, then let go: a strong reference
    /// that never outlives the exchange (a weak one would cost every connection a side table
    /// and a slow reference count).
    fileprivate var sink: ResponseSink?
    fileprivate var onCancel: (() -> Void)?
    /// Whether its last request was answered or cancelled (a new exchange has had none).
    fileprivate(set) var isFinished = true

    init() {}
  }

  private let exchange: Exchange
  private let generation: UInt64
  /// Whether the request was HEAD (the sink leaves the body out).
  public let isHead: Bool
  /// Whether the connection will close after this response.
  public let closesConnection: Bool
  /// Whether the response says `Connection: keep-alive`: an HTTP/1.0 client that asked to keep
  /// the connection takes it to close after the answer unless told it is kept (RFC 9112
  /// Appendix C.2.2, RFC 2068 §19.7.1).
  public let confirmsKeepAlive: Bool

  /// A responder with an exchange of its own.
  public init(
    sink: ResponseSink, isHead: Bool = false, closesConnection: Bool = false,
    confirmsKeepAlive: Bool = false
  ) {
    self.init(
      opening: Exchange(), sink: sink, isHead: isHead, closesConnection: closesConnection,
      confirmsKeepAlive: confirmsKeepAlive)
  }

  /// Opens `exchange` for a new request: every responder made for an earlier one is spent.
  /// `exchange` must be finished (its last request answered or cancelled).
  init(
    opening exchange: Exchange, sink: ResponseSink, isHead: Bool, closesConnection: Bool,
    confirmsKeepAlive: Bool
  ) {
    precondition(exchange.isFinished, "an exchange is opened again only once it is finished")
    exchange.generation &+= 1
    exchange.sink = sink
    exchange.onCancel = nil
    exchange.isFinished = false
    self.exchange = exchange
    generation = exchange.generation
    self.isHead = isHead
    self.closesConnection = closesConnection
    self.confirmsKeepAlive = confirmsKeepAlive && !closesConnection
  }

  /// Whether this responder is the exchange's current one (not one of an earlier request).
  private var isCurrent: Bool { exchange.generation == generation }

  /// Whether two responders are the same right (copies of one another).
  func isSame(as other: HTTPResponder) -> Bool {
    exchange === other.exchange && generation == other.generation
  }

  /// Called at most once, if the connection closes before `respond` was called. Setting it
  /// once the request is answered or cancelled does nothing.
  public var onCancel: (() -> Void)? {
    get { isCurrent ? exchange.onCancel : nil }
    nonmutating set {
      guard !isFinished else { return }
      exchange.onCancel = newValue
    }
  }

  /// Whether `respond` has been called (or the request was cancelled).
  public var isFinished: Bool { !isCurrent || exchange.isFinished }

  /// Sends the response. Later calls are ignored. Returns false if the client is gone.
  @discardableResult
  public func respond(_ response: HTTPResponse, onComplete: (() -> Void)? = nil) -> Bool {
    guard !isFinished else { return false }
    exchange.isFinished = true
    exchange.onCancel = nil
    guard let sink = exchange.sink else {
      onComplete?()
      return false
    }
    exchange.sink = nil
    sink.send(response, for: self, onComplete: onComplete)
    return true
  }

  /// Marks the request abandoned by its client and tells the handler.
  public func cancel() {
    guard !isFinished else { return }
    exchange.isFinished = true
    exchange.sink = nil
    let cancelled = exchange.onCancel
    exchange.onCancel = nil
    cancelled?()
  }
}

/// Answers requests. Implementations hold the application's routes and logic, not sockets.
public protocol HTTPHandler: AnyObject {
  /// Handles one request; must eventually call `responder.respond` unless it is cancelled.
  func handle(_ request: HTTPRequest, responder: HTTPResponder)
}
