import Schema
import Tensors

/// Serving with `late` and `append` fusion (no tape): the user side once per unique user,
/// from a `UserStateCache` when it holds the user's sequence, then the candidates' side.
/// The same operations as `callAsFunction` in another order (every user's blocks, then every
/// candidate's), so the same result bits. Users from the cache carry the values of the batch
/// that computed them: the same scores as computing them in this batch up to the float rounding
/// a batch's composition moves anyway (products over another number of tokens; <= 1e-6 in tests).
extension SequenceEncoder {
    /// z_seq [B, proj_dim] of candidates c [B, D] whose users have item ids and actions
    /// [U * L] (user userIndex[b], or b when nil); item embeddings are gathered from `items`
    /// for the users the cache does not hold.
    public func serve(itemIDs: [Int32], actions: [Int32], items: EmbeddingTable, candidate c: Tensor, userIndex: [Int32]?,
                      cache: UserStateCache?) -> Tensor {
        precondition(fusion != .early, "early fusion has no candidate-independent user side")
        let side = userSide(itemIDs: itemIDs, actions: actions, items: items, cache: cache)
        var parts = [userIndex.map { gatherRows(side.readout, $0) } ?? side.readout]
        if fusion == .append {
            var y = candidate!(c)                                                           // [B, d]
            for (block, qkv) in zip(blocks, side.layers) {
                y = block.candidateForward(y, user: qkv, lengths: side.lengths, offsets: side.offsets, maxLength: maxLength,
                                           userIndex: userIndex)
            }
            parts.append(finalNorm(y))
        } else {
            parts.append(targetAttention(users: side.layers[0], lengths: side.lengths, candidate: c, userIndex: userIndex))
        }
        let r = concat(parts)
        return projection(projectionCross(r, r))
    }

    /// The user side of U users (item ids and actions [U * L]): the cached users' entries and
    /// the others' computed in one batch (and added to the cache).
    public func userSide(itemIDs: [Int32], actions: [Int32], items: EmbeddingTable, cache: UserStateCache?) -> UserSide {
        let L = maxLength, U = L == 0 ? 0 : actions.count / L
        let lengths = Self.lengths(actions: actions, length: L)
        var keys: [[Int32]] = [], found = [UserEntry?](repeating: nil, count: U)
        if let cache {
            keys = (0..<U).map { u in
                let valid = (u * L)..<(u * L + Int(lengths[u]))
                return UserStateCache.key(items: itemIDs[valid], actions: actions[valid])
            }
            for u in 0..<U { found[u] = cache.lookup(keys[u]) }
        }
        let misses = (0..<U).filter { found[$0] == nil }
        if !misses.isEmpty {
            var missIDs = [Int32](), missActions = [Int32]()
            missIDs.reserveCapacity(misses.count * L)
            missActions.reserveCapacity(misses.count * L)
            for u in misses {
                missIDs.append(contentsOf: itemIDs[(u * L)..<((u + 1) * L)])
                missActions.append(contentsOf: actions[(u * L)..<((u + 1) * L)])
            }
            let computed = computeUserSide(items: embedding(items, ids: missIDs, shape: [misses.count, L, items.dim]), actions: missActions)
            if cache == nil { return computed }  // every user missed: the batch as computed
            for (i, u) in misses.enumerated() {
                let entry = computed.entry(i, fusion: fusion)
                cache!.insert(keys[u], entry)
                found[u] = entry
            }
            if misses.count == U { return computed }
        }
        return UserSide(entries: found.map { $0! }, fusion: fusion, maxLength: L, dModel: dModel, readoutWidth: (1 + recentK) * dModel)
    }

    /// The user side of sequences items [U, L, D], actions [U * L], every one computed.
    func computeUserSide(items: Tensor, actions: [Int32]) -> UserSide {
        let (tokens, lengths, packing) = userTokens(items: items, actions: actions)
        var x = tokens, layers: [Tensor] = []
        for block in blocks {
            let qkv: Tensor
            (x, qkv) = block.userForward(packed: x, lengths: lengths, offsets: packing.offsets, maxLength: maxLength)
            if fusion == .append { layers.append(qkv) }
        }
        let (final, readout) = self.readout(finalNorm(x), lengths: lengths, packing: packing)
        if fusion == .late { layers = [final] }
        return UserSide(lengths: lengths, offsets: packing.offsets, readout: readout, layers: layers)
    }
}

extension UserSide {
    /// User i's entry (the rows the candidates read; see `UserEntry`).
    func entry(_ i: Int, fusion: Fusion) -> UserEntry {
        let n = Int(lengths[i]), o = Int(offsets[i]), R = readout.lastDim
        let readoutRow = Array(UnsafeBufferPointer(start: readout.data + i * R, count: R))
        let rows: [[Float]] = layers.map { layer in
            if fusion == .append {  // [T, 3d]: columns d ..< 3d of rows o ..< o + n
                let d = layer.lastDim / 3
                var kv = [Float](repeating: 0, count: n * 2 * d)
                for t in 0..<n { for j in 0..<(2 * d) { kv[t * 2 * d + j] = layer.data[(o + t) * 3 * d + d + j] } }
                return kv
            }
            let L = layer.shape[1], d = layer.lastDim  // late: [U, L, d], rows 0 ..< n of user i
            return Array(UnsafeBufferPointer(start: layer.data + i * L * d, count: n * d))
        }
        return UserEntry(length: n, readout: readoutRow, layers: rows)
    }

    /// The user side of users given by their entries, in order (`append`: q columns 0; `late`:
    /// invalid rows 0).
    init(entries: [UserEntry], fusion: Fusion, maxLength L: Int, dModel d: Int, readoutWidth R: Int) {
        let U = entries.count
        var offsets = [Int32](repeating: 0, count: U), total = 0
        for u in 0..<U { offsets[u] = Int32(total); total += entries[u].length }
        let readout = Tensor(shape: [U, R])
        for (u, e) in entries.enumerated() { e.readout.withUnsafeBufferPointer { (readout.data + u * R).update(from: $0.baseAddress!, count: R) } }
        let layers = (0..<(entries.first?.layers.count ?? 0)).map { l in
            if fusion == .append {
                let qkv = Tensor(shape: [total, 3 * d], zeroed: true)
                for (u, e) in entries.enumerated() {
                    e.layers[l].withUnsafeBufferPointer { kv in
                        for t in 0..<e.length {
                            (qkv.data + (Int(offsets[u]) + t) * 3 * d + d).update(from: kv.baseAddress! + t * 2 * d, count: 2 * d)
                        }
                    }
                }
                return qkv
            }
            let x = Tensor(shape: [U, L, d], zeroed: true)
            for (u, e) in entries.enumerated() where e.length > 0 {
                e.layers[l].withUnsafeBufferPointer { (x.data + u * L * d).update(from: $0.baseAddress!, count: e.length * d) }
            }
            return x
        }
        self.init(lengths: entries.map { Int32($0.length) }, offsets: offsets, readout: readout, layers: layers)
    }
}
