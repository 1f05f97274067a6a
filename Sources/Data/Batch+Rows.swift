extension Batch {
    /// The rows `range` of this batch as a batch of `range.count` rows, in order: their
    /// surfaces, ids (bags re-based to offset 0), dense values, labels and oracle values.
    /// With `userIndex` every user's sequence is kept ([U, L] as is) and the rows keep their
    /// user indices, so a shard of a served batch still shares each user's sequence; without
    /// it the rows' own sequences [range.count, L] are taken (L = `maxLength`).
    public func rows(_ range: Range<Int>, maxLength L: Int) -> Batch {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "rows \(range) of a batch of \(count)")
        if range == 0 ..< count { return self }
        let B = range.count, nDense = count > 0 ? dense.count / count : 0, T = count > 0 ? labels.count / count : 0
        let categorical = self.categorical.map { f -> FeatureIDs in
            guard let offsets = f.offsets else { return FeatureIDs(ids: Array(f.ids[range])) }
            let lo = Int(offsets[range.lowerBound]), hi = Int(offsets[range.upperBound])
            return FeatureIDs(ids: Array(f.ids[lo ..< hi]), offsets: offsets[range.lowerBound ... range.upperBound].map { $0 - Int32(lo) })
        }
        let sequence = userIndex == nil ? (range.lowerBound * L) ..< (range.upperBound * L) : 0 ..< seqItems.count
        return Batch(count: B, surface: Array(surface[range]), categorical: categorical,
                     dense: Array(dense[(range.lowerBound * nDense) ..< (range.upperBound * nDense)]),
                     seqItems: Array(seqItems[sequence]), seqActions: Array(seqActions[sequence]),
                     userIndex: userIndex.map { Array($0[range]) },
                     labels: Array(labels[(range.lowerBound * T) ..< (range.upperBound * T)]),
                     oracle: Array(oracle[(range.lowerBound * T) ..< (range.upperBound * T)]))
    }
}
