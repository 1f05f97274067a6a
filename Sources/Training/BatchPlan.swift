import Model

/// An epoch's batches: a seeded permutation of the rows (SplitMix64, seeded by
/// (seed, epoch)), cut into batches of `batchSize`, each batch stably sorted by
/// surface so every surface's rows are contiguous.
public func shuffledBatches(surface: [Int32], batchSize: Int, seed: UInt64, epoch: Int) -> [[Int]] {
    var rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch))
    var order = Array(0..<surface.count)
    order.shuffle(using: &rng)
    var out: [[Int]] = []
    var start = 0
    while start < order.count {
        let end = min(start + batchSize, order.count)
        var batch = Array(order[start..<end])
        // stable counting sort by surface
        let maxSurface = Int(batch.map { surface[$0] }.max() ?? 0)
        var buckets = [[Int]](repeating: [], count: maxSurface + 1)
        for r in batch { buckets[Int(surface[r])].append(r) }
        batch = buckets.flatMap { $0 }
        out.append(batch)
        start = end
    }
    return out
}
