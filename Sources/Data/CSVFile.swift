import Foundation
import JSON
import Schema

/// A CSV file of rows (SPEC 1.2) read into one byte buffer and scanned record by record
/// without building a `String` per cell.
///
/// RFC 4180: comma-separated, `"`-quoted fields with `""` for a quote, LF, CRLF or a lone CR
/// ending a line; UTF-8 (validated up front; a leading BOM skipped); blank lines skipped;
/// a bare `"` inside an unquoted field is read literally; text after a closing quote is an
/// error. Line numbers are where a record starts, quoted newlines included. The first
/// non-blank record is the header: it must name each column once, `surface` among them.
/// Errors are `InputError`s worded as the reference's `read_csv` and `Rows`.
///
/// After `nextRecord()`, `field(i)` gives the bytes of field i of that record (quoted fields
/// unescaped in place).
public final class CSVFile {
    public let path: String
    public private(set) var header: [String] = []
    public private(set) var headerLine = 0
    /// Column index by header name.
    public private(set) var columnIndex: [String: Int] = [:]

    private let buffer: UnsafeMutableRawBufferPointer
    /// false when `buffer` belongs to someone else (a mapped file, or the reader a segment came from).
    private let ownsBuffer: Bool
    /// Scanning stops at the first record starting at or after this offset (a segment's end).
    let stopAt: Int
    /// Offset of the next byte to scan.
    private(set) var position: Int
    /// 1-based line number of `position` (relative to the segment start for a segment reader).
    private(set) var line = 1
    /// The fields of the current record.
    private var fields = FieldList()
    /// Number of fields of the current record.
    public var fieldCount: Int { fields.count }

    /// Reads `url`; `path` is how errors name the file (default: the URL's path).
    public convenience init(contentsOf url: URL, path: String? = nil) throws {
        let name = path ?? url.path
        let data: Foundation.Data
        do {
            data = try Foundation.Data(contentsOf: url)
        } catch {
            throw InputError(file: name, line: 1, message: "cannot read the file (\(error.localizedDescription)); expected a readable CSV file")
        }
        try self.init(bytes: data, path: name)
    }

    /// Scans `bytes` (a whole CSV file) and reads its header.
    public init(bytes: Foundation.Data, path: String) throws {
        self.path = path
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.copyBytes(to: buffer)
        ownsBuffer = true
        let count = bytes.count
        position = 0
        bufferCount = count
        stopAt = count
        if let bad = Self.firstInvalidUTF8(UnsafePointer(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)), from: 0, to: count) {
            throw Self.utf8Error(UnsafePointer(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)), at: bad, path: path)
        }
        try readHeader()
    }

    /// Reads the header of `count` bytes at `base` that the caller keeps alive and writable
    /// (a private file mapping) and has checked with `firstInvalidUTF8`.
    init(mapped base: UnsafeMutableRawPointer, count: Int, path: String) throws {
        self.path = path
        buffer = UnsafeMutableRawBufferPointer(start: base, count: count)
        ownsBuffer = false
        position = 0
        bufferCount = count
        stopAt = count
        try readHeader()
    }

    /// A reader of the records starting in `start ..< stop` (`start` at a line start) of the
    /// same bytes as `header`, with its header; line numbers count from 1 at `start`.
    /// The last record may run past `stop`; `position` then tells where the next one starts.
    init(segmentOf header: CSVFile, start: Int, stop: Int) {
        path = header.path
        buffer = header.buffer
        ownsBuffer = false
        position = start
        bufferCount = header.bufferCount
        stopAt = stop
        self.header = header.header
        headerLine = header.headerLine
        columnIndex = header.columnIndex
    }

    private func readHeader() throws {
        let count = bufferCount
        if count >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF { position = 3 }
        guard let start = try scanRecord() else {
            throw InputError(file: path, line: 1, message: "empty file; expected a header row")
        }
        headerLine = start
        header = (0..<fieldCount).map { String(decoding: field($0), as: UTF8.self) }
        for (i, name) in header.enumerated() where columnIndex[name] == nil { columnIndex[name] = i }
        if columnIndex.count != header.count {
            let repeated = Set(header.filter { name in header.filter { $0 == name }.count > 1 }).sorted()
            throw InputError(file: path, line: headerLine, message: "duplicate column names \(pythonRepr(repeated)); expected each name once")
        }
        if columnIndex["surface"] == nil {
            throw InputError(file: path, line: headerLine,
                             message: "no column 'surface'; expected a header naming the surface, feature and label columns")
        }
    }

    private let bufferCount: Int

    deinit {
        if ownsBuffer { buffer.deallocate() }
        fields.deallocate()
    }

    /// The fields of the current record; valid until the next `nextRecord()`.
    public var record: CSVRecord {
        CSVRecord(base: UnsafeRawPointer(buffer.baseAddress!), starts: fields.starts, lengths: fields.lengths, count: fields.count)
    }

    /// Bytes of field `i` of the current record.
    @inline(__always)
    public func field(_ i: Int) -> UnsafeRawBufferPointer {
        record.field(i)
    }

    /// Field `i` of the current record as a string.
    public func string(_ i: Int) -> String { String(decoding: field(i), as: UTF8.self) }

    /// Advances to the next data record and returns the line where it starts, nil at the end.
    /// Throws on a record whose field count differs from the header's or on bad quoting; after
    /// such an error the next call continues with the following record.
    public func nextRecord() throws -> Int? {
        guard let start = try scanRecord() else { return nil }
        if fieldCount != header.count {
            throw InputError(file: path, line: start, message: "\(fieldCount) fields; expected \(header.count) as in the header")
        }
        return start
    }

    /// Scans one record into `fields`, skipping blank lines; returns its line.
    private func scanRecord() throws -> Int? {
        // A local copy of the field list: no exclusivity check of the class property per field.
        var fields = self.fields
        fields.count = 0
        defer { self.fields = fields }
        if position >= stopAt { return nil }
        let bytes = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let end = bufferCount
        var i = position
        // blank lines
        while i < end && (bytes[i] == 0x0A || bytes[i] == 0x0D) {
            if bytes[i] == 0x0D && i + 1 < end && bytes[i + 1] == 0x0A { i += 1 }
            i += 1
            line += 1
        }
        if i >= end {
            position = i
            return nil
        }
        let startLine = line
        while true {
            if bytes[i] == 0x22 {  // quoted field, unescaped in place from the opening quote on
                var write = i
                let fieldStart = i
                i += 1
                while true {
                    if i >= end {
                        position = end
                        let linesRead = bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D ? line - 1 : line
                        throw InputError(file: path, line: linesRead, message: "unexpected end of data; expected RFC 4180 quoting")
                    }
                    let byte = bytes[i]
                    if byte == 0x22 {
                        if i + 1 < end && bytes[i + 1] == 0x22 {
                            bytes[write] = 0x22
                            write += 1
                            i += 2
                            continue
                        }
                        i += 1
                        break
                    }
                    if byte == 0x0A || (byte == 0x0D && !(i + 1 < end && bytes[i + 1] == 0x0A)) { line += 1 }
                    bytes[write] = byte
                    write += 1
                    i += 1
                }
                fields.append(start: fieldStart, length: write - fieldStart)
                if i < end && bytes[i] != 0x2C && bytes[i] != 0x0A && bytes[i] != 0x0D {
                    let errorLine = line
                    skipRestOfLine(from: i)
                    throw InputError(file: path, line: errorLine, message: "',' expected after '\"'; expected RFC 4180 quoting")
                }
            } else {
                let fieldStart = i
                i = Self.unquotedFieldEnd(bytes, from: i, to: end)
                fields.append(start: fieldStart, length: i - fieldStart)
            }
            if i >= end { break }
            if bytes[i] == 0x2C {
                i += 1
                if i >= end {  // a trailing comma: one more, empty field
                    fields.append(start: i, length: 0)
                    break
                }
                continue
            }
            // line end
            if bytes[i] == 0x0D && i + 1 < end && bytes[i + 1] == 0x0A { i += 1 }
            i += 1
            line += 1
            break
        }
        position = i
        return startLine
    }

    /// The offset of the first ',', LF or CR in `from ..< end` of `bytes`, or `end`: where an
    /// unquoted field starting at `from` ends. Tests eight bytes per step with the exact
    /// zero-byte test (x - 0x01..01) & ~x & 0x80..80 on the word XOR each delimiter, which
    /// flags a byte wrongly only above a true match, so its lowest flag is the first delimiter.
    @inline(__always)
    static func unquotedFieldEnd(_ bytes: UnsafePointer<UInt8>, from: Int, to end: Int) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var i = from
        while i + 8 <= end {
            let word = UInt64(littleEndian: UnsafeRawPointer(bytes + i).loadUnaligned(as: UInt64.self))
            let comma = word ^ (ones &* 0x2C), lf = word ^ (ones &* 0x0A), cr = word ^ (ones &* 0x0D)
            let found = ((comma &- ones) & ~comma | (lf &- ones) & ~lf | (cr &- ones) & ~cr) & highs
            if found != 0 { return i + found.trailingZeroBitCount / 8 }
            i += 8
        }
        while i < end && bytes[i] != 0x2C && bytes[i] != 0x0A && bytes[i] != 0x0D { i += 1 }
        return i
    }

    /// `unquotedFieldEnd` one byte at a time (its test twin).
    static func unquotedFieldEndByByte(_ bytes: UnsafePointer<UInt8>, from: Int, to end: Int) -> Int {
        var i = from
        while i < end && bytes[i] != 0x2C && bytes[i] != 0x0A && bytes[i] != 0x0D { i += 1 }
        return i
    }

    /// After a quoting error: drop the rest of the physical line so scanning can resume.
    private func skipRestOfLine(from index: Int) {
        let bytes = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var i = index
        while i < bufferCount && bytes[i] != 0x0A && bytes[i] != 0x0D { i += 1 }
        if i < bufferCount {
            if bytes[i] == 0x0D && i + 1 < bufferCount && bytes[i + 1] == 0x0A { i += 1 }
            i += 1
            line += 1
        }
        position = i
    }

    /// The offset of the first byte in `from ..< to` of `bytes` that does not start a valid
    /// UTF-8 sequence, or nil (a sequence may not run past `to`).
    static func firstInvalidUTF8(_ bytes: UnsafePointer<UInt8>, from: Int, to end: Int) -> Int? {
        var i = from
        while i < end {
            // ASCII fast path, 8 bytes at a time
            while i + 8 <= end && UnsafeRawPointer(bytes + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0 { i += 8 }
            if i >= end { break }
            let lead = bytes[i]
            if lead < 0x80 { i += 1; continue }
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: length = 0
            }
            var valid = length > 0 && i + length <= end
            if valid {
                valid = bytes[i + 1] >= low && bytes[i + 1] <= high
                for k in 2..<max(2, length) where valid { valid = bytes[i + k] >= 0x80 && bytes[i + k] <= 0xBF }
            }
            if !valid { return i }
            i += length
        }
        return nil
    }

    /// The error for an invalid UTF-8 byte at `offset` (the reference decodes the whole file
    /// first; its line counts LF only).
    static func utf8Error(_ bytes: UnsafePointer<UInt8>, at offset: Int, path: String) -> InputError {
        var lineNumber = 1
        for k in 0..<offset where bytes[k] == 0x0A { lineNumber += 1 }
        return InputError(file: path, line: lineNumber,
                          message: "invalid UTF-8 byte 0x\(String(bytes[offset], radix: 16, uppercase: false).leftPadded(to: 2)); expected UTF-8 text")
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// Start offset and length of each field of a record, in buffers that double when full.
private struct FieldList {
    var starts = UnsafeMutablePointer<Int>.allocate(capacity: 64)
    var lengths = UnsafeMutablePointer<Int>.allocate(capacity: 64)
    var capacity = 64
    var count = 0

    @inline(__always)
    mutating func append(start: Int, length: Int) {
        if count == capacity { grow() }
        starts[count] = start
        lengths[count] = length
        count += 1
    }

    private mutating func grow() {
        let newStarts = UnsafeMutablePointer<Int>.allocate(capacity: 2 * capacity)
        let newLengths = UnsafeMutablePointer<Int>.allocate(capacity: 2 * capacity)
        newStarts.moveInitialize(from: starts, count: count)
        newLengths.moveInitialize(from: lengths, count: count)
        starts.deallocate()
        lengths.deallocate()
        starts = newStarts
        lengths = newLengths
        capacity *= 2
    }

    func deallocate() {
        starts.deallocate()
        lengths.deallocate()
    }
}

/// The fields of one CSV record as byte ranges of the file buffer (quoted fields unescaped).
/// Valid until the reader scans the next record.
public struct CSVRecord {
    let base: UnsafeRawPointer
    let starts: UnsafePointer<Int>
    let lengths: UnsafePointer<Int>
    public let count: Int

    init(base: UnsafeRawPointer, starts: UnsafeMutablePointer<Int>, lengths: UnsafeMutablePointer<Int>, count: Int) {
        self.base = base
        self.starts = UnsafePointer(starts)
        self.lengths = UnsafePointer(lengths)
        self.count = count
    }

    /// Bytes of field `i`.
    @inline(__always)
    public func field(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + starts[i], count: lengths[i])
    }

    /// Field `i` as a string.
    public func string(_ i: Int) -> String { String(decoding: field(i), as: UTF8.self) }
}
