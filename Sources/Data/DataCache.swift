import Foundation
import Schema
#if canImport(Glibc)
import Glibc
#endif

/// A problem with a `.braidcache` file: unreadable, not a cache, truncated, or built for other
/// data. `description` names the file, what is wrong, and how to fix it.
public struct CacheError: Error, CustomStringConvertible, Equatable, Sendable {
    public var path: String
    public var message: String
    /// true when the file is intact but was built from another CSV or schema (rebuild it).
    public var isStale: Bool

    public init(path: String, message: String, isStale: Bool = false) {
        self.path = path
        self.message = message
        self.isStale = isStale
    }

    public var description: String { "\(path): \(message)" }
}

/// A CSV file (SPEC 1.2) encoded once into a compact binary file and memory-mapped, so files
/// larger than memory can train: the kernel pages rows in as batches need them.
///
/// Holds the same columns as `EncodedRows` for N = `count` rows in file order, except that
/// dense values are stored untransformed (float64, NaN = missing) and transformed with
/// `denseStats` when a batch is gathered (identical to `EncodedRows`, and refitting the
/// statistics needs no rebuild). `surface` [N] and `lines` (per row, via `line(ofRow:)`) are
/// there for `shuffledBatches` and error messages.
///
/// File layout (little-endian, version 1): a 256-byte header (magic `BRDCACHE`, version, a
/// FNV-1a key of the schema, served surfaces and encode options, the CSV's size and mtime,
/// counts, the offsets of the skipped-row errors and of the block table, the file size), then
/// blocks of rows (one per parsed segment of the CSV), each a run of 8-byte-aligned
/// column-major sections: lines i64 [n], surface i32 [n], labels i8 [n, T] (-1 = missing),
/// oracle f32 [n, T], dense f64 [n, nDense], sequence offsets i32 [n + 1], sequence items and
/// actions i32 (jagged), then per categorical feature ids i32 and, when multi-valued,
/// offsets i32 [n + 1]. The block table lists each block's first row, row count and sections.
///
/// `DataCache.open(csv:config:)` reuses `<csv>.braidcache` when its key, the CSV's size and
/// mtime match, and otherwise rebuilds it (written to a temporary file, then renamed).
public final class DataCache: RowSource, @unchecked Sendable {
    /// The cache format this code reads and writes.
    public static let formatVersion: UInt64 = 1
    static let magic: [UInt8] = Array("BRDCACHE".utf8)
    static let headerSize = 256

    public let url: URL
    public let schema: Schema
    /// Rows stored (bad rows skipped at build time excluded).
    public let count: Int
    /// [N] index into `schema.surfaces` of each row (read from the mapped blocks on each use).
    public var surface: [Int32] { targets(rows: 0 ..< count).surface }
    /// The statistics `standardize` features are transformed with (the config's, or fitted on
    /// these rows with `EncodeOptions.fitDenseStats`).
    public let denseStats: [String: DenseStats]
    /// Rows left out when the cache was built with `skipBadRows`, and the first 10 errors.
    public let skippedRows: Int
    public let errors: [InputError]

    struct Block {
        var start: Int
        var count: Int
        var lines: UnsafePointer<Int64>
        var surface: UnsafePointer<Int32>
        var labels: UnsafePointer<Int8>
        var oracle: UnsafePointer<Float>
        var dense: UnsafePointer<Double>
        var sequenceOffsets: UnsafePointer<Int32>
        var sequenceItems: UnsafePointer<Int32>
        var sequenceActions: UnsafePointer<Int32>
        var ids: [UnsafePointer<Int32>]
        var offsets: [UnsafePointer<Int32>?]
    }

    private let mapping: UnsafeMutableRawPointer
    private let mappedBytes: Int
    let blocks: [Block]
    /// blocks[b].start for each b, for the row -> block search.
    private let blockStarts: [Int]
    /// SPEC 1.4's transforms with `denseStats`, applied as batches are gathered.
    private let denseTransform: DenseTransform

    /// Reuses or (re)builds the cache of `csv` and opens it. `cacheURL` defaults to
    /// `<csv>.braidcache`. A cache built from another file version (size or mtime), schema,
    /// set of served surfaces or label/skip option is rebuilt; a damaged one is an error.
    public static func open(csv: URL, config: ModelConfig, options: EncodeOptions = EncodeOptions(),
                            cacheURL: URL? = nil, threads: Int = 2) throws -> DataCache {
        let target = cacheURL ?? defaultURL(for: csv)
        if FileManager.default.fileExists(atPath: target.path) {
            do {
                return try DataCache(url: target, config: config, options: options, source: csv)
            } catch let error as CacheError where error.isStale {
                // fall through: rebuild
            }
        }
        try build(csv: csv, config: config, options: options, to: target, threads: threads)
        return try DataCache(url: target, config: config, options: options, source: csv)
    }

    /// `<csv path>.braidcache`.
    public static func defaultURL(for csv: URL) -> URL {
        URL(fileURLWithPath: csv.path + ".braidcache")
    }

    /// Opens the cache at `url`. With `source`, also checks that it was built from that CSV
    /// as it is now (size and mtime); the schema key is always checked against `config`.
    /// Steps: map the file, check the header, read the block table, fit or take the dense
    /// statistics; on any error the mapping is released.
    public init(url: URL, config: ModelConfig, options: EncodeOptions = EncodeOptions(), source: URL? = nil) throws {
        self.url = url
        schema = config.schema
        let path = url.path
        let (map, size) = try Self.mapFile(path)
        do {
            let base = UnsafeRawPointer(map)
            let header = try Self.readHeader(base, size: size, path: path, config: config, options: options, source: source)
            let blocks = try Self.readBlockTable(base, size: size, header: header, schema: config.schema, path: path)
            var stats = config.denseStats
            if options.fitDenseStats { Self.fitStandardizeStats(blocks, schema: config.schema, into: &stats) }
            denseTransform = try DenseTransform(schema: config.schema, stats: stats)
            denseStats = stats
            self.blocks = blocks
            blockStarts = blocks.map(\.start)
            count = header.rowCount
            skippedRows = header.skippedRows
            errors = Self.decodeErrors(UnsafeRawBufferPointer(start: base + header.errorsOffset, count: header.errorsBytes),
                                       file: source?.path ?? path)
        } catch {
            munmap(map, size)
            throw error
        }
        mapping = map
        mappedBytes = size
    }

    /// The header fields `init` reads (word indices of the 256-byte header in comments).
    private struct Header {
        var rowCount: Int, blockCount: Int, sectionCount: Int  // 5, 6, 7
        var taskCount: Int, denseCount: Int, maxLength: Int, categoricalCount: Int  // 8-11
        var skippedRows: Int, errorsOffset: Int, errorsBytes: Int, tableOffset: Int  // 12-15
    }

    /// Maps the whole file at `path` read-only.
    private static func mapFile(_ path: String) throws -> (UnsafeMutableRawPointer, Int) {
        let fd = Glibc.open(path, O_RDONLY)
        guard fd >= 0 else {
            throw CacheError(path: path, message: "cannot open the cache (\(String(cString: strerror(errno)))); expected a readable .braidcache file")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw CacheError(path: path, message: "cannot stat the cache (\(String(cString: strerror(errno))))")
        }
        let size = Int(info.st_size)
        guard size >= Self.headerSize else {
            throw CacheError(path: path, message: "\(size) bytes, shorter than the \(Self.headerSize)-byte header; expected a "
                             + ".braidcache file (delete it so it is rebuilt)")
        }
        guard let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            throw CacheError(path: path, message: "cannot map the cache (\(String(cString: strerror(errno))))")
        }
        return (map, size)
    }

    /// Checks magic, version, size, key, the source's stamp and the shapes against `config`.
    private static func readHeader(_ base: UnsafeRawPointer, size: Int, path: String, config: ModelConfig, options: EncodeOptions,
                                   source: URL?) throws -> Header {
        func word(_ index: Int) -> UInt64 { base.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self) }
        func fail(_ message: String, stale: Bool = false) -> CacheError { CacheError(path: path, message: message, isStale: stale) }
        guard Array(UnsafeRawBufferPointer(start: base, count: 8)) == Self.magic else {
            throw fail("no BRDCACHE magic; expected a .braidcache file written by braid (delete it so it is rebuilt)")
        }
        guard word(1) == Self.formatVersion else {
            throw fail("cache format version \(word(1)); expected \(Self.formatVersion) (it is rebuilt from the CSV)", stale: true)
        }
        guard word(16) == UInt64(size) else {
            throw fail("\(size) bytes but the header says \(word(16)); the file is truncated or damaged, expected the size "
                       + "written in its header (delete it so it is rebuilt)")
        }
        let key = Self.key(config: config, options: options)
        guard word(2) == key else {
            throw fail("built for another schema, set of served surfaces or label/skip option (key \(word(2)), expected \(key)); "
                       + "it is rebuilt from the CSV", stale: true)
        }
        if let source {
            guard let stamp = try? Self.fileStamp(source) else {
                throw fail("cannot stat its source \(source.path); expected the CSV the cache was built from")
            }
            guard word(3) == UInt64(stamp.size) && Int64(bitPattern: word(4)) == stamp.mtime else {
                throw fail("built from \(source.path) at size \(word(3)), mtime \(Int64(bitPattern: word(4))) ns; the file now has "
                           + "size \(stamp.size), mtime \(stamp.mtime) ns, so the cache is rebuilt", stale: true)
            }
        }
        let header = Header(rowCount: Int(word(5)), blockCount: Int(word(6)), sectionCount: Int(word(7)), taskCount: Int(word(8)),
                            denseCount: Int(word(9)), maxLength: Int(word(10)), categoricalCount: Int(word(11)),
                            skippedRows: Int(word(12)), errorsOffset: Int(word(13)), errorsBytes: Int(word(14)), tableOffset: Int(word(15)))
        let schema = config.schema
        guard header.taskCount == schema.allTasks.count, header.denseCount == schema.dense.count,
              header.maxLength == (schema.sequence?.maxLength ?? 0), header.categoricalCount == schema.categorical.count,
              header.sectionCount == 8 + 2 * header.categoricalCount else {
            throw fail("header shapes (tasks \(header.taskCount), dense \(header.denseCount), max_length \(header.maxLength), categorical "
                       + "\(header.categoricalCount)) do not match the schema; delete the cache so it is rebuilt")
        }
        let entryWords = 2 + 2 * header.sectionCount
        guard header.errorsOffset >= 0, header.errorsBytes >= 0, header.errorsOffset + header.errorsBytes <= size,
              header.tableOffset >= Self.headerSize, header.blockCount >= 0,
              header.tableOffset + header.blockCount * entryWords * 8 <= size else {
            throw fail("the error list or block table lies outside the \(size)-byte file; the file is damaged "
                       + "(delete it so it is rebuilt)")
        }
        return header
    }

    /// The blocks of the block table, the bounds and size of every section checked once here.
    private static func readBlockTable(_ base: UnsafeRawPointer, size: Int, header: Header, schema: Schema, path: String) throws -> [Block] {
        func word(_ index: Int) -> UInt64 { base.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self) }
        func fail(_ message: String) -> CacheError { CacheError(path: path, message: message) }
        let sectionCount = header.sectionCount, entryWords = 2 + 2 * sectionCount
        let taskCount = header.taskCount, denseCount = header.denseCount
        var blocks: [Block] = []
        var expectedStart = 0
        for b in 0..<header.blockCount {
            let entry = header.tableOffset / 8 + b * entryWords
            let start = Int(word(entry)), n = Int(word(entry + 1))
            var sections: [(offset: Int, bytes: Int)] = []
            for k in 0..<sectionCount {
                let offset = Int(word(entry + 2 + 2 * k)), bytes = Int(word(entry + 3 + 2 * k))
                guard offset >= Self.headerSize, bytes >= 0, offset % 8 == 0, offset + bytes <= size else {
                    throw fail("block \(b) section \(k) at \(offset) (+\(bytes) bytes) lies outside the \(size)-byte file; "
                               + "the file is damaged (delete it so it is rebuilt)")
                }
                sections.append((offset, bytes))
            }
            func expect(_ k: Int, _ bytes: Int) throws {
                if sections[k].bytes != bytes {
                    throw fail("block \(b) section \(k) holds \(sections[k].bytes) bytes, expected \(bytes) for \(n) rows; "
                               + "the file is damaged (delete it so it is rebuilt)")
                }
            }
            guard start == expectedStart, n > 0 else {
                throw fail("block \(b) starts at row \(start) with \(n) rows, expected row \(expectedStart) and at least one row; "
                           + "the file is damaged (delete it so it is rebuilt)")
            }
            try expect(0, 8 * n)
            try expect(1, 4 * n)
            try expect(2, n * taskCount)
            try expect(3, 4 * n * taskCount)
            try expect(4, 8 * n * denseCount)
            try expect(5, 4 * (n + 1))
            func pointer<T>(_ k: Int, _ type: T.Type) -> UnsafePointer<T> {
                (base + sections[k].offset).assumingMemoryBound(to: T.self)
            }
            let sequenceOffsets = pointer(5, Int32.self)
            let sequenceTotal = Int(sequenceOffsets[n])
            try expect(6, 4 * sequenceTotal)
            try expect(7, 4 * sequenceTotal)
            var ids: [UnsafePointer<Int32>] = [], offsets: [UnsafePointer<Int32>?] = []
            for f in 0..<header.categoricalCount {
                if schema.categorical[f].multi != nil {
                    try expect(9 + 2 * f, 4 * (n + 1))
                    let featureOffsets = pointer(9 + 2 * f, Int32.self)
                    try expect(8 + 2 * f, 4 * Int(featureOffsets[n]))
                    offsets.append(featureOffsets)
                } else {
                    try expect(8 + 2 * f, 4 * n)
                    try expect(9 + 2 * f, 0)
                    offsets.append(nil)
                }
                ids.append(pointer(8 + 2 * f, Int32.self))
            }
            blocks.append(Block(start: start, count: n, lines: pointer(0, Int64.self), surface: pointer(1, Int32.self),
                                labels: pointer(2, Int8.self), oracle: pointer(3, Float.self), dense: pointer(4, Double.self),
                                sequenceOffsets: sequenceOffsets, sequenceItems: pointer(6, Int32.self),
                                sequenceActions: pointer(7, Int32.self), ids: ids, offsets: offsets))
            expectedStart += n
        }
        guard expectedStart == header.rowCount else {
            throw fail("blocks hold \(expectedStart) rows but the header says \(header.rowCount); the file is damaged "
                       + "(delete it so it is rebuilt)")
        }
        return blocks
    }

    /// SPEC 1.4 statistics of every `standardize` feature fitted on the blocks' raw values
    /// (exact sums: the same as `EncodedRows` fitting the same rows), stored in `stats`.
    private static func fitStandardizeStats(_ blocks: [Block], schema: Schema, into stats: inout [String: DenseStats]) {
        let width = schema.dense.count
        for (j, feature) in schema.dense.enumerated() where feature.transform == .standardize {
            stats[feature.name] = fitDenseStats { visit in
                for block in blocks {
                    for i in 0..<block.count where !block.dense[i * width + j].isNaN { visit(block.dense[i * width + j]) }
                }
            }
        }
    }

    deinit { munmap(mapping, mappedBytes) }

    /// The cache file's size in bytes.
    public var byteCount: Int { mappedBytes }

    /// Drops the cache's pages from this process's resident memory (`madvise(MADV_DONTNEED)`;
    /// the kernel's page cache keeps them, and rows read later are paged in again): a pass over
    /// data larger than memory calls it as it moves on, so resident memory stays bounded.
    public func releaseResidentPages() {
        madvise(mapping, mappedBytes, MADV_DONTNEED)
    }

    /// The block holding row `n`.
    @inline(__always)
    private func blockIndex(ofRow n: Int) -> Int {
        var low = 0, high = blockStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if blockStarts[mid] <= n { low = mid } else { high = mid - 1 }
        }
        return low
    }

    /// The CSV line where row `n` starts.
    public func line(ofRow n: Int) -> Int {
        precondition(n >= 0 && n < count, "row \(n) is outside 0..<\(count)")
        let block = blocks[blockIndex(ofRow: n)]
        return Int(block.lines[n - block.start])
    }

    /// The rows `rows` (indices into the cache's rows) as a batch, in the order given (`gatherBatch`);
    /// equal to `EncodedRows.batch(rows:)` of the same file.
    public func batch(rows: [Int]) -> Batch { gatherBatch(self, rows: rows) }

    /// Surface, labels and oracle of the rows in `range`, read from the mapped blocks (`gatherTargets`).
    public func targets(rows range: Range<Int>) -> RowTargets { gatherTargets(self, rows: range) }

    // MARK: - Key, stamps, errors

    /// FNV-1a of a canonical text of everything the stored encoding depends on: the schema
    /// (surfaces, tasks, features, sequence), the served surfaces and the label/skip options.
    /// Dense statistics are not part of it: dense values are stored untransformed.
    static func key(config: ModelConfig, options: EncodeOptions) -> UInt64 {
        let schema = config.schema
        var text = "surfaces=\(schema.surfaces.joined(separator: ","))\n"
        for surface in schema.surfaces { text += "tasks.\(surface)=\((schema.tasks[surface] ?? []).joined(separator: ","))\n" }
        for feature in schema.categorical {
            text += "categorical \(feature.name) \(feature.buckets) \(feature.table) \(feature.multi?.rawValue ?? "-") "
                + "\(feature.surfaces?.joined(separator: ",") ?? "*")\n"
        }
        for feature in schema.dense {
            text += "dense \(feature.name) \(feature.transform.rawValue) \(feature.surfaces?.joined(separator: ",") ?? "*")\n"
        }
        if let sequence = schema.sequence {
            text += "sequence \(sequence.items) \(sequence.actions) \(sequence.maxLength) \(sequence.actionTypes) \(sequence.itemTable) "
                + "\(schema.tableBuckets[sequence.itemTable] ?? 0)\n"
        }
        text += "included=\(config.surfacesIncluded.joined(separator: ","))\nlabels=\(options.labels) skip=\(options.skipBadRows)\n"
        return fnv1a64(text)
    }

    /// Size and modification time (ns since the epoch) of `url`.
    static func fileStamp(_ url: URL) throws -> (size: Int, mtime: Int64) {
        var info = stat()
        guard stat(url.path, &info) == 0 else {
            throw InputError(file: url.path, line: 1, message: "cannot stat the file (\(String(cString: strerror(errno)))); expected a readable CSV file")
        }
        return (Int(info.st_size), Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }

    /// Errors as stored: per error, line u64, column length u32 (0xFFFFFFFF = none), column,
    /// message length u32, message.
    static func encodeErrors(_ errors: [InputError]) -> [UInt8] {
        var out: [UInt8] = []
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out += $0 } }
        for error in errors {
            append(UInt64(error.line))
            if let column = error.column {
                append(UInt32(column.utf8.count))
                out += column.utf8
            } else {
                append(UInt32.max)
            }
            append(UInt32(error.message.utf8.count))
            out += error.message.utf8
        }
        return out
    }

    static func decodeErrors(_ bytes: UnsafeRawBufferPointer, file: String) -> [InputError] {
        var errors: [InputError] = []
        var i = 0
        func read<T: FixedWidthInteger>(_ type: T.Type) -> T? {
            guard i + MemoryLayout<T>.size <= bytes.count else { return nil }
            defer { i += MemoryLayout<T>.size }
            return T(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: T.self))
        }
        func text(_ n: Int) -> String? {
            guard n >= 0, i + n <= bytes.count else { return nil }
            defer { i += n }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[i ..< i + n]), as: UTF8.self)
        }
        while i < bytes.count {
            guard let line = read(UInt64.self), let columnLength = read(UInt32.self) else { break }
            var column: String?
            if columnLength != UInt32.max {
                guard let name = text(Int(columnLength)) else { break }
                column = name
            }
            guard let messageLength = read(UInt32.self), let message = text(Int(messageLength)) else { break }
            errors.append(InputError(file: file, line: Int(line), column: column, message: message))
        }
        return errors
    }
}

/// The mapped blocks: row n is row n - start of the block holding it; dense values are
/// transformed (`denseTransform`) as they are copied.
extension DataCache: RowColumns {
    @inline(__always)
    func place(ofRow n: Int) -> (place: RowPlace, rowsInBlock: Int) {
        let b = blockIndex(ofRow: n)
        return (RowPlace(block: b, row: n - blocks[b].start), blocks[b].start + blocks[b].count - n)
    }

    @inline(__always)
    func surface(at place: RowPlace) -> Int32 { blocks[place.block].surface[place.row] }

    @inline(__always)
    func copyTargets(at place: RowPlace, tasks: Int, labels: UnsafeMutablePointer<Float>, oracle: UnsafeMutablePointer<Float>) {
        let from = place.row * tasks
        let storedLabels = blocks[place.block].labels, storedOracle = blocks[place.block].oracle
        for t in 0..<tasks {
            labels[t] = Float(storedLabels[from + t])
            oracle[t] = storedOracle[from + t]
        }
    }

    @inline(__always)
    func copyDense(at place: RowPlace, width: Int, into out: UnsafeMutablePointer<Float>) {
        let raw = blocks[place.block].dense + place.row * width
        for j in 0..<width { out[j] = denseTransform(raw[j], feature: j) }
    }

    @inline(__always)
    func copySequence(at place: RowPlace, length: Int, items: UnsafeMutablePointer<Int32>, actions: UnsafeMutablePointer<Int32>) {
        let block = blocks[place.block]
        let from = Int(block.sequenceOffsets[place.row]), to = Int(block.sequenceOffsets[place.row + 1])
        items.update(from: block.sequenceItems + from, count: to - from)
        actions.update(from: block.sequenceActions + from, count: to - from)
    }

    @inline(__always)
    func id(feature f: Int, at place: RowPlace) -> Int32 { blocks[place.block].ids[f][place.row] }

    @inline(__always)
    func bagCount(feature f: Int, at place: RowPlace) -> Int {
        let offsets = blocks[place.block].offsets[f]!
        return Int(offsets[place.row + 1] - offsets[place.row])
    }

    @inline(__always)
    func copyBag(feature f: Int, at place: RowPlace, into out: UnsafeMutablePointer<Int32>) {
        let block = blocks[place.block], offsets = block.offsets[f]!
        let from = Int(offsets[place.row]), to = Int(offsets[place.row + 1])
        out.update(from: block.ids[f] + from, count: to - from)
    }
}
