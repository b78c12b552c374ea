import Glibc

// What the parser fuzz targets share: how an input is cut into reads, how the reads are named in
// a report, and the mismatch kinds to let through. bench/fuzz.sh compiles this file with each
// target.

/// How a parser target's split run reads its input, as the input's first bytes say: in the
/// options byte, bit 2 feeds it one byte per read, bit 3 repeats every parse that answered
/// `.needMore` with the same bytes, and bits 4-7 are the number of cut bytes that follow (at an
/// offset of the target's layout), each a read's length less one.
struct SplitPlan {
  var byteByByte = false
  var repeatNeedMore = false
  /// The lengths of the first reads (1...256); the last read holds whatever remains.
  var readLengths: [Int] = []
  /// Where the connection's bytes start in the input: past the cut bytes.
  var payloadStart = 0

  init() {}

  /// The plan of `options` (the input's first byte), whose cut bytes start at `start`.
  init(options: UInt8, cutsAt start: Int, in input: UnsafeBufferPointer<UInt8>) {
    byteByByte = options & 0b100 != 0
    repeatNeedMore = options & 0b1000 != 0
    let cuts = min(Int(options >> 4), input.count - start)
    readLengths = input[start..<(start + cuts)].map { Int($0) + 1 }
    payloadStart = start + cuts
  }

  /// `bytes` cut into reads of `readLengths` (the rest in one last read), or one byte at a time.
  func reads(of bytes: [UInt8]) -> [ArraySlice<UInt8>] {
    if byteByByte { return bytes.indices.map { bytes[$0...$0] } }
    var reads: [ArraySlice<UInt8>] = []
    var start = 0
    for length in readLengths where start < bytes.count {
      let end = min(bytes.count, start + length)
      reads.append(bytes[start..<end])
      start = end
    }
    if start < bytes.count { reads.append(bytes[start...]) }
    return reads
  }
}

/// The reads of a split run, in a few words.
func describe(_ reads: [ArraySlice<UInt8>]) -> String {
  if reads.count > 8 && reads.allSatisfy({ $0.count == 1 }) {
    return "\(reads.count) reads of 1 byte"
  }
  return "reads of \(reads.map(\.count)) bytes"
}

/// Mismatch kinds to let through (`FUZZ_KNOWN_FAILURES`, one a line; see bench/fuzz.sh).
let knownFailures: Set<Substring> = {
  guard let value = getenv("FUZZ_KNOWN_FAILURES") else { return [] }
  return Set(String(cString: value).split(separator: "\n"))
}()
