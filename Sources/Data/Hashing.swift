/// FNV-1a 64-bit (SPEC 1.3): offset basis 0xcbf29ce484222325, prime 0x100000001b3, over the bytes.
@inlinable
public func fnv1a64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes {
        hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }
    return hash
}

/// FNV-1a 64-bit of the UTF-8 bytes of `text`.
public func fnv1a64(_ text: String) -> UInt64 {
    var text = text
    return text.withUTF8 { fnv1a64(UnsafeRawBufferPointer($0)) }
}

/// SPEC 1.3: `1 + fnv1a64(v) mod (buckets - 1)` for a non-empty value, 0 (the missing row) for "".
/// `buckets` is any table size >= 2 (the hash vectors go up to 2^53).
@inlinable
public func bucket(hash: UInt64, buckets: UInt64) -> UInt64 {
    1 + hash % (buckets - 1)
}

/// SPEC 1.3 bucket of a value as written in the file; "" -> 0. `buckets` in [2, Int32.max].
public func bucket(_ text: String, buckets: Int) -> Int32 {
    precondition(buckets >= 2 && buckets <= Int(Int32.max), "a table has 2 ... Int32.max buckets, got \(buckets)")
    return text.isEmpty ? 0 : Int32(bucket(hash: fnv1a64(text), buckets: UInt64(buckets)))
}

/// SPEC 1.3 bucket of the bytes of one value; an empty range is missing (0).
@inlinable
func bucket(_ bytes: UnsafeRawBufferPointer, buckets: UInt64) -> Int32 {
    bytes.isEmpty ? 0 : Int32(truncatingIfNeeded: bucket(hash: fnv1a64(bytes), buckets: buckets))
}
