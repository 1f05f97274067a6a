import NN
import Random
import Tensors

/// Initial values (the reference's choice; SPEC leaves it open), all normal:
/// embedding tables, `surface`, `seq.action`, `seq.position` std 0.05; Linear and
/// full-rank cross weights std 1/sqrt(fan_in); U, V std 1/sqrt(n); biases 0;
/// LayerNorm weight 1, bias 0.
public func initializeParameters(_ store: ParameterStore, seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    func fill(_ t: Tensor, std: Double) { for i in 0..<t.count { t.data[i] = Float(rng.normal() * std) } }
    for name in store.allNames {
        let t = store.tensor(named: name)!
        let leaf = name.split(separator: ".").last!
        let isLayerNorm = name.contains(".ln1.") || name.contains(".ln2.") || name.hasPrefix("seq.ln_f.")
        if isLayerNorm {
            t.data.update(repeating: leaf == "weight" ? 1 : 0, count: t.count)
        } else if leaf == "bias" {
            t.data.update(repeating: 0, count: t.count)
        } else if name.hasPrefix("embeddings.") || ["surface.weight", "seq.action.weight", "seq.position.weight"].contains(name) {
            fill(t, std: 0.05)
        } else if leaf == "U" || leaf == "V" {
            fill(t, std: 1 / Double(t.shape[0]).squareRoot())
        } else {
            fill(t, std: 1 / Double(t.shape[1]).squareRoot())
        }
    }
}
