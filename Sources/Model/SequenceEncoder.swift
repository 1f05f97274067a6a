import Foundation
import NN
import Schema
import Tensors

/// The user action sequence encoder of SPEC 2.2 (TransAct-style), all three fusion modes.
///
/// token_i = seq.input([E_item(s_i) ; E_action(a_i)]) + P_i (+ seq.candidate(c) with
/// `early` fusion): [U, L, d]; `n_layers` pre-LN blocks; seq.ln_f; invalid positions
/// read as 0. Readout r = [maxpool ; x_0 ... x_{K-1}] plus, with `late` fusion, the
/// target attention t = softmax_i((seq.target(c) . x_i) / sqrt(d)) x, and with
/// `append` fusion the candidate token y = seq.candidate(c) run beside the user
/// tokens through every block (attending to their keys and values, never attended
/// to). z_seq = seq.proj.linear(Cross(r)): [B, proj_dim].
public struct SequenceEncoder {
    public let fusion: Fusion
    public let maxLength: Int
    public let recentK: Int
    public let dModel: Int
    public let action: Tensor          // [action_types, D]
    public let input: Linear           // [d, 2D]
    public let candidate: Linear?      // early, append: [d, D]
    public let target: Linear?         // late: [d, D]
    public let position: Tensor        // [L, d]
    public let blocks: [TransformerBlock]
    public let finalNorm: LayerNorm
    public let projectionCross: CrossLayer
    public let projection: Linear

    public init(_ store: ParameterStore, spec: SequenceSpec, config sq: SequenceConfig) {
        fusion = sq.fusion
        maxLength = spec.maxLength
        recentK = sq.recentK
        dModel = sq.dModel
        action = store["seq.action.weight"]
        input = Linear(store, "seq.input")
        candidate = sq.fusion == .late ? nil : Linear(store, "seq.candidate")
        target = sq.fusion == .late ? Linear(store, "seq.target") : nil
        position = store["seq.position.weight"]
        blocks = (0..<sq.nLayers).map { TransformerBlock(store, "seq.layers.\($0)", heads: sq.nHeads) }
        finalNorm = LayerNorm(store, "seq.ln_f")
        projectionCross = CrossLayer(store, "seq.proj.cross", lowRank: true)
        projection = Linear(store, "seq.proj.linear")
    }

    /// Valid prefix length of each sequence (actions [U, L]; 0 is padding and only
    /// trails the valid actions, SPEC 1.2).
    public static func lengths(actions: [Int32], length L: Int) -> [Int32] {
        let U = L == 0 ? 0 : actions.count / L
        var out = [Int32](repeating: 0, count: U)
        for u in 0..<U {
            var n = 0
            while n < L && actions[u * L + n] != 0 { n += 1 }
            out[u] = Int32(n)
        }
        return out
    }

    /// Packed (jagged) token layout of sequences with valid prefixes `lengths`:
    /// offsets[u] = sum of lengths before u; for every valid token (u, i) in order,
    /// `padded` = u * L + i (its row in the padded [U * L] layout) and `position` = i.
    struct Packing {
        var offsets: [Int32], padded: [Int32], position: [Int32]
        var tokens: Int { padded.count }
        init(lengths: [Int32], length L: Int) {
            offsets = [Int32](repeating: 0, count: lengths.count)
            var total = 0
            for (u, n) in lengths.enumerated() { offsets[u] = Int32(total); total += Int(n) }
            padded = [Int32](repeating: 0, count: total)
            position = [Int32](repeating: 0, count: total)
            var t = 0
            for (u, n) in lengths.enumerated() {
                for i in 0..<Int(n) { padded[t] = Int32(u * L + i); position[t] = Int32(i); t += 1 }
            }
        }
    }

    /// items: [U, L, D] item embeddings; actions [U * L]; c: [B, D] candidate
    /// embeddings; userIndex: [B] -> U (nil: U = B). Returns z_seq [B, proj_dim].
    ///
    /// Every token-wise step runs on the valid tokens only, packed as [T, d] (T = sum of
    /// lengths, SPEC 1.2: valid positions are a prefix); the readout reads them unpacked
    /// to [., L, d] with invalid positions 0. With `early` fusion and a `userIndex`, the
    /// user part of each token (seq.input + position) is computed once per user and
    /// gathered per candidate before seq.candidate(c) is added.
    public func callAsFunction(items: Tensor, actions: [Int32], candidate c: Tensor, userIndex: [Int32]?, trace: Trace?) -> Tensor {
        var userIndex = userIndex
        let L = maxLength, B = c.shape[0], d = dModel
        let (userPart, userLengths, user) = userTokens(items: items, actions: actions)
        var tokens = userPart
        // the sequences the Transformer runs: one per user, or one per candidate with early fusion
        var lengths = userLengths, packing = user
        if fusion == .early {
            if let ui = userIndex {
                lengths = ui.map { userLengths[Int($0)] }
                packing = Packing(lengths: lengths, length: L)
                var fromUser = [Int32](repeating: 0, count: packing.tokens)
                for (b, u) in ui.enumerated() {
                    let src = Int(user.offsets[Int(u)]), dst = Int(packing.offsets[b])
                    for i in 0..<Int(lengths[b]) { fromUser[dst + i] = Int32(src + i) }
                }
                tokens = gatherRows(tokens, fromUser)
                userIndex = nil
            }
            var sequenceOf = [Int32](repeating: 0, count: packing.tokens)
            for b in 0..<B { for i in 0..<Int(lengths[b]) { sequenceOf[Int(packing.offsets[b]) + i] = Int32(b) } }
            tokens = tokens + gatherRows(candidate!(c), sequenceOf)
        }
        let S = lengths.count
        if let trace { trace["seq_tokens"] = reshape(scatterRows(tokens, packing.padded, rows: S * L), [S, L, d]) }
        var x = tokens
        var y: Tensor? = fusion == .append ? candidate!(c) : nil                          // [B, d]
        for block in blocks {
            (x, y) = block.forward(packed: x, lengths: lengths, offsets: packing.offsets, maxLength: L, candidate: y, userIndex: userIndex)
        }
        let readout: Tensor
        (x, readout) = self.readout(finalNorm(x), lengths: lengths, packing: packing)
        // per sequence that ran; with late and append fusion and a userIndex that is once per
        // user, gathered per candidate
        var parts = [userIndex.map { gatherRows(readout, $0) } ?? readout]
        switch fusion {
        case .append:
            let yOut = finalNorm(y!)
            parts.append(yOut)
            trace?["seq_y"] = yOut
        case .late:
            parts.append(targetAttention(users: x, lengths: lengths, candidate: c, userIndex: userIndex))
        case .early:
            break
        }
        let r = concat(parts)
        let z = projection(projectionCross(r, r))
        trace?["seq_x"] = x
        trace?["seq_r"] = r
        trace?["z_seq"] = z
        return z
    }

    /// The user tokens entering the first block, valid tokens only: items [U, L, D] item
    /// embeddings, actions [U * L] -> seq.input([E_item ; E_action]) + P, [Tu, d], with the
    /// sequences' lengths [U] and packing.
    func userTokens(items: Tensor, actions: [Int32]) -> (tokens: Tensor, lengths: [Int32], packing: Packing) {
        let L = maxLength, U = items.shape[0], D = items.lastDim
        let lengths = Self.lengths(actions: actions, length: L)
        let user = Packing(lengths: lengths, length: L)
        let packedActions = user.padded.map { actions[Int($0)] }
        let pairs = concat([gatherRows(reshape(items, [U * L, D]), user.padded), gatherRows(action, packedActions)])  // [Tu, 2D]
        return (input(pairs) + gatherRows(position, user.position), lengths, user)                                     // [Tu, d]
    }

    /// The final tokens (after seq.ln_f) of S sequences, packed [T, d] -> unpacked [S, L, d]
    /// (invalid x_i read as 0) and the readout [maxpool ; x_0 .. x_{K-1}], [S, (1 + K) d].
    func readout(_ x: Tensor, lengths: [Int32], packing: Packing) -> (x: Tensor, readout: Tensor) {
        let S = lengths.count, L = maxLength, d = dModel
        let x = reshape(scatterRows(x, packing.padded, rows: S * L), [S, L, d])
        return (x, concat([maxPool(x, lengths: lengths), sliceColumns(reshape(x, [S, L * d]), offset: 0, width: recentK * d)]))
    }

    /// Late fusion's target attention t [B, d] of candidates c [B, D] over their users' final
    /// tokens x [U, L, d] (valid prefixes `lengths` [U]; user userIndex[b], or b when nil).
    func targetAttention(users x: Tensor, lengths: [Int32], candidate c: Tensor, userIndex: [Int32]?) -> Tensor {
        let B = c.shape[0], L = maxLength
        let q = target!(c)                                                                 // [B, d]
        let scale = 1 / Float(dModel).squareRoot()
        if let ui = userIndex, !Tape.isRecording {  // serving: no copy of the tokens per candidate
            return indexedTargetAttention(users: x, lengths: lengths, query: q, userIndex: ui, scale: scale)
        }
        let xb = userIndex.map { gatherRows(x, $0) } ?? x                                 // [B, L, d]
        let rowLengths = userIndex.map { $0.map { lengths[Int($0)] } } ?? lengths
        let scores = batchedDot(xb, q) * scale                                             // [B, L]
        var mask = [UInt8](repeating: 0, count: B * L)
        for b in 0..<B { for i in 0..<Int(rowLengths[b]) { mask[b * L + i] = 1 } }
        return weightedSum(softmax(scores, mask: mask), xb)                               // t: [B, d]
    }
}
