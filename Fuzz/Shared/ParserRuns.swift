import HTTPCore

// How the parser fuzz targets run a parser over reads and compare two runs: the connection's
// loop (parse what is buffered, drop what a message used, parse again, wait on `.needMore`, stop
// at `.failed`) with the invariants every parse must keep, the outcome of a run, and the words
// that name a difference between two runs. bench/fuzz.sh compiles this file with each target.

/// One header field of a parsed message, comparable.
struct Field: Equatable {
  var name: String
  var value: String
}

/// What one run over the input gave: the messages, then the error that ended the connection or
/// the number of bytes received but not used by a message (0 after an error: it may come before
/// all bytes are in).
struct Outcome<Message: Equatable>: Equatable {
  var messages: [Message] = []
  var failure: HTTPParseError?
  var unconsumed = 0
}

/// Calls `parse` on an exact-size copy of `bytes`, so AddressSanitizer catches any read past the
/// end (the bounds checks of unsafe buffers are off in optimized builds).
func onExactCopy<Result>(_ bytes: ArraySlice<UInt8>, _ parse: (UnsafeRawBufferPointer) -> Result)
  -> Result
{
  let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
  defer { copy.deallocate() }
  copy.copyBytes(from: bytes)
  return parse(UnsafeRawBufferPointer(copy))
}

/// Feeds `reads` to a parser from `makeParser` as a connection does, and records what it saw.
/// `parse` parses the bytes for the message of the given index; `accept` checks the invariants
/// of that message, parsed, and returns its comparable form; then `handled` gives the message
/// back to the parser, as a connection does once it is answered (its header buffer is reused).
/// Traps where the parser breaks its contract: `.needMore` then something else for the same
/// bytes (with `repeatNeedMore`), a message that used no bytes or more than it had, an error
/// that is not a 4xx or 5xx, or one a fresh parser does not give for the same bytes.
func run<Parser, Parsed, Message>(
  _ reads: [ArraySlice<UInt8>], repeatNeedMore: Bool, makeParser: () -> Parser,
  parse: (inout Parser, UnsafeRawBufferPointer, _ index: Int) -> ParseResult<Parsed>,
  accept: (Parsed, Parser, _ index: Int) -> Message,
  handled: (inout Parser, inout Parsed) -> Void
) -> Outcome<Message> {
  var parser = makeParser()
  var outcome = Outcome<Message>()
  var input: [UInt8] = []
  var start = 0
  for read in reads {
    input.append(contentsOf: read)
    parsing: while start < input.count {
      let pending = input[start...]
      let index = outcome.messages.count
      switch onExactCopy(pending, { parse(&parser, $0, index) }) {
      case .needMore:
        if repeatNeedMore {
          let again = onExactCopy(pending) { parse(&parser, $0, index) }
          guard case .needMore = again else {
            fatalError("the same bytes answered .needMore, then \(again)")
          }
        }
        break parsing
      case .complete(var message, let consumed):
        guard consumed >= 1 && consumed <= pending.count else {
          fatalError("consumed \(consumed) of \(pending.count) bytes")
        }
        outcome.messages.append(accept(message, parser, index))
        handled(&parser, &message)
        start += consumed
      case .failed(let error):
        guard (400...599).contains(error.status.code) else {
          fatalError("failure with status \(error.status.code): \(error)")
        }
        // The error must not depend on how the bytes arrived: a fresh parser agrees.
        var fresh = makeParser()
        guard case .failed(let again) = onExactCopy(pending, { parse(&fresh, $0, index) }),
          again == error
        else {
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

/// Names the difference between the whole run and the split run by where they part, in words
/// that do not depend on the input's details (numbers in error messages become N), so that one
/// bug gives only a few kinds. `noun`: what the messages are ("request", "response").
func mismatchKind<Message>(_ whole: Outcome<Message>, _ split: Outcome<Message>, noun: String)
  -> String
{
  let index = zip(whole.messages, split.messages).prefix(while: { $0 == $1 }).count
  if index < whole.messages.count && index < split.messages.count {
    return "split-vs-whole: the \(noun)s differ"
  }
  func state(_ outcome: Outcome<Message>) -> String {
    if index < outcome.messages.count { return "got a \(noun)" }
    if outcome.failure != nil { return "failed otherwise" }
    return "waits for more"
  }
  func error(_ error: HTTPParseError) -> String {
    let message = error.message.split(whereSeparator: \.isNumber).joined(separator: "N")
    return "\(error.status.code) (\(message))"
  }
  if let failure = split.failure, index == split.messages.count {
    return
      "split-vs-whole: the split run failed \(error(failure)) where the whole run \(state(whole))"
  }
  if let failure = whole.failure, index == whole.messages.count {
    return
      "split-vs-whole: the whole run failed \(error(failure)) where the split run \(state(split))"
  }
  return "split-vs-whole: the whole run \(state(whole)) where the split run \(state(split))"
}

/// A run's outcome for a report, a message a line as `line` writes it.
func describe<Message>(_ outcome: Outcome<Message>, _ line: (Message) -> String) -> String {
  var lines = outcome.messages.enumerated().map { "  \($0): \(line($1))" }
  if let failure = outcome.failure { lines.append("  failed: \(failure)") }
  lines.append("  unconsumed: \(outcome.unconsumed) bytes")
  return lines.joined(separator: "\n")
}

/// The fields of a parsed message, comparable.
func fields(_ headers: HTTPHeaders) -> [Field] {
  headers.fields.map { Field(name: $0.name, value: $0.value) }
}

/// Fields for a report: `name: value | …`.
func describe(_ fields: [Field]) -> String {
  fields.map { "\($0.name): \($0.value)" }.joined(separator: " | ")
}
