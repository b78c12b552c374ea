// libFuzzer target for `HTTPRequestParser` (run it with `bench/fuzz.sh request-parser SECONDS`).
//
// Each input is fed to the parser twice, the way `HTTPConnection` feeds it: parse the unconsumed
// bytes, drop what a complete request used, parse again while bytes remain, wait for more bytes
// on `.needMore`, stop at `.failed`. Once as a single read holding everything, once split into
// reads at points the input itself chooses. Both ways must give the same requests (method,
// target, path, query, version, headers, body), the same final error and the same unconsumed
// rest; any difference, or a broken invariant, traps.
//
// One difference is allowed: the split run may fail while the whole run is still waiting for
// more (`.needMore`) after the same requests, because a prefix can already be hopeless (a
// request line longer than the limit with no line end yet) while the whole input, with a line
// end, still looks like a valid beginning. Every failure must be what a fresh parser says about
// the same bytes, and once the whole run fails too, both errors must be equal.
//
// A mismatch traps with a first line that names its kind, in words that do not depend on the
// details of the input ("split-vs-whole: the split run failed 414 (...) where the whole run
// failed otherwise"). Kinds listed one per line in the environment variable FUZZ_KNOWN_FAILURES
// are let through instead, so that `FUZZ_KEEP_GOING=1 bench/fuzz.sh` can look for new findings
// past ones that are not fixed yet. Broken invariants always trap.
//
// Input layout (libFuzzer mutates all of it; short inputs simply have fewer parts):
//   byte 0         options: bits 0-1 pick the limits (tiny, small, inverted, default; the tiny
//                  and inverted ones also limit bodies by route, as a server's `bodyLimit` does);
//                  bit 2 feeds the split run one byte per read (the cut bytes are then unused);
//                  bit 3 repeats every parse that answered `.needMore` with the same bytes, as a
//                  connection does after answering a parked request; bits 4-7 = number of cuts.
//   next N bytes   the lengths of the first N reads of the split run, each byte + 1 (1...256);
//                  the last read holds whatever remains.
//   the rest       the bytes that arrive on the connection.

import Glibc
import HTTPCore

/// The comparable parts of an `HTTPRequest`.
private struct Request: Equatable {
  var method: String
  var target: String
  var path: String
  var query: String?
  var minorVersion: Int
  var headers: [Field]
  var body: [UInt8]
  var authority: String?
}

private struct Options {
  var limits = HTTPLimits()
  var bodyLimit: (@Sendable (_ method: String, _ path: String) -> Int)?
  var split = SplitPlan()
}

/// Splits the raw input into options and the bytes of the connection.
private func decode(_ input: UnsafeBufferPointer<UInt8>) -> (Options, UnsafeBufferPointer<UInt8>) {
  var options = Options()
  guard let first = input.first else { return (options, input) }
  switch first & 0b11 {
  case 0:  // tiny: every limit is within reach of short inputs
    options.limits.maxRequestLineBytes = 24
    options.limits.maxHeadBytes = 48
    options.limits.maxHeaderCount = 3
    options.limits.maxBodyBytes = 16
    options.bodyLimit = routeBodyLimit
  case 1:  // small
    options.limits.maxRequestLineBytes = 64
    options.limits.maxHeadBytes = 160
    options.limits.maxHeaderCount = 8
    options.limits.maxBodyBytes = 128
  case 2:  // inverted: the request line may be longer than the whole head
    options.limits.maxRequestLineBytes = 80
    options.limits.maxHeadBytes = 40
    options.limits.maxHeaderCount = 2
    options.limits.maxBodyBytes = 8
    options.bodyLimit = routeBodyLimit
  default:  // the server's defaults
    break
  }
  options.split = SplitPlan(options: first, cutsAt: 1, in: input)
  return (options, UnsafeBufferPointer(rebasing: input[options.split.payloadStart...]))
}

/// Body limits by route: none for GET and HEAD, 4 bytes for /port_update/..., else 12 bytes.
@Sendable private func routeBodyLimit(_ method: String, _ path: String) -> Int {
  if method == "GET" || method == "HEAD" { return 0 }
  return path.hasPrefix("/port_update/") ? 4 : 12
}

/// Invariants of every parsed request; also runs the request's derived properties.
private func check(_ request: HTTPRequest, _ parser: HTTPRequestParser) {
  let limits = parser.limits
  guard !request.method.isEmpty, request.target.hasPrefix("/") || request.target == "*" else {
    fatalError("bad method or target: \(request.method) \(request.target)")
  }
  guard request.minorVersion == 0 || request.minorVersion == 1 else {
    fatalError("minor version \(request.minorVersion)")
  }
  guard request.headers.count <= limits.maxHeaderCount else {
    fatalError("\(request.headers.count) header fields, limit \(limits.maxHeaderCount)")
  }
  let length = request.headers["Content-Length"].flatMap { Int($0) } ?? 0
  guard request.body.count == length, length <= limits.maxBodyBytes,
    length == 0 || length <= parser.bodyLimit(request.method, request.path)
  else {
    fatalError("body of \(request.body.count) bytes, Content-Length \(length)")
  }
  guard request.path + (request.query.map { "?" + $0 } ?? "") == request.target else {
    fatalError("path \(request.path) and query \(request.query ?? "nil") of \(request.target)")
  }
  guard !request.target.utf8.contains(UInt8(ascii: "#")) else {
    fatalError("a fragment in the target \(request.target)")
  }
  // Every Host let through names a host: a redirect built from it points somewhere.
  if request.authority != nil || request.headers["Host"] != nil {
    guard let host = request.hostName, !host.isEmpty else {
      fatalError("no host name in \(request.authority ?? request.headers["Host"] ?? "")")
    }
  }
  _ = request.keepAlive
  _ = request.queryValue("")
  // A minimal return is only ever read from a Prefer field that says `minimal`.
  if request.prefersMinimalReturn {
    let prefer = request.headers.filter { $0.name.lowercased() == "prefer" }
    guard prefer.contains(where: { $0.value.lowercased().contains("minimal") }) else {
      fatalError("a minimal return read from \(prefer.map(\.value))")
    }
  }
  // Percent-decoding: a value without `%` comes back as sent; each escape is three bytes to one.
  if let raw = request.queryValue("n"), let decoded = try? request.decodedQueryValue("n") {
    let escapes = raw.utf8.filter { $0 == UInt8(ascii: "%") }.count
    guard decoded.utf8.count == raw.utf8.count - 2 * escapes, escapes > 0 || decoded == raw else {
      fatalError("n=\(raw) decoded to \(decoded)")
    }
  }
}

private func snapshot(_ request: HTTPRequest) -> Request {
  Request(
    method: request.method, target: request.target, path: request.path, query: request.query,
    minorVersion: request.minorVersion, headers: fields(request.headers), body: request.body,
    authority: request.authority)
}

/// Feeds `reads` to a request parser as a connection does.
private func run(_ reads: [ArraySlice<UInt8>], _ options: Options) -> Outcome<Request> {
  run(
    reads, repeatNeedMore: options.split.repeatNeedMore,
    makeParser: { HTTPRequestParser(limits: options.limits, bodyLimit: options.bodyLimit) },
    parse: { parser, bytes, _ in parser.parse(bytes) },
    accept: { request, parser, _ in
      check(request, parser)
      return snapshot(request)
    },
    handled: { parser, request in parser.recycle(&request.headers) })
}

/// A request as a line of a report.
private func reportLine(_ r: Request) -> String {
  let target =
    r.target.count > 60 ? "\(r.target.prefix(60))... (\(r.target.utf8.count) bytes)" : r.target
  return "\(r.method) \(target) HTTP/1.\(r.minorVersion) [\(describe(r.headers))] "
    + "body \(r.body.count) bytes"
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let (options, payload) = decode(UnsafeBufferPointer(start: data, count: size))
  let bytes = Array(payload)
  let whole = run(bytes.isEmpty ? [] : [bytes[...]], options)
  let reads = options.split.reads(of: bytes)
  let pieces = run(reads, options)
  let failedEarly =
    whole.failure == nil && pieces.failure != nil && whole.messages == pieces.messages
  if whole != pieces && !failedEarly {
    let what = mismatchKind(whole, pieces, noun: "request")
    if knownFailures.contains(Substring(what)) { return 0 }
    fatalError(
      """
      \(what)
      limits: line \(options.limits.maxRequestLineBytes), \
      head \(options.limits.maxHeadBytes), fields \(options.limits.maxHeaderCount), \
      body \(options.limits.maxBodyBytes); \(describe(reads))
      whole:
      \(describe(whole, reportLine))
      split:
      \(describe(pieces, reportLine))
      """)
  }
  return 0
}
