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
}

private struct Field: Equatable {
  var name: String
  var value: String
}

/// What one run over the input gave: the requests, then the error that ended the connection or
/// the number of bytes received but not used by a request.
private struct Outcome: Equatable {
  var requests: [Request] = []
  var failure: HTTPParseError?
  var unconsumed = 0
}

private struct Options {
  var limits = HTTPLimits()
  var bodyLimit: (@Sendable (_ method: String, _ path: String) -> Int)?
  var byteByByte = false
  var repeatNeedMore = false
  var readLengths: [Int] = []
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
  options.byteByByte = first & 0b100 != 0
  options.repeatNeedMore = first & 0b1000 != 0
  let cuts = min(Int(first >> 4), input.count - 1)
  options.readLengths = input[1..<(1 + cuts)].map { Int($0) + 1 }
  return (options, UnsafeBufferPointer(rebasing: input[(1 + cuts)...]))
}

/// Body limits by route: none for GET and HEAD, 4 bytes for /port_update/..., else 12 bytes.
@Sendable private func routeBodyLimit(_ method: String, _ path: String) -> Int {
  if method == "GET" || method == "HEAD" { return 0 }
  return path.hasPrefix("/port_update/") ? 4 : 12
}

/// Calls the parser on an exact-size copy of `bytes`, so AddressSanitizer catches any read past
/// the end (the bounds checks of unsafe buffers are off in optimized builds).
private func parse(_ parser: inout HTTPRequestParser, _ bytes: ArraySlice<UInt8>)
  -> ParseResult<HTTPRequest>
{
  let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
  defer { copy.deallocate() }
  copy.copyBytes(from: bytes)
  return parser.parse(UnsafeRawBufferPointer(copy))
}

/// Feeds `reads` to a parser as a connection does and records what it saw.
private func run(_ reads: [ArraySlice<UInt8>], _ options: Options) -> Outcome {
  var parser = HTTPRequestParser(limits: options.limits, bodyLimit: options.bodyLimit)
  var outcome = Outcome()
  var input: [UInt8] = []
  var start = 0
  for read in reads {
    input.append(contentsOf: read)
    parsing: while start < input.count {
      let pending = input[start...]
      switch parse(&parser, pending) {
      case .needMore:
        if options.repeatNeedMore {
          let again = parse(&parser, pending)
          guard isNeedMore(again) else {
            fatalError("the same bytes answered .needMore, then \(again)")
          }
        }
        break parsing
      case .complete(let request, let consumed):
        guard consumed >= 1 && consumed <= pending.count else {
          fatalError("consumed \(consumed) of \(pending.count) bytes")
        }
        check(request, parser)
        outcome.requests.append(snapshot(request))
        start += consumed
      case .failed(let error):
        guard (400...599).contains(error.status.code) else {
          fatalError("failure with status \(error.status.code): \(error)")
        }
        // The error must not depend on how the bytes arrived: a fresh parser agrees.
        var fresh = HTTPRequestParser(limits: options.limits, bodyLimit: options.bodyLimit)
        guard case .failed(let again) = parse(&fresh, pending), again == error else {
          fatalError("failed with \(error) here, but a fresh parser on the same bytes did not")
        }
        outcome.failure = error  // (unconsumed stays 0: a failure may come before all bytes)
        return outcome
      }
    }
    if start > 4096 {  // drop used bytes now and then, as the connection does
      input.removeFirst(start)
      start = 0
    }
  }
  outcome.unconsumed = input.count - start
  return outcome
}

private func isNeedMore(_ result: ParseResult<HTTPRequest>) -> Bool {
  if case .needMore = result { return true }
  return false
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
  _ = request.keepAlive
  _ = request.hostName
  _ = request.queryValue("n")
  _ = request.queryValue("")
}

private func snapshot(_ request: HTTPRequest) -> Request {
  Request(
    method: request.method, target: request.target, path: request.path, query: request.query,
    minorVersion: request.minorVersion,
    headers: request.headers.fields.map { Field(name: $0.name, value: $0.value) },
    body: request.body)
}

/// The reads of the split run.

/// Names a mismatch by where the runs part, in words that do not depend on the input's details
/// (numbers in error messages become N), so that one bug gives only a few kinds.
private func kind(_ whole: Outcome, _ split: Outcome) -> String {
  let index = zip(whole.requests, split.requests).prefix(while: { $0 == $1 }).count
  if index < whole.requests.count && index < split.requests.count {
    return "split-vs-whole: the requests differ"
  }
  func state(_ outcome: Outcome) -> String {
    if index < outcome.requests.count { return "got a request" }
    if outcome.failure != nil { return "failed otherwise" }
    return "waits for more"
  }
  func error(_ error: HTTPParseError) -> String {
    let message = error.message.split(whereSeparator: \.isNumber).joined(separator: "N")
    return "\(error.status.code) (\(message))"
  }
  if let failure = split.failure, index == split.requests.count {
    return
      "split-vs-whole: the split run failed \(error(failure)) where the whole run \(state(whole))"
  }
  if let failure = whole.failure, index == whole.requests.count {
    return
      "split-vs-whole: the whole run failed \(error(failure)) where the split run \(state(split))"
  }
  return "split-vs-whole: the whole run \(state(whole)) where the split run \(state(split))"
}

private func describe(_ outcome: Outcome) -> String {
  var lines = outcome.requests.enumerated().map { index, r -> String in
    let headers = r.headers.map { "\($0.name): \($0.value)" }.joined(separator: " | ")
    let target =
      r.target.count > 60 ? "\(r.target.prefix(60))... (\(r.target.utf8.count) bytes)" : r.target
    return "  \(index): \(r.method) \(target) HTTP/1.\(r.minorVersion) [\(headers)] "
      + "body \(r.body.count) bytes"
  }
  if let failure = outcome.failure { lines.append("  failed: \(failure)") }
  lines.append("  unconsumed: \(outcome.unconsumed) bytes")
  return lines.joined(separator: "\n")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let (options, payload) = decode(UnsafeBufferPointer(start: data, count: size))
  let bytes = Array(payload)
  let whole = run(bytes.isEmpty ? [] : [bytes[...]], options)
  let reads = splitReads(
    bytes, byteByByte: options.byteByByte, readLengths: options.readLengths)
  let pieces = run(reads, options)
  let failedEarly =
    whole.failure == nil && pieces.failure != nil && whole.requests == pieces.requests
  if whole != pieces && !failedEarly {
    let what = kind(whole, pieces)
    if knownFailures.contains(Substring(what)) { return 0 }
    fatalError(
      """
      \(what)
      limits: line \(options.limits.maxRequestLineBytes), \
      head \(options.limits.maxHeadBytes), fields \(options.limits.maxHeaderCount), \
      body \(options.limits.maxBodyBytes); \(describe(reads))
      whole:
      \(describe(whole))
      split:
      \(describe(pieces))
      """)
  }
  return 0
}
