// libFuzzer target for `RESPParser` (run it with `bench/fuzz.sh resp-parser SECONDS`).
//
// What Redis sends a balancer sharing the queue is read by `RESPParser`, a byte at a time or many
// replies at once. Each input is fed to one parser twice, the way `RedisConnection` reads its
// socket: parse the buffered bytes, drop what a complete value used, parse again while bytes
// remain, wait for more on `.needMore`, stop at `.failed`. Once as a single read holding
// everything, once split into reads at points the input itself chooses. No run may crash; every
// complete value must use between 3 bytes and the bytes it was given, keep within the limits
// (nesting, array length, bulk length), and survive a round trip: `RESPEncoder` writes it, and a
// fresh parser reads it back whole, equal, using exactly those bytes; an error must be what a
// fresh parser says about the same bytes; and both runs must give the same values, the same final
// error and the same unconsumed rest. Anything else traps.
//
// A mismatch of the two runs traps with a first line that names its kind, in words that do not
// depend on the details of the input ("split-vs-whole: the split run failed (line longer than N
// bytes) where the whole run failed otherwise"). Kinds listed one per line in the environment
// variable FUZZ_KNOWN_FAILURES are let through instead, so that `FUZZ_KEEP_GOING=1
// bench/fuzz.sh` can look for new findings past ones that are not fixed yet. Broken invariants
// always trap.
//
// Input layout (libFuzzer mutates all of it; short inputs simply have fewer parts):
//   byte 0         options: bits 0-1 pick the limits (tiny, small, default, default);
//                  bit 2 feeds the split run one byte per read (the cut bytes are then unused);
//                  bit 3 repeats every parse that answered `.needMore` with the same bytes;
//                  bits 4-7 = number of cuts.
//   next N bytes   the lengths of the first N reads of the split run, each byte + 1 (1...256);
//                  the last read holds whatever remains.
//   the rest       the bytes that arrive from Redis.

import Glibc
import RedisClient

private struct Options {
  var limits = RESPParser.Limits()
  var split = SplitPlan()
}

/// Splits the raw input into options and the bytes of the connection.
private func decode(_ input: UnsafeBufferPointer<UInt8>) -> (Options, UnsafeBufferPointer<UInt8>) {
  var options = Options()
  guard let first = input.first else { return (options, input) }
  switch first & 0b11 {
  case 0:  // tiny: every limit is within reach of short inputs
    options.limits.maxBulkBytes = 8
    options.limits.maxDepth = 2
    options.limits.maxArrayCount = 3
    options.limits.maxLineBytes = 8
  case 1:  // small
    options.limits.maxBulkBytes = 64
    options.limits.maxDepth = 4
    options.limits.maxArrayCount = 16
    options.limits.maxLineBytes = 32
  default:  // the client's defaults
    break
  }
  options.split = SplitPlan(options: first, cutsAt: 1, in: input)
  return (options, UnsafeBufferPointer(rebasing: input[options.split.payloadStart...]))
}

/// What one run over the input gave: the values, then the error that ended the connection or the
/// number of bytes received but not used by a value (0 after an error: it may come before all
/// bytes are in).
private struct Replies: Equatable {
  var values: [RESPValue] = []
  var failure: RESPParseError?
  var unconsumed = 0
}

/// Feeds `reads` to a parser as `RedisConnection` does, checking every parse's contract.
private func replies(_ reads: [ArraySlice<UInt8>], _ options: Options) -> Replies {
  var parser = RESPParser(limits: options.limits)
  var outcome = Replies()
  var input: [UInt8] = []
  var start = 0
  for read in reads {
    input.append(contentsOf: read)
    parsing: while start < input.count {
      let pending = input[start...]
      switch onExactCopy(pending, { parser.parse($0) }) {
      case .needMore:
        if options.split.repeatNeedMore {
          let again = onExactCopy(pending) { parser.parse($0) }
          guard again == .needMore else {
            fatalError("the same bytes answered .needMore, then \(again)")
          }
        }
        break parsing
      case .complete(let value, let consumed):
        guard consumed >= 3 && consumed <= pending.count else {
          fatalError("consumed \(consumed) of \(pending.count) bytes")
        }
        check(value, options.limits)
        outcome.values.append(value)
        start += consumed
      case .failed(let error):
        // The error must not depend on how the bytes arrived: a fresh parser agrees.
        var fresh = RESPParser(limits: options.limits)
        let again = onExactCopy(pending) { fresh.parse($0) }
        guard again == .failed(error) else {
          fatalError(
            "failed with \(error) here, but a fresh parser on the same bytes said \(again)")
        }
        outcome.failure = error
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

/// Invariants of every complete value: within the limits, and written back by `RESPEncoder` to
/// bytes that a fresh parser reads as the same value.
private func check(_ value: RESPValue, _ limits: RESPParser.Limits) {
  let depth = nesting(value, limits)
  guard depth <= limits.maxDepth else {
    fatalError("arrays nested \(depth) deep, limit \(limits.maxDepth): \(value)")
  }
  let encoded = RESPEncoder.encode(value)
  // Unbounded lines: a simple string's invalid UTF-8 was read as U+FFFD, three bytes for one,
  // so its text may be written back longer than the limit it was read under.
  var unbounded = RESPParser.Limits()
  unbounded.maxLineBytes = .max
  var fresh = RESPParser(limits: unbounded)
  let again = encoded.withUnsafeBytes { fresh.parse($0) }
  guard again == .complete(value, consumed: encoded.count) else {
    fatalError("round trip: \(value) was written as \(encoded.count) bytes, read as \(again)")
  }
}

/// How deep arrays with elements nest in `value` (empty and null arrays add no depth, as
/// `RESPParser.Limits.maxDepth` counts); traps on an array or bulk string over its limit.
private func nesting(_ value: RESPValue, _ limits: RESPParser.Limits) -> Int {
  switch value {
  case .array(let elements?):
    guard elements.count <= limits.maxArrayCount else {
      fatalError("an array of \(elements.count), limit \(limits.maxArrayCount)")
    }
    if elements.isEmpty { return 0 }
    return 1 + (elements.map { nesting($0, limits) }.max() ?? 0)
  case .bulk(let bytes?):
    guard bytes.count <= limits.maxBulkBytes else {
      fatalError("a bulk string of \(bytes.count) bytes, limit \(limits.maxBulkBytes)")
    }
    return 0
  default:
    return 0
  }
}

/// Names the difference between the whole run and the split run by where they part, in words
/// that do not depend on the input's details (numbers in error messages become N).
private func mismatch(_ whole: Replies, _ split: Replies) -> String {
  let index = zip(whole.values, split.values).prefix(while: { $0 == $1 }).count
  if index < whole.values.count && index < split.values.count {
    return "split-vs-whole: the values differ"
  }
  func state(_ outcome: Replies) -> String {
    if index < outcome.values.count { return "got a value" }
    if outcome.failure != nil { return "failed otherwise" }
    return "waits for more"
  }
  func error(_ error: RESPParseError) -> String {
    "(\(error.description.split(whereSeparator: \.isNumber).joined(separator: "N")))"
  }
  if let failure = split.failure, index == split.values.count {
    return
      "split-vs-whole: the split run failed \(error(failure)) where the whole run \(state(whole))"
  }
  if let failure = whole.failure, index == whole.values.count {
    return
      "split-vs-whole: the whole run failed \(error(failure)) where the split run \(state(split))"
  }
  return "split-vs-whole: the whole run \(state(whole)) where the split run \(state(split))"
}

/// A run, as lines of a report.
private func lines(_ outcome: Replies) -> String {
  var lines = outcome.values.map { "  \(String(describing: $0).prefix(120))" }
  if let failure = outcome.failure { lines.append("  failed: \(failure)") }
  lines.append("  unconsumed: \(outcome.unconsumed) bytes")
  return lines.joined(separator: "\n")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let (options, payload) = decode(UnsafeBufferPointer(start: data, count: size))
  let bytes = Array(payload)
  let whole = replies(bytes.isEmpty ? [] : [bytes[...]], options)
  let reads = options.split.reads(of: bytes)
  let pieces = replies(reads, options)
  if whole != pieces {
    let what = mismatch(whole, pieces)
    if knownFailures.contains(Substring(what)) { return 0 }
    let limits = options.limits
    fatalError(
      """
      \(what)
      limits: bulk \(limits.maxBulkBytes), depth \(limits.maxDepth), \
      array \(limits.maxArrayCount), line \(limits.maxLineBytes); \(describe(reads))
      whole:
      \(lines(whole))
      split:
      \(lines(pieces))
      """)
  }
  return 0
}
