import Foundation
import Testing
@testable import Checkpoint
import TestSupport

/// A fresh empty directory under the system temporary directory.
private func scratchDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("braid-checkpoint-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

private func contents(_ directory: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
}

private let modelJSON = Data(#"{"format": "braid-model", "version": 1}"#.utf8)

private func weights() throws -> Data {
    try encodeSafeTensors([SafeTensorSource(name: "surface.weight", shape: [3, 2], floats: [1, 2, 3, 4, 5, 6])])
}

@Test func writesThenReadsAModelDirectory() throws {
    let scratch = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let target = scratch.appendingPathComponent("runs/model")  // the parent is created too
    try writeModelDirectory(at: target, modelJSON: modelJSON, weights: try weights())
    #expect(try contents(scratch.appendingPathComponent("runs")) == ["model"])
    #expect(try contents(target) == ["model.json", "weights.safetensors"])
    let attributes = try FileManager.default.attributesOfItem(atPath: target.path)
    #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o755)
    let (json, tensors) = try readModelDirectory(at: target)
    #expect(json == modelJSON)
    #expect(tensors.names == ["surface.weight"])
    #expect(try tensors.tensor("surface.weight").floats() == [1, 2, 3, 4, 5, 6])
    #expect(try Data(contentsOf: target.appendingPathComponent("weights.safetensors")) == (try weights()))
}

@Test func refusesAnExistingPathAndLeavesItUntouched() throws {
    let scratch = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let target = scratch.appendingPathComponent("model")
    try writeModelDirectory(at: target, modelJSON: modelJSON, weights: try weights())
    let refusal = #expect(throws: CheckpointError.self) {
        try writeModelDirectory(at: target, modelJSON: Data("{}".utf8), weights: try weights())
    }
    #expect(refusal?.message == "\(target.path) already exists; a model directory is written once and never "
        + "overwritten (SPEC 3): write to a new path")
    #expect(try readModelDirectory(at: target).modelJSON == modelJSON)
    // A plain file or an empty directory at the path is refused as well.
    let file = scratch.appendingPathComponent("file")
    try Data("x".utf8).write(to: file)
    #expect(throws: CheckpointError.self) { try writeModelDirectory(at: file, modelJSON: modelJSON, weights: try weights()) }
    #expect(try contents(scratch) == ["file", "model"])
}

/// A competing writer that creates the path after the existence check loses nothing:
/// renameat2(RENAME_NOREPLACE) refuses to replace even an empty directory, and the
/// temporary directory is removed.
@Test func aPathCreatedDuringTheWriteIsNeverReplaced() throws {
    let scratch = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let target = scratch.appendingPathComponent("model")
    var temporaryNames: [String] = []
    let refusal = #expect(throws: CheckpointError.self) {
        try writeModelDirectory(at: target, modelJSON: modelJSON, weights: try weights(), beforeRename: {
            temporaryNames = try contents(scratch)
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)
        })
    }
    #expect(refusal?.message.hasPrefix("\(target.path) already exists;") == true)
    #expect(temporaryNames.count == 1 && temporaryNames[0].hasPrefix(".model.tmp-"), "found \(temporaryNames)")
    #expect(try contents(scratch) == ["model"])
    #expect(try contents(target) == [])
}

@Test func aFailureMidWriteRemovesTheTemporaryDirectory() throws {
    struct Interrupted: Error {}
    let scratch = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let target = scratch.appendingPathComponent("model")
    #expect(throws: Interrupted.self) {
        try writeModelDirectory(at: target, modelJSON: modelJSON, weights: try weights(), beforeRename: { throw Interrupted() })
    }
    #expect(try contents(scratch) == [])
}

@Test func readingRefusesMissingDirectoriesAndFiles() throws {
    let scratch = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let missing = scratch.appendingPathComponent("absent")
    let noDirectory = #expect(throws: CheckpointError.self) { try readModelDirectory(at: missing) }
    #expect(noDirectory?.message == "\(missing.path): no such model directory; expected a directory holding "
        + "model.json and weights.safetensors (SPEC 3), as `braid train` writes")
    let file = scratch.appendingPathComponent("plain")
    try Data().write(to: file)
    let notDirectory = #expect(throws: CheckpointError.self) { try readModelDirectory(at: file) }
    #expect(notDirectory?.message.hasPrefix("\(file.path) is a file; expected a model directory") == true)
    let half = scratch.appendingPathComponent("half")
    try FileManager.default.createDirectory(at: half, withIntermediateDirectories: false)
    try modelJSON.write(to: half.appendingPathComponent("model.json"))
    let noWeights = #expect(throws: CheckpointError.self) { try readModelDirectory(at: half) }
    #expect(noWeights?.message == "\(half.path): missing weights.safetensors; expected a model directory holding "
        + "model.json and weights.safetensors (SPEC 3)")
    // A corrupt weights file is reported by the safetensors reader, naming the file.
    try Data([1, 2, 3]).write(to: half.appendingPathComponent("weights.safetensors"))
    let corrupt = #expect(throws: CheckpointError.self) { try readModelDirectory(at: half) }
    #expect(corrupt?.message.hasPrefix("\(half.path)/weights.safetensors: the file holds 3 bytes") == true)
}

@Test func readsAFixtureAsAModelDirectory() throws {
    let (json, weights) = try readModelDirectory(at: Fixtures.url("early_lowrank"))
    #expect(String(decoding: json, as: UTF8.self).contains("\"braid-model\""))
    #expect(weights["embeddings.item.weight"]?.shape == [64, 4])
}
