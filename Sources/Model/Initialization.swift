import Foundation
import NN
import Tensors

/// SplitMix64: a small, fast, well-mixed 64-bit generator; deterministic for a seed.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A standard normal sample (Box-Muller).
    public mutating func normal() -> Double {
        let u1 = (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992.0
        let u2 = Double(next() >> 11) / 9_007_199_254_740_992.0
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

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
