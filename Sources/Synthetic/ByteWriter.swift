import Foundation

/// A growable byte buffer with fast ASCII formatting of integers and fixed-point
/// decimals (no Foundation formatting), optionally draining to a file with fwrite.
struct ByteBuffer {
    var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    var count: Int { bytes.count }

    @inline(__always) mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    @inline(__always) mutating func append(_ byte: UInt8) { bytes.append(byte) }

    @inline(__always) mutating func append(_ other: [UInt8]) { bytes.append(contentsOf: other) }

    @inline(__always) mutating func append(_ other: ByteBuffer) { bytes.append(contentsOf: other.bytes) }

    /// Appends the UTF-8 bytes of `text`.
    mutating func append(_ text: String) { bytes.append(contentsOf: Array(text.utf8)) }

    /// Appends the decimal digits of a non-negative or negative integer.
    @inline(__always) mutating func appendInteger(_ value: Int) {
        var magnitude = UInt64(value.magnitude)
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        if magnitude < 10 {
            bytes.append(UInt8(truncatingIfNeeded: 48 &+ magnitude))
            return
        }
        var digitCount = 1
        var rest = magnitude / 10
        while rest > 0 {
            digitCount += 1
            rest /= 10
        }
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digitCount))
        bytes.withUnsafeMutableBufferPointer { output in
            var index = start + digitCount - 1
            while magnitude > 0 {
                output[index] = UInt8(truncatingIfNeeded: 48 &+ magnitude % 10)
                magnitude /= 10
                index -= 1
            }
        }
    }

    /// Appends `value` rounded half away from zero to `decimals` decimal places, always
    /// with exactly `decimals` digits after the point (`-0.0312`, `0.950000`).
    @inline(__always) mutating func appendFixed(_ value: Double, decimals: Int) {
        let scale = ByteBuffer.powersOfTen[decimals]
        let scaled = Int64((value.magnitude * Double(scale)).rounded())
        if value < 0 && scaled != 0 { bytes.append(UInt8(ascii: "-")) }
        appendInteger(Int(scaled / scale))
        bytes.append(UInt8(ascii: "."))
        var fraction = scaled % scale
        var divisor = scale / 10
        while divisor > 0 {
            bytes.append(UInt8(truncatingIfNeeded: 48 &+ fraction / divisor))
            fraction %= divisor
            divisor /= 10
        }
    }

    static let powersOfTen: [Int64] = [1, 10, 100, 1000, 10000, 100_000, 1_000_000, 10_000_000, 100_000_000]
}

/// A CSV file written through one large buffer: rows are appended to `buffer` and
/// drained with fwrite once it holds more than `flushThreshold` bytes.
final class BufferedFileWriter {
    let path: String
    private let file: UnsafeMutablePointer<FILE>
    var buffer: ByteBuffer
    private let flushThreshold: Int
    private(set) var bytesWritten = 0

    init(path: String, flushThreshold: Int = 4 << 20) throws {
        guard let file = fopen(path, "wb") else {
            throw SyntheticError(
                "cannot open \(path) for writing (errno \(errno): \(String(cString: strerror(errno)))); "
                    + "expected a writable directory, check --out and its permissions")
        }
        self.path = path
        self.file = file
        self.flushThreshold = flushThreshold
        self.buffer = ByteBuffer(capacity: flushThreshold + (1 << 16))
    }

    /// Writes the buffer out if it is over the threshold.
    @inline(__always) func flushIfFull() throws {
        if buffer.count >= flushThreshold { try flush() }
    }

    func flush() throws {
        let count = buffer.count
        guard count > 0 else { return }
        let written = buffer.bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, count, file) }
        guard written == count else {
            throw SyntheticError(
                "wrote \(written) of \(count) bytes to \(path) (errno \(errno): \(String(cString: strerror(errno)))); "
                    + "expected a complete write, check free disk space")
        }
        bytesWritten += count
        buffer.removeAll()
    }

    /// Flushes and closes the file.
    func close() throws {
        try flush()
        guard fclose(file) == 0 else {
            throw SyntheticError("closing \(path) failed (errno \(errno)); expected a complete write, check free disk space")
        }
    }
}

/// An error of `braid generate`: what was expected, what was found, how to fix it.
public struct SyntheticError: Error, CustomStringConvertible {
    /// The full message.
    public let description: String

    init(_ description: String) { self.description = description }
}
