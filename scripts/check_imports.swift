// Checks that Package.swift declares exactly the modules each target imports: for every
// target, the Braid and package modules named by `import` lines in its sources must equal
// its declared dependencies (no undeclared import, reached only transitively; no declared
// dependency that nothing imports). Toolchain modules (Foundation, Glibc, Testing, ...)
// are not declared and are skipped. Then checks that the module table of
// docs/ARCHITECTURE.md ("| module | holds | depends on |") lists every target under
// Sources/ with exactly those dependencies.
//
// Usage: swift package dump-package | swift scripts/check_imports.swift [package root]
// (scripts/check_imports runs exactly that). Prints each mismatch; exits 1 if any.
import Foundation

let toolchainModules: Set<String> = [
    "Foundation", "FoundationEssentials", "FoundationNetworking", "FoundationXML", "Glibc", "Musl", "Darwin",
    "Dispatch", "Synchronization", "Observation", "RegexBuilder", "Testing", "XCTest", "Swift", "_Concurrency",
    "_StringProcessing",
]
let root = URL(fileURLWithPath: CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : ".")

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("check_imports: \(message)\n".utf8))
    exit(2)
}

guard let package = try? JSONSerialization.jsonObject(with: FileHandle.standardInput.readDataToEndOfFile()) as? [String: Any],
      let targets = package["targets"] as? [[String: Any]]
else { fail("stdin is not the JSON of `swift package dump-package`") }

/// The module a dependency entry names: a target ({"byName": [name, condition]} or
/// {"target": [...]}) or a product ({"product": [name, package, aliases, condition]}),
/// whose module has the product's name in every package Braid uses.
func moduleName(_ dependency: [String: Any]) -> String? {
    for kind in ["byName", "target", "product"] {
        if let fields = dependency[kind] as? [Any], let name = fields.first as? String { return name }
    }
    return nil
}

/// The modules named by `import` lines (any attributes, `import struct M.T` forms) of the
/// Swift files under `directory`.
func importedModules(under directory: URL) -> Set<String> {
    var modules: Set<String> = []
    guard let files = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil) else { return modules }
    let pattern = try! NSRegularExpression(
        pattern: #"^\s*(?:@[A-Za-z_]+(?:\([^)]*\))?\s+)*import\s+(?:(?:typealias|struct|class|enum|protocol|let|var|func)\s+)?([A-Za-z_][A-Za-z0-9_]*)"#,
        options: [.anchorsMatchLines])
    for case let file as URL in files where file.pathExtension == "swift" {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { continue }
        let range = NSRange(text.startIndex..., in: text)
        for match in pattern.matches(in: text, range: range) {
            modules.insert(String(text[Range(match.range(at: 1), in: text)!]))
        }
    }
    return modules
}

var mismatches = 0
for target in targets {
    guard let name = target["name"] as? String, let type = target["type"] as? String, type != "system" else { continue }
    let path = (target["path"] as? String) ?? (type == "test" ? "Tests/\(name)" : "Sources/\(name)")
    let declared = Set(((target["dependencies"] as? [[String: Any]]) ?? []).compactMap(moduleName))
    let imported = importedModules(under: root.appendingPathComponent(path)).subtracting(toolchainModules).subtracting([name])
    let undeclared = imported.subtracting(declared).sorted(), unused = declared.subtracting(imported).sorted()
    if !undeclared.isEmpty {
        print("\(name) (\(path)) imports \(undeclared.joined(separator: ", ")) but Package.swift does not declare "
              + (undeclared.count == 1 ? "it" : "them") + "; add to its dependencies")
        mismatches += 1
    }
    if !unused.isEmpty {
        print("\(name) (\(path)) declares \(unused.joined(separator: ", ")) but no file of it imports "
              + (unused.count == 1 ? "it" : "them") + "; remove from its dependencies")
        mismatches += 1
    }
}
// docs/ARCHITECTURE.md: rows "| Module | what it holds | A, B, C |" ("-" for none).
let architecture = root.appendingPathComponent("docs/ARCHITECTURE.md")
guard let document = try? String(contentsOf: architecture, encoding: .utf8) else { fail("cannot read \(architecture.path)") }
var documented: [String: Set<String>] = [:]
for line in document.split(separator: "\n") where line.hasPrefix("| ") {
    let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    guard cells.count >= 4, let last = cells.dropLast().last, cells[1] != "module", !cells[1].hasPrefix("---") else { continue }
    documented[cells[1]] = last == "-" ? [] : Set(last.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
}
for target in targets {
    guard let name = target["name"] as? String, let type = target["type"] as? String, type != "test" else { continue }
    let path = (target["path"] as? String) ?? "Sources/\(name)"
    guard path.hasPrefix("Sources/") else { continue }
    let declared = Set(((target["dependencies"] as? [[String: Any]]) ?? []).compactMap(moduleName))
    guard let listed = documented[name] else {
        print("docs/ARCHITECTURE.md has no row for \(name); add \"| \(name) | what it holds | "
              + (declared.isEmpty ? "-" : declared.sorted().joined(separator: ", ")) + " |\"")
        mismatches += 1
        continue
    }
    if listed != declared {
        print("docs/ARCHITECTURE.md lists \(name) -> \(listed.sorted().joined(separator: ", ")); Package.swift declares "
              + "\(declared.sorted().joined(separator: ", ")); make the row say what Package.swift says")
        mismatches += 1
    }
}
if mismatches > 0 { exit(1) }
print("check_imports: every target imports exactly its declared dependencies, as docs/ARCHITECTURE.md lists them (\(targets.count) targets)")
