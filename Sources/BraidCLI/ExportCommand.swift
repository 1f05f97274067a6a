import ArgumentParser
import Checkpoint
import Foundation
import Model

/// `braid export --model DIR --surface S --out DIR` (SPEC 3, 6): a model directory that
/// serves one surface with only the tensors that surface uses.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a surface export: a model directory that serves one surface.",
        discussion: """
            The export's model.json has surfaces_included [S] and only S's calibration; its \
            weights hold S's gate and tower tree, the shared modules, the tables of the \
            features that exist on S, and row 0 only of the tables of features absent on S. \
            It scores S's rows exactly as the unified model does. OUT is written once \
            (temporary sibling, fsync, rename) and never replaces an existing path.

            Example: braid export --model run/model --surface search --out run/search
            """)

    @Option(name: .long, help: ArgumentHelp("The unified model directory.", valueName: "dir"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("The surface to export (one of the model's surfaces_included).", valueName: "s"))
    var surface: String

    @Option(name: .long, help: ArgumentHelp("The export's model directory (must not exist).", valueName: "dir"))
    var out: String

    func run() throws {
        let source = URL(fileURLWithPath: model)
        let unified = try BraidModel.load(directory: source)
        let (config, parameters) = try exportSurface(unified, surface: surface)
        let target = URL(fileURLWithPath: out)
        try BraidModel(config: config, parameters: parameters).save(directory: target)
        let before = (bytes: directoryBytes(source), parameters: parameterCount(parameterLayout(unified.config)))
        let after = (bytes: directoryBytes(target), parameters: parameterCount(parameterLayout(config)))
        func share(_ a: Int, _ b: Int) -> String { b == 0 ? "-" : String(format: "%.1f%%", 100 * Double(a) / Double(b)) }
        print("""
            exported surface \(surface) to \(out)
              unified model: \(grouped(before.parameters)) parameters, \(grouped(before.bytes)) bytes (\(model))
              export:        \(grouped(after.parameters)) parameters, \(grouped(after.bytes)) bytes \
            (\(share(after.parameters, before.parameters)) of the parameters, \(share(after.bytes, before.bytes)) of the bytes)
            """)
    }

    /// Bytes of model.json plus weights.safetensors of a model directory.
    private func directoryBytes(_ url: URL) -> Int {
        [ModelDirectoryFile.config, ModelDirectoryFile.weights].reduce(0) { total, name in
            let attributes = try? FileManager.default.attributesOfItem(atPath: url.appendingPathComponent(name).path)
            return total + ((attributes?[.size] as? NSNumber)?.intValue ?? 0)
        }
    }
}

/// 1234567 -> "1,234,567".
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return n < 0 ? "-" + out : out
}
