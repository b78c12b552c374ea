import Glibc

// What the parser fuzz targets share: how an input is cut into reads, how the reads are named in
// a report, and the mismatch kinds to let through. bench/fuzz.sh compiles this file with each
// target.

/// `bytes` cut into reads of `readLengths` (the rest in one last read), or one byte at a time.
func splitReads(_ bytes: [UInt8], byteByByte: Bool, readLengths: [Int]) -> [ArraySlice<UInt8>] {
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
