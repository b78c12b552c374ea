// libFuzzer target for `HTTPResponseParser` (run it with `bench/fuzz.sh response-parser SECONDS`).
//
// Each input is fed to one parser twice, the way `HTTPClient` reads a keep-alive connection:
// parse the buffered bytes, drop what a complete response used, parse again while bytes remain,
// wait for more on `.needMore`, stop at `.failed`. Once as a single read holding everything, once
// split into reads at points the input itself chooses. No run may crash; every complete response
// must use between 1 byte and the bytes it was given, have a status from 100 to 599 and a body
// of its Content-Length (none where no body is expected); an error must be what a fresh parser
// says about the same bytes; and both runs must give the same responses (status, reason,
// headers, body), the same final error and the same unconsumed rest. Anything else traps.
//
// A mismatch traps with a first line that names its kind, in words that do not depend on the
// details of the input ("split-vs-whole: the split run failed 400 (...) where the whole run
// got a response"). Kinds listed one per line in the environment variable FUZZ_KNOWN_FAILURES
// are let through instead, so that `FUZZ_KEEP_GOING=1 bench/fuzz.sh` can look for new findings
// past ones that are not fixed yet. Broken invariants always trap.
//
// Input layout (libFuzzer mutates all of it; short inputs simply have fewer parts):
//   byte 0         options: bits 0-1 pick the limits (tiny, small, one field, default);
//                  bit 2 feeds the split run one byte per read (the cut bytes are then unused);
//                  bit 3 repeats every parse that answered `.needMore` with the same bytes;
//                  bits 4-7 = number of cuts.
//   byte 1         which responses answer a HEAD request: response i expects a body unless bit
//                  i % 8 is set (`parse(_:expectBody: false)`).
//   next N bytes   the lengths of the first N reads of the split run, each byte + 1 (1...256);
//                  the last read holds whatever remains.
//   the rest       the bytes that arrive on the connection.

import Glibc
import HTTPCore

/// The comparable parts of an `HTTPClientResponse`.
private struct Response: Equatable {
  var statusCode: Int
  var reason: String
  var headers: [Field]
  var body: [UInt8]
}

private struct Options {
  var limits = HTTPLimits()
  var split = SplitPlan()
  var headMask: UInt8 = 0

  func expectBody(_ index: Int) -> Bool { headMask & (1 << UInt8(index % 8)) == 0 }
}

/// Splits the raw input into options and the bytes of the connection.
private func decode(_ input: UnsafeBufferPointer<UInt8>) -> (Options, UnsafeBufferPointer<UInt8>) {
  var options = Options()
  guard input.count >= 2 else { return (options, UnsafeBufferPointer(rebasing: input[0..<0])) }
  let first = input[0]
  switch first & 0b11 {
  case 0:  // tiny: every limit is within reach of short inputs
    options.limits.maxHeadBytes = 48
    options.limits.maxHeaderCount = 3
  case 1:  // small
    options.limits.maxHeadBytes = 160
    options.limits.maxHeaderCount = 8
  case 2:  // one header field at most
    options.limits.maxHeadBytes = 96
    options.limits.maxHeaderCount = 1
  default:  // the client's defaults
    break
  }
  options.headMask = input[1]
  options.split = SplitPlan(options: first, cutsAt: 2, in: input)
  return (options, UnsafeBufferPointer(rebasing: input[options.split.payloadStart...]))
}

/// Invariants of every parsed response.
private func check(_ response: HTTPClientResponse, expectBody: Bool, _ limits: HTTPLimits) {
  let code = response.statusCode
  guard (100...599).contains(code) else { fatalError("status \(code)") }
  guard !response.reason.utf8.contains(0x0A) else {
    fatalError("line feed in the reason \(response.reason.debugDescription)")
  }
  guard response.headers.count <= limits.maxHeaderCount else {
    fatalError("\(response.headers.count) header fields, limit \(limits.maxHeaderCount)")
  }
  let hasBody = expectBody && code >= 200 && code != 204 && code != 304
  let length = hasBody ? response.headers["Content-Length"].flatMap { Int($0) } ?? 0 : 0
  guard response.body.count == length else {
    fatalError("body of \(response.body.count) bytes for status \(code), expected \(length)")
  }
  _ = response.text
}

private func snapshot(_ response: HTTPClientResponse) -> Response {
  Response(
    statusCode: response.statusCode, reason: response.reason, headers: fields(response.headers),
    body: response.body)
}

/// Feeds `reads` to a response parser as a client connection does.
private func run(_ reads: [ArraySlice<UInt8>], _ options: Options) -> Outcome<Response> {
  run(
    reads, repeatNeedMore: options.split.repeatNeedMore,
    makeParser: { HTTPResponseParser(limits: options.limits) },
    parse: { parser, bytes, index in parser.parse(bytes, expectBody: options.expectBody(index)) },
    accept: { response, parser, index in
      check(response, expectBody: options.expectBody(index), parser.limits)
      return snapshot(response)
    },
    handled: { parser, response in parser.recycle(&response.headers) })
}

/// A response as a line of a report.
private func reportLine(_ r: Response) -> String {
  "\(r.statusCode) \(r.reason) [\(describe(r.headers))] body \(r.body.count) bytes"
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let (options, payload) = decode(UnsafeBufferPointer(start: data, count: size))
  let bytes = Array(payload)
  let whole = run(bytes.isEmpty ? [] : [bytes[...]], options)
  let reads = options.split.reads(of: bytes)
  let pieces = run(reads, options)
  if whole != pieces {
    let what = mismatchKind(whole, pieces, noun: "response")
    if knownFailures.contains(Substring(what)) { return 0 }
    fatalError(
      """
      \(what)
      limits: head \(options.limits.maxHeadBytes), fields \(options.limits.maxHeaderCount); \
      \(describe(reads))
      whole:
      \(describe(whole, reportLine))
      split:
      \(describe(pieces, reportLine))
      """)
  }
  return 0
}
