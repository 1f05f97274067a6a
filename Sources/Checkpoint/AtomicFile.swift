import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes `data` to `url` through a temporary sibling, fsynced, then renamed into place, so a
/// reader sees the old file or the new one, never a part (the file-level twin of
/// `writeModelDirectory`).
public func writeFileAtomically(_ url: URL, _ data: Foundation.Data) throws {
    let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    guard FileManager.default.createFile(atPath: tmp.path, contents: data) else {
        throw CheckpointError("cannot write \(tmp.path); expected a writable directory")
    }
    let fd = open(tmp.path, O_RDONLY)
    if fd >= 0 { fsync(fd); close(fd) }
    if rename(tmp.path, url.path) != 0 {
        try? FileManager.default.removeItem(at: tmp)
        throw CheckpointError("cannot rename \(tmp.path) to \(url.path): \(String(cString: strerror(errno)))")
    }
}
