import Foundation
import Testing
@testable import Data

@Suite struct HashingTests {
    @Test func allFiftyReferenceVectors() throws {
        let url = fixturesDirectory.appendingPathComponent("hash_vectors.json")
        let vectors = try #require(try JSONSerialization.jsonObject(with: Foundation.Data(contentsOf: url)) as? [[String: Any]])
        #expect(vectors.count == 50)
        for vector in vectors {
            let value = try #require(vector["value"] as? String)
            let hex = try #require(vector["utf8_hex"] as? String)
            let buckets = try #require((vector["buckets"] as? NSNumber)?.uint64Value)
            let hashHex = try #require(vector["fnv1a64"] as? String)
            let expectedHash = try #require(UInt64(hashHex, radix: 16))
            let expectedBucket = try #require((vector["bucket"] as? NSNumber)?.uint64Value)
            let utf8Hex = value.utf8.map { String(format: "%02x", $0) }.joined()
            #expect(utf8Hex == hex, "UTF-8 bytes of \(value)")
            #expect(fnv1a64(value) == expectedHash, "fnv1a64(\(value))")
            let wide = value.isEmpty ? 0 : bucket(hash: fnv1a64(value), buckets: buckets)
            #expect(wide == expectedBucket, "bucket(\(value), \(buckets))")
            if buckets <= UInt64(Int32.max) {
                #expect(bucket(value, buckets: Int(buckets)) == Int32(expectedBucket))
            }
        }
    }

    @Test func emptyValueIsTheMissingRow() {
        #expect(bucket("", buckets: 10) == 0)
        #expect(fnv1a64("") == 0xCBF2_9CE4_8422_2325)
    }
}
