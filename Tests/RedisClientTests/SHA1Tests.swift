import RedisClient
import XCTest

final class SHA1Tests: XCTestCase {
  func testKnownVectors() {
    // FIPS 180 examples and other well-known digests.
    XCTAssertEqual(hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    XCTAssertEqual(hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d")
    XCTAssertEqual(
      hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    XCTAssertEqual(
      hex("The quick brown fox jumps over the lazy dog"),
      "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12")
    XCTAssertEqual(
      SHA1.hexDigest(Array(repeating: UInt8(ascii: "a"), count: 1_000_000)),
      "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
  }

  func testPaddingBoundaries() {
    // Lengths around the 56- and 64-byte block boundaries (from sha1sum).
    let expected: [Int: String] = [
      55: "c1c8bbdc22796e28c0e15163d20899b65621d65a",
      56: "c2db330f6083854c99d4b5bfb6e8f29f201be699",
      63: "03f09f5b158a7a8cdad920bddc29b81c18a551f5",
      64: "0098ba824b5c16427bd7a1122a5a442a25ec644d",
      65: "11655326c708d70319be2610e8a57d9a5b959d3b",
      119: "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56",
      120: "f34c1488385346a55709ba056ddd08280dd4c6d6",
      128: "ad5b3fdbcb526778c2839d2f151ea753995e26a0",
    ]
    for (length, digest) in expected {
      XCTAssertEqual(
        SHA1.hexDigest(Array(repeating: UInt8(ascii: "a"), count: length)), digest, "\(length)")
    }
  }

  func testBinaryAndUnicodeInput() {
    XCTAssertEqual(
      SHA1.hexDigest((0...255).map { UInt8($0) }), "4916d6bdb7f78e6803698cab32d1586ea457dfc8")
    XCTAssertEqual(hex("héllo wörld ✓"), "a5e7f35caea50aa6f3bc37d2f24a540fc0b3cb32")
    XCTAssertEqual(SHA1.digest(Array("abc".utf8)).count, 20)
    XCTAssertEqual(SHA1.digest(Array("abc".utf8)).prefix(2), [0xA9, 0x99])
  }

  func testScriptNamesMatchRedis() {
    // What `redis-cli SCRIPT LOAD 'return redis.call("INCR", KEYS[1])'` answers.
    let script = RedisScript("return redis.call(\"INCR\", KEYS[1])")
    XCTAssertEqual(script.sha1, "f793247de6e1e3c553cd42d39c812df499e679e4")
  }

  private func hex(_ text: String) -> String { SHA1.hexDigest(Array(text.utf8)) }
}
