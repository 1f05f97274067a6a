import Dispatch
import Foundation
import Schema
#if canImport(Glibc)
import Glibc
#endif

/// A private (copy-on-write) read-write mapping of a whole file; the CSV reader unescapes
/// quoted fields in place without touching the file.
private final class PrivateMapping {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(fd: Int32, count: Int, path: String) throws {
        guard let map = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw InputError(file: path, line: 1, message: "cannot map the file (\(String(cString: strerror(errno)))); expected a readable CSV file")
        }
        base = map
        self.count = count
    }

    deinit { munmap(base, count) }
}

/// One parsed segment of the CSV: its rows laid out as a cache block (lines relative to the
/// segment start), the bad rows it skipped and their first errors, where the next record
/// starts and how many lines it spans.
private struct SegmentResult {
    var block: CacheBlock
    var skippedRows: Int
    var errors: [InputError]
    var end: Int
    var linesSpanned: Int
}

extension DataCache {

    /// Parses and encodes `csv` (SPEC 1.2-1.4, with `options.labels` and `options.skipBadRows`)
    /// into a cache file at `url`, written to a temporary file beside it and renamed.
    ///
    /// The file is memory-mapped and cut into segments of about `segmentBytes` at line starts; `threads`
    /// segments are encoded (and laid out as cache blocks) at a time, each assuming it starts at a
    /// record boundary, while the blocks of the previous round are written. A segment
    /// is kept only when the previous one ended exactly where it starts (no quoted newline
    /// spans the cut); otherwise, or when a segment of the round fails, the round is parsed
    /// again sequentially on a fresh mapping, so errors name the first bad row exactly as a
    /// sequential read does.
    @discardableResult
    public static func build(csv: URL, config: ModelConfig, options: EncodeOptions = EncodeOptions(),
                             to url: URL, threads: Int = 2, segmentBytes: Int = 8 << 20) throws -> (rows: Int, skipped: Int) {
        precondition(threads >= 1 && segmentBytes >= 1, "threads and segmentBytes must be >= 1, got \(threads), \(segmentBytes)")
        let path = csv.path
        let fd = Glibc.open(path, O_RDONLY)
        guard fd >= 0 else {
            throw InputError(file: path, line: 1, message: "cannot read the file (\(String(cString: strerror(errno)))); expected a readable CSV file")
        }
        defer { close(fd) }
        let stamp = try fileStamp(csv)
        let size = stamp.size
        guard size > 0 else { throw InputError(file: path, line: 1, message: "empty file; expected a header row") }
        var mapping = try PrivateMapping(fd: fd, count: size, path: path)

        // UTF-8 first (the reference decodes the whole file before reading rows), in parallel.
        let bytes = UnsafePointer(mapping.base.assumingMemoryBound(to: UInt8.self))
        var cuts = [0]
        for k in 1..<threads {
            var c = size * k / threads
            while c < size && bytes[c] & 0xC0 == 0x80 { c += 1 }
            cuts.append(max(c, cuts.last!))
        }
        cuts.append(size)
        var invalid = [Int](repeating: -1, count: threads)
        invalid.withUnsafeMutableBufferPointer { invalid in
            DispatchQueue.concurrentPerform(iterations: threads) { k in
                invalid[k] = CSVFile.firstInvalidUTF8(bytes, from: cuts[k], to: cuts[k + 1]) ?? -1
            }
        }
        if let bad = invalid.first(where: { $0 >= 0 }) { throw CSVFile.utf8Error(bytes, at: bad, path: path) }

        var header = try CSVFile(mapped: mapping.base, count: size, path: path)
        let dataStart = header.position
        // Column checks (absolute header line) on an empty segment.
        var unused: [Double] = []
        _ = try EncodedRows(encoding: CSVFile(segmentOf: header, start: dataStart, stop: dataStart), config: config,
                            options: options, rawDense: &unused)

        // Segment boundaries: just after an LF at or beyond every segmentBytes.
        var bounds = [dataStart]
        var target = dataStart + segmentBytes
        while target < size {
            var c = target
            while c < size && bytes[c - 1] != 0x0A { c += 1 }
            if c >= size { break }
            bounds.append(c)
            target = c + segmentBytes
        }
        bounds.append(size)

        let writer = try CacheWriter(url: url, config: config, options: options, stamp: stamp, maxPending: 2 * threads)
        var nextStart = dataStart
        var base = header.line
        var skipped = 0
        var keptErrors: [InputError] = []
        func shifted(_ error: InputError, by lineBase: Int) -> InputError {
            var error = error
            error.line += lineBase - 1
            return error
        }
        var k = 0
        while k < bounds.count - 1 {
            let round = min(threads, bounds.count - 1 - k)
            let starts = (0..<round).map { j in j == 0 ? nextStart : bounds[k + j] }
            let stops = (0..<round).map { j in bounds[k + j + 1] }
            let reader = header
            var results = [Result<SegmentResult, Error>?](repeating: nil, count: round)
            results.withUnsafeMutableBufferPointer { results in
                DispatchQueue.concurrentPerform(iterations: round) { j in
                    results[j] = Result { try encodeSegment(reader, from: starts[j], to: max(starts[j], stops[j]), config: config, options: options) }
                }
            }
            var kept: [SegmentResult] = []
            var exact = true
            for j in 0..<round {
                guard case .success(let result) = results[j]! else { exact = round == 1; break }
                if j + 1 < round && result.end != starts[j + 1] { exact = false; break }
                kept.append(result)
            }
            if round == 1, case .failure(let error) = results[0]! {
                throw (error as? InputError).map { shifted($0, by: base) } ?? error
            }
            if !exact {
                // Speculation failed (a quoted newline spans a cut) or a segment failed: parse the
                // round again, in order, on a fresh copy of the bytes.
                mapping = try PrivateMapping(fd: fd, count: size, path: path)
                header = try CSVFile(mapped: mapping.base, count: size, path: path)
                do {
                    kept = [try encodeSegment(header, from: nextStart, to: max(nextStart, stops[round - 1]), config: config, options: options)]
                } catch let error as InputError {
                    throw shifted(error, by: base)
                }
            }
            for result in kept {
                skipped += result.skippedRows
                for error in result.errors where keptErrors.count < EncodedRows.keptErrors {
                    keptErrors.append(shifted(error, by: base))
                }
                try writer.append(result.block, lineBase: base)
                base += result.linesSpanned
                nextStart = result.end
            }
            k += round
        }
        let rows = try writer.finish(skippedRows: skipped, errors: keptErrors)
        withExtendedLifetime(mapping) {}  // the readers above hold raw pointers into it
        return (rows, skipped)
    }

    private static func encodeSegment(_ header: CSVFile, from start: Int, to stop: Int, config: ModelConfig,
                                      options: EncodeOptions) throws -> SegmentResult {
        let csv = CSVFile(segmentOf: header, start: start, stop: stop)
        var rawDense: [Double] = []
        let rows = try EncodedRows(encoding: csv, config: config, options: options, rawDense: &rawDense)
        return SegmentResult(block: CacheBlock(rows, rawDense: rawDense), skippedRows: rows.skippedRows, errors: rows.errors,
                             end: csv.position, linesSpanned: csv.line - 1)
    }
}

/// The rows of one parsed segment laid out as one cache block (see `DataCache`): its sections
/// back to back, each padded to 8 bytes, with the lines still relative to the segment start
/// (`CacheWriter` adds the segment's first line before writing).
private struct CacheBlock {
    /// Rows in the block.
    let count: Int
    /// The sections' bytes.
    var bytes: [UInt8]
    /// Each section's offset in `bytes` and length (unpadded), in file order.
    let sections: [(offset: Int, length: Int)]

    /// Lays out `encoded` and its untransformed dense values: lines i64, surface i32, labels i8,
    /// oracle f32, dense f64, sequence offsets, items and actions i32 (jagged: the leading
    /// non-padding positions of each row), then per categorical feature ids and offsets i32.
    init(_ encoded: EncodedRows, rawDense: [Double]) {
        let n = encoded.count
        count = n
        let length = encoded.schema.sequence?.maxLength ?? 0
        // Jagged sequence offsets first: they size the item and action sections.
        var sequenceOffsets = [Int32](repeating: 0, count: n + 1)
        if length > 0 {
            encoded.seqActions.withUnsafeBufferPointer { actions in
                var total = 0
                for i in 0..<n {
                    var p = 0
                    while p < length && actions[i * length + p] != 0 { p += 1 }
                    total += p
                    sequenceOffsets[i + 1] = Int32(total)
                }
            }
        }
        let sequenceTotal = Int(sequenceOffsets[n])
        var lengths = [8 * n, 4 * n, encoded.labels.count, 4 * encoded.oracle.count, 8 * rawDense.count,
                       4 * (n + 1), 4 * sequenceTotal, 4 * sequenceTotal]
        for feature in encoded.categorical {
            lengths += [4 * feature.ids.count, 4 * (feature.offsets?.count ?? 0)]
        }
        var sections: [(offset: Int, length: Int)] = []
        var total = 0
        for length in lengths {
            sections.append((total, length))
            total += (length + 7) & ~7
        }
        self.sections = sections
        bytes = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            for (offset, length) in sections {  // zero padding after each section
                (base + offset + length).initializeMemory(as: UInt8.self, repeating: 0, count: (8 - length % 8) % 8)
            }
            func copy<T>(_ values: [T], to section: Int) {
                values.withUnsafeBytes { base.advanced(by: sections[section].offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
            let lines = base + sections[0].offset
            for i in 0..<n { lines.storeBytes(of: Int64(encoded.lines[i]), toByteOffset: 8 * i, as: Int64.self) }
            copy(encoded.surface, to: 1)
            let labels = base + sections[2].offset
            for i in encoded.labels.indices { labels.storeBytes(of: Int8(encoded.labels[i]), toByteOffset: i, as: Int8.self) }
            copy(encoded.oracle, to: 3)
            copy(rawDense, to: 4)
            copy(sequenceOffsets, to: 5)
            if length > 0 {
                let items = base + sections[6].offset, actions = base + sections[7].offset
                encoded.seqItems.withUnsafeBufferPointer { sequenceItems in
                    encoded.seqActions.withUnsafeBufferPointer { sequenceActions in
                        for i in 0..<n {
                            let start = 4 * Int(sequenceOffsets[i]), bytes = 4 * Int(sequenceOffsets[i + 1]) - start
                            (items + start).copyMemory(from: sequenceItems.baseAddress! + i * length, byteCount: bytes)
                            (actions + start).copyMemory(from: sequenceActions.baseAddress! + i * length, byteCount: bytes)
                        }
                    }
                }
            }
            for (f, feature) in encoded.categorical.enumerated() {
                copy(feature.ids, to: 8 + 2 * f)
                if let offsets = feature.offsets { copy(offsets, to: 9 + 2 * f) }
            }
            initialized = total
        }
    }
}

/// Writes a cache file: header placeholder, blocks as they come (on a background queue, so the
/// next segments are parsed meanwhile), then errors, block table and the real header; renamed
/// into place by `finish`.
private final class CacheWriter {
    let url: URL
    let temporary: String
    let fd: Int32
    var offset = 0
    var table: [UInt64] = []
    var rows = 0, blocks = 0
    let key: UInt64
    let stamp: (size: Int, mtime: Int64)
    let schema: Schema
    var finished = false
    /// Writes the appended blocks in order.
    private let queue = DispatchQueue(label: "braid.cache-writer")
    /// Bounds the blocks appended but not yet written.
    private let pending: DispatchSemaphore
    /// The first write error of the background queue, guarded by `errorLock`.
    private var writeError: Error?
    private let errorLock = NSLock()

    /// Creates the temporary file; at most `maxPending` appended blocks wait to be written.
    init(url: URL, config: ModelConfig, options: EncodeOptions, stamp: (size: Int, mtime: Int64), maxPending: Int) throws {
        self.url = url
        temporary = url.path + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw CacheError(path: temporary, message: "cannot create the cache (\(String(cString: strerror(errno)))); "
                             + "expected a writable directory, or pass another cache path")
        }
        key = DataCache.key(config: config, options: options)
        self.stamp = stamp
        schema = config.schema
        pending = DispatchSemaphore(value: maxPending)
        try [UInt8](repeating: 0, count: DataCache.headerSize).withUnsafeBytes { try write($0) }
    }

    deinit {
        if !finished {
            close(fd)
            unlink(temporary)
        }
    }

    private func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw CacheError(path: temporary, message: "cannot write the cache (\(String(cString: strerror(errno)))); expected free disk space")
            }
            done += n
        }
        offset += bytes.count
    }

    /// Queues one block for writing; `lineBase` is the file line of the segment's relative line 1.
    /// Throws an earlier block's write error.
    func append(_ block: CacheBlock, lineBase: Int) throws {
        guard block.count > 0 else { return }
        pending.wait()
        queue.async { [self] in
            defer { pending.signal() }
            guard errorLock.withLock({ writeError == nil }) else { return }
            var block = block
            table += [UInt64(rows), UInt64(block.count)]
            let start = offset
            for section in block.sections { table += [UInt64(start + section.offset), UInt64(section.length)] }
            block.bytes.withUnsafeMutableBytes { bytes in
                for i in 0..<block.count {
                    let line = bytes.load(fromByteOffset: 8 * i, as: Int64.self)
                    bytes.storeBytes(of: line + Int64(lineBase - 1), toByteOffset: 8 * i, as: Int64.self)
                }
            }
            do {
                try block.bytes.withUnsafeBytes { try write($0) }
            } catch {
                errorLock.withLock { writeError = error }
            }
            rows += block.count
            blocks += 1
        }
        if let error = errorLock.withLock({ writeError }) { throw error }
    }

    /// Writes errors, block table and header, then renames the file into place; returns the row count.
    func finish(skippedRows: Int, errors: [InputError]) throws -> Int {
        queue.sync {}
        if let writeError { throw writeError }
        let errorsOffset = offset
        let errorBytes = DataCache.encodeErrors(errors)
        try errorBytes.withUnsafeBytes { try write($0) }
        let pad = (8 - offset % 8) % 8
        if pad > 0 { try [UInt8](repeating: 0, count: pad).withUnsafeBytes { try write($0) } }
        let tableOffset = offset
        try table.map { $0.littleEndian }.withUnsafeBytes { try write($0) }
        var header = [UInt64](repeating: 0, count: DataCache.headerSize / 8)
        header[0] = DataCache.magic.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        header[1] = DataCache.formatVersion
        header[2] = key
        header[3] = UInt64(stamp.size)
        header[4] = UInt64(bitPattern: stamp.mtime)
        header[5] = UInt64(rows)
        header[6] = UInt64(blocks)
        header[7] = UInt64(8 + 2 * schema.categorical.count)
        header[8] = UInt64(schema.allTasks.count)
        header[9] = UInt64(schema.dense.count)
        header[10] = UInt64(schema.sequence?.maxLength ?? 0)
        header[11] = UInt64(schema.categorical.count)
        header[12] = UInt64(skippedRows)
        header[13] = UInt64(errorsOffset)
        header[14] = UInt64(errorBytes.count)
        header[15] = UInt64(tableOffset)
        header[16] = UInt64(offset)
        let written = header.map { $0.littleEndian }.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) }
        guard written == DataCache.headerSize, fsync(fd) == 0 else {
            throw CacheError(path: temporary, message: "cannot write the cache header (\(String(cString: strerror(errno)))); expected free disk space")
        }
        close(fd)
        finished = true
        guard rename(temporary, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CacheError(path: url.path, message: "cannot move the finished cache into place (\(reason)); expected a writable directory")
        }
        return rows
    }
}
