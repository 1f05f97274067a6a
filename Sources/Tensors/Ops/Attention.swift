import Kernels

/// Multi-head self-attention core over a fused qkv projection (SPEC 2.2).
/// qkv: [U, L, 3d] (q, k, v, head h = contiguous slice h), lengths: [U] valid
/// prefix lengths -> [U, L, d] = softmax(q k^T / sqrt(d/heads)) v per head, keys
/// restricted to the valid prefix; rows past it, and sequences with no valid
/// position, give 0. The output Linear is applied by the caller.
public func selfAttention(_ qkv: Tensor, lengths: [Int32], heads: Int) -> Tensor {
    let U = qkv.shape[0], L = qkv.shape[1], d = qkv.shape[2] / 3
    precondition(lengths.count == U && d % heads == 0, "selfAttention: \(qkv.shape), \(lengths.count) lengths, \(heads) heads")
    return attentionOp(qkv, outputShape: [U, L, d], lengths: lengths, offsets: nil, maxLength: L, heads: heads)
}

/// The packed (jagged) form of `selfAttention`: qkv [T, 3d] holds only valid tokens,
/// sequence u at rows offsets[u] ..< offsets[u] + lengths[u] (T = sum of lengths),
/// every length <= maxLength -> [T, d]. Equals `selfAttention` of the padded layout at
/// the valid rows.
public func selfAttention(packed qkv: Tensor, lengths: [Int32], offsets: [Int32], maxLength L: Int, heads: Int) -> Tensor {
    let T = qkv.shape[0], d = qkv.shape[1] / 3, U = lengths.count
    precondition(offsets.count == U && d % heads == 0 && qkv.shape.count == 2, "selfAttention(packed:): \(qkv.shape), \(U) lengths, \(heads) heads")
    return attentionOp(qkv, outputShape: [T, d], lengths: lengths, offsets: offsets, maxLength: L, heads: heads)
}

/// Both layouts of `selfAttention`: without a backward (inference), or with sequences
/// longer than `2 * attentionBlockRows` (`attentionRunsBlocked`), the blocked kernels (memory O(block * L) per thread; the backward recomputes
/// the probabilities from one log-sum-exp per query row and head, [rows, heads]), else the
/// kernels that save the probabilities [U, heads, L, L] for the backward.
func attentionOp(_ qkv: Tensor, outputShape: [Int], lengths: [Int32], offsets: [Int32]?, maxLength L: Int, heads: Int) -> Tensor {
    let U = lengths.count, d = qkv.lastDim / 3, rows = qkv.count / (3 * d)
    let y = Tensor(shape: outputShape)
    let tape = Tape.needsGrad(qkv)
    let blocked = tape == nil || attentionRunsBlocked(length: L)  // no backward: nothing to save
    let saved = tape == nil ? nil : Tensor(shape: blocked ? [rows, heads] : [U, heads, L, L])  // for the backward only
    func withPointers(_ body: (UnsafePointer<Int32>, UnsafePointer<Int32>?) -> Void) {
        lengths.withUnsafeBufferPointer { lp in
            if let offsets { offsets.withUnsafeBufferPointer { body(lp.baseAddress!, $0.baseAddress!) } } else { body(lp.baseAddress!, nil) }
        }
    }
    withPointers { lp, op in
        if blocked {
            blockedAttentionForward(y.data, lse: saved?.data, qkv: qkv.data, lengths: lp, sequences: U, length: L, dim: d, heads: heads, offsets: op)
        } else {
            attentionForward(y.data, probs: saved!.data, qkv: qkv.data, lengths: lp, sequences: U, length: L, dim: d, heads: heads, offsets: op)
        }
    }
    y.recordBackward(on: tape) { dy in
        withPointers { lp, op in
            if blocked {
                blockedAttentionBackward(dqkv: qkv.ensureGrad(), dout: dy, out: y.data, lse: saved!.data, qkv: qkv.data, lengths: lp, sequences: U,
                                         length: L, dim: d, heads: heads, offsets: op)
            } else {
                let (dqkv, fresh) = qkv.gradForFullWrite()
                attentionBackward(dqkv: dqkv, dout: dy, probs: saved!.data, qkv: qkv.data, lengths: lp, sequences: U,
                                  length: L, dim: d, heads: heads, offsets: op, overwrite: fresh)
            }
        }
    }
    return y
}

/// Append-fusion attention core (SPEC 2.2): candidate token b (qkvY [B, 3d]) attends
/// to the valid keys and values of its user's tokens (qkvUser [U, L, 3d], user
/// userIndex[b], or b when nil) and to itself -> [B, d]. User tokens never attend to y.
///
/// Packed form (`offsets` given, `maxLength` L): qkvUser [T, 3d] holds user u's valid
/// tokens at rows offsets[u] ..< offsets[u] + lengths[u].
public func appendAttention(_ qkvY: Tensor, user qkvUser: Tensor, lengths: [Int32], userIndex: [Int32]?, heads: Int,
                            offsets: [Int32]? = nil, maxLength: Int = 0) -> Tensor {
    let B = qkvY.shape[0], U = lengths.count
    let L = offsets == nil ? qkvUser.shape[1] : maxLength, d = qkvUser.lastDim / 3
    precondition((offsets != nil || qkvUser.shape[0] == U) && qkvY.lastDim == 3 * d, "appendAttention: \(qkvY.shape) vs \(qkvUser.shape)")
    let y = Tensor(shape: [B, d])
    let tape = Tape.needsGrad(qkvY, qkvUser)
    let probs = Tensor(shape: tape == nil ? [0] : [B, heads, L + 1])  // saved for the backward only
    let run = { (lp: UnsafePointer<Int32>, ui: UnsafePointer<Int32>?) in
        if let offsets {
            offsets.withUnsafeBufferPointer {
                appendAttentionForward(y.data, probs: tape == nil ? nil : probs.data, qkvY: qkvY.data, qkvUser: qkvUser.data, lengths: lp, userIndex: ui,
                                       candidates: B, length: L, dim: d, heads: heads, offsets: $0.baseAddress!)
            }
        } else {
            appendAttentionForward(y.data, probs: tape == nil ? nil : probs.data, qkvY: qkvY.data, qkvUser: qkvUser.data, lengths: lp,
                                   userIndex: ui, candidates: B, length: L, dim: d, heads: heads)
        }
    }
    lengths.withUnsafeBufferPointer { lp in
        if let userIndex { userIndex.withUnsafeBufferPointer { run(lp.baseAddress!, $0.baseAddress) } } else { run(lp.baseAddress!, nil) }
    }
    y.recordBackward(on: tape) { dy in
        let dY = qkvY.requiresGrad ? qkvY.ensureGrad() : nil
        let dU = qkvUser.requiresGrad ? qkvUser.ensureGrad() : nil
        let back = { (lp: UnsafePointer<Int32>, ui: UnsafePointer<Int32>?) in
            if let offsets {
                offsets.withUnsafeBufferPointer {
                    appendAttentionBackward(dqkvY: dY, dqkvUser: dU, dout: dy, probs: probs.data, qkvY: qkvY.data, qkvUser: qkvUser.data,
                                            lengths: lp, userIndex: ui, candidates: B, length: L, dim: d, heads: heads, offsets: $0.baseAddress!)
                }
            } else {
                appendAttentionBackward(dqkvY: dY, dqkvUser: dU, dout: dy, probs: probs.data, qkvY: qkvY.data, qkvUser: qkvUser.data,
                                        lengths: lp, userIndex: ui, candidates: B, length: L, dim: d, heads: heads)
            }
        }
        lengths.withUnsafeBufferPointer { lp in
            if let userIndex { userIndex.withUnsafeBufferPointer { back(lp.baseAddress!, $0.baseAddress) } } else { back(lp.baseAddress!, nil) }
        }
    }
    return y
}
