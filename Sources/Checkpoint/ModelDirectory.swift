// SPEC 3: write-once model directories. A model directory holds `model.json` (SPEC 2.8)
// and `weights.safetensors`. It is written under a temporary sibling name, every file and
// the directory fsynced, then renamed into place without ever replacing an existing path
// (Linux renameat2 with RENAME_NOREPLACE), and the parent fsynced: a crash never leaves a
// half-written model where a reader looks. As `save_model_dir` in braid_ref.py.
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file names inside a model directory (SPEC 3).
public enum ModelDirectoryFile {
    public static let config = "model.json"
    public static let weights = "weights.safetensors"
}

/// Writes a model directory at `url` holding `modelJSON` (the SPEC 2.8 config bytes) as
/// `model.json` and `weights` (safetensors bytes, see `encodeSafeTensors`) as
/// `weights.safetensors`. Missing parent directories are created. An existing `url` is
/// refused and never replaced; on any failure the temporary directory is removed.
public func writeModelDirectory(at url: URL, modelJSON: Data, weights: Data) throws {
    try writeModelDirectory(at: url, modelJSON: modelJSON, weights: weights, beforeRename: {})
}

/// `beforeRename` runs once the temporary directory is complete: tests use it to create a
/// competing writer's directory or to fail mid-write.
func writeModelDirectory(at url: URL, modelJSON: Data, weights: Data, beforeRename: () throws -> Void) throws {
    try writeNewDirectory(at: url, files: [(ModelDirectoryFile.weights, weights), (ModelDirectoryFile.config, modelJSON)],
                          what: "a model directory is written once and never overwritten (SPEC 3)", beforeRename: beforeRename)
}

/// Writes `files` (name, bytes) as the new directory `url` the way `writeModelDirectory`
/// does (temporary sibling, every file and the directory fsynced, renamed into place
/// without replacing); `what` ends the refusal message for an existing `url`.
public func writeNewDirectory(at url: URL, files: [(name: String, bytes: Data)], what: String,
                              beforeRename: () throws -> Void = {}) throws {
    let path = url.standardizedFileURL.path
    let refusal = CheckpointError("\(path) already exists; \(what): write to a new path")
    if pathExists(path) { throw refusal }
    let parent = (path as NSString).deletingLastPathComponent
    let name = (path as NSString).lastPathComponent
    do {
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
    } catch {
        throw CheckpointError("\(parent): cannot create the parent directory of the model directory "
            + "(\(error.localizedDescription)); expected a writable location")
    }
    var template = Array("\(parent)/.\(name).tmp-XXXXXX".utf8CString)
    guard mkdtemp(&template) != nil else {
        throw CheckpointError("\(parent): cannot create a temporary directory for \(name) "
            + "(\(String(cString: strerror(errno)))); expected a writable parent directory")
    }
    let temporary = String(cString: template)
    do {
        for (name, bytes) in files { try writeSynced(path: temporary + "/" + name, bytes: bytes) }
        guard chmod(temporary, 0o755) == 0 else { throw posixError("chmod 755", temporary) }
        try fsyncDirectory(temporary)
        try beforeRename()
        try renameIntoPlace(temporary, path, refusal: refusal)
    } catch {
        try? FileManager.default.removeItem(atPath: temporary)
        throw error
    }
    try fsyncDirectory(parent)
}

/// Writes `bytes` as the new file `url`: a temporary sibling, fsynced, renamed into place
/// without replacing, then the parent fsynced. An existing `url` is refused with a message
/// ending in `what`; missing parent directories are created.
public func writeNewFile(at url: URL, bytes: Data, what: String) throws {
    let path = url.standardizedFileURL.path
    try writeFile(at: path, bytes: bytes, refusal: CheckpointError("\(path) already exists; \(what): write to a new path"))
}

/// Writes `bytes` to `url` the way `writeNewFile` does, except that an existing file is
/// replaced (rename(2)): a reader sees the old file or the new one, never a part. For
/// outputs a rerun overwrites (eval reports, metrics.json); missing parent directories are created.
public func replaceFile(at url: URL, bytes: Data) throws {
    try writeFile(at: url.standardizedFileURL.path, bytes: bytes, refusal: nil)
}

/// `writeNewFile` (`refusal` set: never replace) and `replaceFile` (`refusal` nil).
private func writeFile(at path: String, bytes: Data, refusal: CheckpointError?) throws {
    if let refusal, pathExists(path) { throw refusal }
    let parent = (path as NSString).deletingLastPathComponent
    do {
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
    } catch {
        throw CheckpointError("\(parent): cannot create the parent directory (\(error.localizedDescription)); expected a writable location")
    }
    let temporary = "\(parent)/.\((path as NSString).lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    do {
        try writeSynced(path: temporary, bytes: bytes)
        if let refusal {
            try renameIntoPlace(temporary, path, refusal: refusal)
        } else if rename(temporary, path) != 0 {
            throw posixError("rename \(temporary) to", path)
        }
    } catch {
        try? FileManager.default.removeItem(atPath: temporary)
        throw error
    }
    try fsyncDirectory(parent)
}

/// Reads the model directory at `url`: the raw `model.json` bytes (parsed by Schema) and
/// the validated `weights.safetensors`.
public func readModelDirectory(at url: URL) throws -> (modelJSON: Data, weights: SafeTensorsFile) {
    let path = url.standardizedFileURL.path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw CheckpointError("\(path): no such model directory; expected a directory holding "
            + "\(ModelDirectoryFile.config) and \(ModelDirectoryFile.weights) (SPEC 3), as `braid train` writes")
    }
    guard isDirectory.boolValue else {
        throw CheckpointError("\(path) is a file; expected a model directory holding "
            + "\(ModelDirectoryFile.config) and \(ModelDirectoryFile.weights) (SPEC 3)")
    }
    let configPath = path + "/" + ModelDirectoryFile.config
    let weightsPath = path + "/" + ModelDirectoryFile.weights
    let missing = [configPath, weightsPath].filter { !FileManager.default.fileExists(atPath: $0) }
    guard missing.isEmpty else {
        throw CheckpointError("\(path): missing \(missing.map { ($0 as NSString).lastPathComponent }.joined(separator: " and ")); "
            + "expected a model directory holding \(ModelDirectoryFile.config) and \(ModelDirectoryFile.weights) (SPEC 3)")
    }
    let modelJSON: Data
    do {
        modelJSON = try Data(contentsOf: URL(fileURLWithPath: configPath))
    } catch {
        throw CheckpointError("\(configPath): cannot read (\(error.localizedDescription)); expected a readable file")
    }
    return (modelJSON, try SafeTensorsFile(contentsOf: URL(fileURLWithPath: weightsPath)))
}

/// Renames `temporary` to `path` without replacing it: an existing `path` throws `refusal`.
private func renameIntoPlace(_ temporary: String, _ path: String, refusal: CheckpointError) throws {
    switch renameWithoutReplacing(from: temporary, to: path) {
    case 0: return
    case EEXIST, ENOTEMPTY: throw refusal
    case let code:
        throw CheckpointError("\(path): cannot rename \(temporary) into place (\(String(cString: strerror(code)))); "
            + "expected the parent directory to be writable")
    }
}

private func pathExists(_ path: String) -> Bool {
    var status = stat()
    return lstat(path, &status) == 0
}

private func posixError(_ action: String, _ path: String, code: Int32 = errno) -> CheckpointError {
    CheckpointError("\(path): cannot \(action) (\(String(cString: strerror(code)))); "
        + "expected a writable location with free space for the model directory")
}

/// Creates `path` (it must not exist), writes all of `bytes` and fsyncs it.
private func writeSynced(path: String, bytes: Data) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw posixError("create", path) }
    defer { close(descriptor) }
    try bytes.withUnsafeBytes { raw in
        var written = 0
        while written < raw.count {
            let result = write(descriptor, raw.baseAddress! + written, raw.count - written)
            if result < 0 {
                if errno == EINTR { continue }
                throw posixError("write", path)
            }
            written += result
        }
    }
    guard fsync(descriptor) == 0 else { throw posixError("fsync", path) }
}

private func fsyncDirectory(_ path: String) throws {
    let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard descriptor >= 0 else { throw posixError("open", path) }
    defer { close(descriptor) }
    guard fsync(descriptor) == 0 else { throw posixError("fsync", path) }
}

private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32

/// rename(2) that never replaces `destination`; returns 0 or an errno value. Uses Linux
/// renameat2(RENAME_NOREPLACE), looked up at run time since Swift's Glibc module does not
/// declare it; where it is missing (ENOSYS, or EINVAL from a file system without the flag)
/// falls back to an existence check just before a plain rename.
private func renameWithoutReplacing(from source: String, to destination: String) -> Int32 {
    #if os(Linux)
    if let symbol = dlsym(nil, "renameat2") {
        let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
        let renameNoReplace: UInt32 = 1
        if renameat2(AT_FDCWD, source, AT_FDCWD, destination, renameNoReplace) == 0 { return 0 }
        let code = errno
        if code != ENOSYS && code != EINVAL { return code }
    }
    #endif
    if pathExists(destination) { return EEXIST }
    return rename(source, destination) == 0 ? 0 : errno
}
