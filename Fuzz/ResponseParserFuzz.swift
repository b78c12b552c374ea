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

private struct Field: Equatable {
  var name: String
  var value: String
}

/// What one run over the input gave: the responses, then the error that ended the connection or
/// the number of bytes received but not used by a response.
private struct Outcome: Equatable {
  var responses: [Response] = []
  var failure: HTTPParseError?
  var unconsumed = 0
}

private struct Options {
  var limits = HTTPLimits()
  var byteByByte = false
  var repeatNeedMore = false
  var headMask: UInt8 = 0
  var readLengths: [Int] = []

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
  options.byteByByte = first & 0b100 != 0
  options.repeatNeedMore = first & 0b1000 != 0
  options.headMask = input[1]
  let cuts = min(Int(first >> 4), input.count - 2)
  options.readLengths = input[2..<(2 + cuts)].map { Int($0) + 1 }
  return (options, UnsafeBufferPointer(rebasing: input[(2 + cuts)...]))
}

/// Calls the parser on an exact-size copy of `bytes`, so AddressSanitizer catches any read past
/// the end (the bounds checks of unsafe buffers are off in optimized builds).
private func parse(_ parser: inout HTTPResponseParser, _ bytes: ArraySlice<UInt8>, _ body: Bool)
  -> ParseResult<HTTPClientResponse>
{
  let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
  defer { copy.deallocate() }
  copy.copyBytes(from: bytes)
  return parser.parse(UnsafeRawBufferPointer(copy), expectBody: body)
}

/// Feeds `reads` to a parser as a client connection does and records what it saw.
private func run(_ reads: [ArraySlice<UInt8>], _ options: Options) -> Outcome {
  var parser = HTTPResponseParser(limits: options.limits)
  var outcome = Outcome()
  var input: [UInt8] = []
  var start = 0
  for read in reads {
    input.append(contentsOf: read)
    parsing: while start < input.count {
      let pending = input[start...]
      let expectBody = options.expectBody(outcome.responses.count)
      switch parse(&parser, pending, expectBody) {
      case .needMore:
        if options.repeatNeedMore {
          let again = parse(&parser, pending, expectBody)
          guard case .needMore = again else {
            fatalError("the same bytes answered .needMore, then \(again)")
          }
        }
        break parsing
      case .complete(let response, let consumed):
        guard consumed >= 1 && consumed <= pending.count else {
          fatalError("consumed \(consumed) of \(pending.count) bytes")
        }
        check(response, expectBody: expectBody, parser.limits)
        outcome.responses.append(snapshot(response))
        start += consumed
      case .failed(let error):
        // The error must not depend on how the bytes arrived: a fresh parser agrees.
        var fresh = HTTPResponseParser(limits: options.limits)
        guard case .failed(let again) = parse(&fresh, pending, expectBody), again == error else {
          fatalError("failed with \(error) here, but a fresh parser on the same bytes did not")
        }
        outcome.failure = error
        return outcome
      }
    }
    if start > 4096 {  // drop used bytes now and then, as a connection does
      input.removeFirst(start)
      start = 0
    }
  }
  outcome.unconsumed = input.count - start
  return outcome
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
    statusCode: response.statusCode, reason: response.reason,
    headers: response.headers.fields.map { Field(name: $0.name, value: $0.value) },
    body: response.body)
}

/// The reads of the split run.

/// Names a mismatch by where the runs part, in words that do not depend on the input's details
/// (numbers in error messages become N), so that one bug gives only a few kinds.
private func kind(_ whole: Outcome, _ split: Outcome) -> String {
  let index = zip(whole.responses, split.responses).prefix(while: { $0 == $1 }).count
  if index < whole.responses.count && index < split.responses.count {
    return "split-vs-whole: the responses differ"
  }
  func state(_ outcome: Outcome) -> String {
    if index < outcome.responses.count { return "got a response" }
    if outcome.failure != nil { return "failed otherwise" }
    return "waits for more"
  }
  func error(_ error: HTTPParseError) -> String {
    let message = error.message.split(whereSeparator: \.isNumber).joined(separator: "N")
    return "\(error.status.code) (\(message))"
  }
  if let failure = split.failure, index == split.responses.count {
    return
      "split-vs-whole: the split run failed \(error(failure)) where the whole run \(state(whole))"
  }
  if let failure = whole.failure, index == whole.responses.count {
    return
      "split-vs-whole: the whole run failed \(error(failure)) where the split run \(state(split))"
  }
  return "split-vs-whole: the whole run \(state(whole)) where the split run \(state(split))"
}

private func describe(_ outcome: Outcome) -> String {
  var lines = outcome.responses.enumerated().map { index, r -> String in
    let headers = r.headers.map { "\($0.name): \($0.value)" }.joined(separator: " | ")
    return "  \(index): \(r.statusCode) \(r.reason) [\(headers)] body \(r.body.count) bytes"
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
  if whole != pieces {
    let what = kind(whole, pieces)
    if knownFailures.contains(Substring(what)) { return 0 }
    fatalError(
      """
      \(what)
      limits: head \(options.limits.maxHeadBytes), fields \(options.limits.maxHeaderCount); \
      \(describe(reads))
      whole:
      \(describe(whole))
      split:
      \(describe(pieces))
      """)
  }
  return 0
}
