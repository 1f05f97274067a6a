import Checkpoint
import Foundation

/// The model registry folder of `braid serve --registry DIR` (SPEC 5): `DIR/<surface>/<version>/`
/// model directories (model.json + weights.safetensors, SPEC 3). The version folder of a
/// surface must serve that surface (its model.json lists it in `surfaces_included`): a
/// surface export, or a unified model. A unified model serving several surfaces appears
/// under each of their folders, as a copy or as a symlink to one directory
/// (`ln -s ../../models/20261203T0800 DIR/search/20261203T0800`); versions resolving to the
/// same directory (and files) are loaded once and shared.
///
/// Newest = last in `versionOrder` (digit runs compare as numbers, the rest byte-wise:
/// `2 < 10`, `v9 < v10`, `20261203T0800 < 20261203T0930`). Entries whose name starts with
/// `.` (the temporary names of `writeModelDirectory`, `.x.tmp-XXXXXX`) or ends in `.tmp`
/// are never read; nor are entries that are not directories.
public struct ModelRegistry: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root.standardizedFileURL }

    /// One version folder found in the registry.
    public struct Entry: Sendable, Equatable {
        public var surface: String
        public var name: String
        /// The directory after resolving symlinks (what is loaded).
        public var directory: URL
        /// Sizes, inodes and modification times of its two files; nil when one is missing.
        public var signature: FileSignature?
        public var key: String { "\(surface)/\(name)" }
    }

    /// Identity of a model directory's files: a change of any field means the files changed.
    public struct FileSignature: Sendable, Hashable {
        var fields: [Int64]
    }

    /// The surface folders of the registry (sorted). A missing root is an empty registry.
    public func surfaces() -> [String] {
        Self.children(of: root).filter { Self.isDirectory(root.appendingPathComponent($0)) }
    }

    /// The versions of `surface`, newest first.
    public func versions(of surface: String) -> [Entry] {
        let folder = root.appendingPathComponent(surface)
        return Self.children(of: folder)
            .filter { !$0.hasSuffix(".tmp") }
            .compactMap { name -> Entry? in
                let url = folder.appendingPathComponent(name)
                guard Self.isDirectory(url) else { return nil }
                let resolved = url.resolvingSymlinksInPath()
                return Entry(surface: surface, name: name, directory: resolved, signature: Self.signature(of: resolved))
            }
            .sorted { versionOrder($1.name, $0.name) }
    }

    /// Nil when `entry` holds a whole model directory: model.json present and a
    /// weights.safetensors whose header parses and whose data section holds every byte the
    /// header promises (a file still being copied in is refused here). Else why not.
    public static func incompleteness(of entry: Entry) -> String? {
        let config = entry.directory.appendingPathComponent(ModelDirectoryFile.config)
        let weights = entry.directory.appendingPathComponent(ModelDirectoryFile.weights)
        for file in [config, weights] where !FileManager.default.fileExists(atPath: file.path) {
            return "\(file.lastPathComponent) is missing"
        }
        do {
            _ = try SafeTensorsFile(contentsOf: weights)
        } catch {
            return "\(error)"
        }
        return nil
    }

    /// Names in `url` that are not hidden (no leading "."), sorted; [] when unreadable.
    static func children(of url: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    static func isDirectory(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    static func signature(of directory: URL) -> FileSignature? {
        var fields: [Int64] = []
        for name in [ModelDirectoryFile.config, ModelDirectoryFile.weights] {
            var info = stat()
            guard stat(directory.appendingPathComponent(name).path, &info) == 0 else { return nil }
            fields += [Int64(info.st_ino), Int64(info.st_size), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec)]
        }
        return FileSignature(fields: fields)
    }
}

/// The registry's version order: true when `a` sorts before `b`. Names are split into runs
/// of ASCII digits and of other characters; digit runs compare as numbers (leading zeros
/// ignored, then the shorter run first), other runs byte-wise; a name that is a prefix of
/// the other sorts first.
public func versionOrder(_ a: String, _ b: String) -> Bool {
    let x = versionRuns(a), y = versionRuns(b)
    for (p, q) in zip(x, y) where p != q {
        switch (p, q) {
        case (.number(let m), .number(let n)):
            let m1 = m.drop { $0 == 0x30 }, n1 = n.drop { $0 == 0x30 }
            if m1.count != n1.count { return m1.count < n1.count }
            if !m1.elementsEqual(n1) { return m1.lexicographicallyPrecedes(n1) }
            return m.count < n.count
        case (.text(let s), .text(let t)): return s.lexicographicallyPrecedes(t)
        case (.number, .text): return true
        case (.text, .number): return false
        }
    }
    return x.count < y.count
}

private enum VersionRun: Equatable {
    case number([UInt8]), text([UInt8])
}

private func versionRuns(_ s: String) -> [VersionRun] {
    var runs: [VersionRun] = [], current: [UInt8] = [], digits = false
    for byte in s.utf8 {
        let isDigit = byte >= 0x30 && byte <= 0x39
        if !current.isEmpty && isDigit != digits {
            runs.append(digits ? .number(current) : .text(current))
            current = []
        }
        digits = isDigit
        current.append(byte)
    }
    if !current.isEmpty { runs.append(digits ? .number(current) : .text(current)) }
    return runs
}
