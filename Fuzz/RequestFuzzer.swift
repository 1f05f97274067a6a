// libFuzzer harness of the SPEC 5 request decoder (scripts/fuzz_request.sh builds and runs it).
//
// Every input is a `POST /v1/score` body, decoded with the public entry point the server
// uses, `encodeRequests(_: Data, config:maxUniqueUsers:)`, against each model fixture of
// Tests/Fixtures (their schemas cover single- and multi-valued categorical features,
// dense transforms, surface-specific features, sequences and empty sequences). A body is
// either encoded (and then, for the first fixture, scored by its InferenceEngine, which
// must not trap and must give probabilities in [0, 1]) or refused with a RequestError of status 400 or 413 and a `where: what` message. Any
// other outcome (another error type, another status, an empty message, a trap) is a crash
// libFuzzer records.
import Foundation
import Inference
import Model

let fixtures = ProcessInfo.processInfo.environment["BRAID_FIXTURES"] ?? "Tests/Fixtures"
let maxUniqueUsers = 4
let models: [(name: String, model: BraidModel, engine: InferenceEngine)] =
    ["late_fullrank", "multi_exclusive", "early_lowrank", "empty_sequences", "append_fusion"].map { name in
        let model = try! BraidModel.load(directory: URL(fileURLWithPath: "\(fixtures)/\(name)"))
        return (name, model, InferenceEngine(model: model, maxUniqueUsers: maxUniqueUsers))
    }

@_cdecl("LLVMFuzzerTestOneInput")
public func requestFuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Data(bytes: bytes, count: size)
    for (m, (name, model, engine)) in models.enumerated() {
        do {
            let encoded = try encodeRequests(body, config: model.config, maxUniqueUsers: maxUniqueUsers)
            guard m == 0 else { continue }  // scoring is the slow part: one model is enough to reach the engine
            let scored = try engine.score(encoded)
            precondition(scored.probabilities.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(name): a probability outside [0, 1]")
        } catch let error as RequestError {
            precondition(error.status == 400 || error.status == 413, "\(name): status \(error.status) for \(error)")
            precondition(!error.location.isEmpty && !error.message.isEmpty, "\(name): an empty error message")
        } catch {
            fatalError("\(name): \(type(of: error)) is not a RequestError: \(error)")
        }
    }
    return 0
}
