import Foundation
import Schema
import Synthetic
import TestSupport
import Testing
@testable import Data

/// The fast encoding kernels against their naive twins: `FastRemainder` against `%`,
/// `BucketHasher.bucketTokens` against `forEachToken` + `bucket(_:buckets:)`, `parseActions`
/// against `forEachToken` + `parseAction`, `exactShortDecimal` against strtod (bit for bit), and
/// `CSVFile.unquotedFieldEnd` against a byte loop.
@Suite struct EncodingKernelTests {
    @Test func fastRemainderEqualsTheDivisionRemainder() {
        var random = TestRandom(seed: 1)
        var divisors: [UInt64] = [1, 2, 3, 5, 7, 10, 255, 256, 257, 39_999, 79_999, 1_535, 65_535, 65_536,
                                  UInt64(Int32.max) - 1, UInt64(Int32.max), 1 << 32, (1 << 32) + 1, (1 << 53) - 1,
                                  1 << 63, (1 << 63) + 1, UInt64.max - 1, UInt64.max]
        for k in 1..<64 { divisors += [(1 << UInt64(k)) - 1, 1 << UInt64(k), (1 << UInt64(k)) + 1] }
        for _ in 0..<300 {
            divisors.append(random.next())
            divisors.append(random.next() >> UInt64(random.below(64)) | 1)
            divisors.append(UInt64(random.below(1 << 31)) + 1)
        }
        for d in divisors {
            let fast = FastRemainder(divisor: d)
            var values: [UInt64] = [0, 1, 2, d &- 1, d, d &+ 1, UInt64.max, UInt64.max - 1, UInt64.max / 2, 1 << 63]
            for m in [UInt64(2), 3, 1000, UInt64.max / d] { values += [d &* m, d &* m &- 1, d &* m &+ 1] }
            for _ in 0..<2000 { values.append(random.next()) }
            for _ in 0..<200 { values.append(random.next() >> UInt64(random.below(64))) }
            for x in values where fast.remainder(x) != x % d {
                Issue.record("\(x) % \(d): fast \(fast.remainder(x)), expected \(x % d)")
                return
            }
        }
    }

    @Test func bucketHasherEqualsTheSpecBucket() {
        var random = TestRandom(seed: 2)
        for buckets in [2, 3, 256, 1536, 40_000, 80_000, Int(Int32.max)] {
            let hasher = BucketHasher(buckets: UInt64(buckets))
            for _ in 0..<3000 {
                let length = random.below(12)
                let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                let expected = bytes.withUnsafeBytes { bucket($0, buckets: UInt64(buckets)) }
                #expect(bytes.withUnsafeBytes { hasher.bucket($0) } == expected)
                if !bytes.isEmpty {
                    #expect(bytes.withUnsafeBytes { hasher.bucket(hash: fnv1a64($0)) } == UInt64(expected))
                }
            }
        }
    }

    /// Random space-separated cells: runs of spaces (leading, trailing, doubled), tokens of 0-9
    /// bytes drawn from `alphabet`.
    static func randomCell(_ random: inout TestRandom, alphabet: [UInt8], tokens: Int) -> [UInt8] {
        var cell: [UInt8] = []
        for _ in 0..<tokens {
            cell += [UInt8](repeating: 0x20, count: random.below(10) == 0 ? random.below(3) : 1)
            for _ in 0..<random.below(10) { cell.append(alphabet[random.below(alphabet.count)]) }
        }
        if random.below(4) == 0 { cell += [0x20, 0x20] }
        return cell
    }

    @Test func bucketTokensEqualsOneBucketPerToken() {
        var random = TestRandom(seed: 3)
        let alphabet = Array("a0123456789xé".utf8) + [0x00, 0xFF, 0x2C]
        for limit in [0, 1, 4, 64] {
            let hasher = BucketHasher(buckets: 40_000)
            for _ in 0..<2000 {
                let cell = Self.randomCell(&random, alphabet: alphabet, tokens: random.below(90))
                var expected: [Int32] = []
                cell.withUnsafeBytes { forEachToken($0) { expected.append(bucket($0, buckets: 40_000)) } }
                var out = [Int32](repeating: -7, count: limit + 1)
                let count = cell.withUnsafeBytes { cellBytes in
                    out.withUnsafeMutableBufferPointer { hasher.bucketTokens(cellBytes, limit: limit, into: $0.baseAddress!) }
                }
                #expect(count == expected.count)
                let kept = min(limit, expected.count)
                #expect(Array(out[..<kept]) == Array(expected[..<kept]))
                #expect(out[kept...].allSatisfy { $0 == -7 }, "wrote past the kept tokens")
            }
        }
        var none = [Int32](repeating: 0, count: 4)
        #expect(none.withUnsafeMutableBufferPointer {
            BucketHasher(buckets: 10).bucketTokens(UnsafeRawBufferPointer(start: nil, count: 0), limit: 4, into: $0.baseAddress!)
        } == 0)
    }

    @Test func parseActionsEqualsParseActionPerToken() {
        var random = TestRandom(seed: 4)
        let alphabet = Array("0123456789x-+:/".utf8) + Array("11223344556677".utf8)
        for actionTypes in [2, 8, 12, 1000] {
            for limit in [0, 3, 64] {
                for _ in 0..<2000 {
                    var cell = Self.randomCell(&random, alphabet: alphabet, tokens: random.below(80))
                    if random.below(2) == 0 {  // mostly "d d d ..." as written by the generator
                        let digits = Array("0123456789:/".utf8)
                        cell = []
                        for _ in 0..<random.below(90) {
                            if random.below(30) == 0 { cell.append(0x20) }
                            cell.append(random.below(40) == 0 ? digits[random.below(digits.count)] : UInt8(0x31 + random.below(7)))
                            if random.below(30) == 0 { cell.append(alphabet[random.below(alphabet.count)]) }
                            cell.append(0x20)
                        }
                        if random.below(2) == 0 && !cell.isEmpty { cell.removeLast() }
                    }
                    var expected: [Int?] = []
                    var tokens: [[UInt8]] = []
                    cell.withUnsafeBytes { bytes in
                        forEachToken(bytes) { token in
                            expected.append(parseAction(token, actionTypes: actionTypes))
                            tokens.append(Array(token))
                        }
                    }
                    var out = [Int32](repeating: -7, count: limit + 1)
                    let result = cell.withUnsafeBytes { bytes in
                        let parsed = out.withUnsafeMutableBufferPointer {
                            parseActions(bytes, actionTypes: actionTypes, limit: limit, into: $0.baseAddress!)
                        }
                        return (count: parsed.count, firstBad: parsed.firstBad.map { Array($0) })  // copied while `bytes` lives
                    }
                    #expect(result.count == expected.count)
                    let firstBad = expected.firstIndex { $0 == nil }
                    #expect(result.firstBad == firstBad.map { tokens[$0] })
                    let kept = min(limit, expected.count)
                    #expect(Array(out[..<kept]) == expected[..<kept].map { Int32($0 ?? 0) })
                    #expect(out[kept...].allSatisfy { $0 == -7 }, "wrote past the kept tokens")
                }
            }
        }
    }

    /// Random strings of the SPEC 1.4 number syntax: short decimals like the generator's, long
    /// mantissas, leading and trailing zeros, exponents around the fast path's limits.
    static func randomNumber(_ random: inout TestRandom) -> String {
        func digits(_ n: Int) -> String { String((0..<n).map { _ in Character(String(random.below(10))) }) }
        var text = ["", "", "-", "+"][random.below(4)]
        switch random.below(6) {
        case 0: text += "0." + digits(1 + random.below(8))
        case 1: text += digits(1 + random.below(6))
        case 2: text += digits(1 + random.below(20)) + "." + digits(1 + random.below(20))
        case 3: text += "." + digits(1 + random.below(25))
        case 4: text += String(repeating: "0", count: random.below(5)) + digits(1 + random.below(17))
        default: text += digits(1 + random.below(3)) + "." + digits(random.below(3) + 1)
        }
        if random.below(3) == 0 {
            text += ["e", "E"][random.below(2)] + ["", "-", "+"][random.below(3)]
                + String(repeating: "0", count: random.below(2)) + String(random.below(random.below(2) == 0 ? 30 : 400))
        }
        return text
    }

    @Test func exactShortDecimalEqualsStrtodBitForBit() {
        var random = TestRandom(seed: 5)
        var cases = ["0", "-0", "+0", "0.0", "-0.0", ".0", "-.0", "0e0", "-0e-999", "1", "-1", ".5", "0.1", "0.2", "0.3",
                     "1e22", "1e23", "1e-22", "1e-23", "9007199254740992", "9007199254740993", "9007199254740991",
                     "-9007199254740993e-22", "18446744073709551615", "18446744073709551616", "1234567890123456789",
                     "12345678901234567890", "0.00000000000000000000001", "123456789012345678901234567890e-30",
                     "4.9406564584124654e-324", "1.7976931348623157e308", "1e308", "1e309", "1e-400", "2.5e+3",
                     "0.009509", "0.03838", "0.1000000000000000055511151231257827", "1e0000000000000000000001",
                     "3.14159", "100000000000000000000000", "0.000000000000000000000000000001e30"]
        for _ in 0..<200_000 { cases.append(Self.randomNumber(&random)) }
        var scratch: [CChar] = []
        var fastPaths = 0
        for text in cases {
            var copy = text
            copy.withUTF8 { utf8 in
                let bytes = UnsafeRawBufferPointer(utf8)
                #expect(matchesNumberSyntax(bytes), "\(text) should match the syntax")
                let expected = strtodDouble(bytes, scratch: &scratch)
                if let fast = exactShortDecimal(bytes) {
                    fastPaths += 1
                    #expect(fast.bitPattern == expected.bitPattern, "\(text): fast \(fast), strtod \(expected)")
                }
                #expect(parseDouble(bytes, scratch: &scratch).bitPattern == expected.bitPattern, "\(text)")
            }
        }
        #expect(fastPaths > cases.count / 2, "the fast path took only \(fastPaths) of \(cases.count)")
    }

    @Test func unquotedFieldEndEqualsAByteLoop() {
        var random = TestRandom(seed: 6)
        let alphabet: [UInt8] = [0x61, 0x20, 0x2C, 0x0A, 0x0D, 0x22, 0x00, 0xFF, 0x2B, 0x2D, 0x8A, 0xAC, 0x0B, 0x09, 0x2C ^ 0x80]
        for _ in 0..<5000 {
            let length = random.below(80)
            let density = 1 + random.below(60)
            let bytes = (0..<length).map { _ in random.below(density) == 0 ? alphabet[random.below(alphabet.count)] : UInt8(0x30 + random.below(40)) }
            bytes.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                for from in 0...length {
                    let end = from + random.below(length - from + 1)
                    #expect(CSVFile.unquotedFieldEnd(base, from: from, to: end) == CSVFile.unquotedFieldEndByByte(base, from: from, to: end))
                }
            }
        }
    }
}

/// The cache bytes of a generated file (`braid generate --rows 30000`, built with
/// `fitDenseStats` and 8 MiB segments: 24,000 rows in 2 blocks) are pinned, whatever the
/// thread count. The fast kernels were checked byte for byte against the code before them
/// (commit 6f2e315) on the first generator's data; the pin was retaken when the generator
/// changed its columns (ad_category, category sequences), with the same parser.
@Suite struct CacheBytesTests {
    @Test(arguments: [1, 2, 3])
    func cacheOfAGeneratedFileIsUnchanged(threads: Int) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("braid-cache-bytes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try SyntheticGenerator(configuration: SyntheticConfiguration(rows: 30_000)).write(to: directory.path)
        let config = try ModelConfig.load(from: directory.appendingPathComponent("model.json"))
        let cache = directory.appendingPathComponent("train.braidcache")
        let built = try DataCache.build(csv: directory.appendingPathComponent("train.csv"), config: config,
                                        options: EncodeOptions(fitDenseStats: true), to: cache, threads: threads)
        #expect(built.rows == 21_000)
        var bytes = [UInt8](try Foundation.Data(contentsOf: cache))
        #expect(bytes.count == 9_403_656)
        for k in 32..<40 { bytes[k] = 0 }  // the CSV's mtime
        #expect(bytes.withUnsafeBytes { fnv1a64($0) } == 7_883_054_555_452_239_864)
    }
}
