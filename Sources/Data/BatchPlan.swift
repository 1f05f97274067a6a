import Random

/// An epoch's training plan over N rows whose surfaces are `surface` [N] (indices into
/// `schema.surfaces`): a seeded permutation of `0 ..< N`, cut in order into batches of
/// `batchSize` rows (the last one smaller), each batch stably sorted by surface so that every
/// surface's rows are contiguous (the model runs each surface's tower on one slice).
///
/// The permutation is a Fisher-Yates shuffle driven by SplitMix64 whose seed is the first
/// SplitMix64 output of `seed ^ (0x9E3779B97F4A7C15 * (epoch + 1))`, so it depends only on
/// (seed, epoch, N) and the epochs' permutations are independent. (Seeding with that value
/// itself, as before 2026-11-27, made epoch e + 1's random stream epoch e's shifted by one
/// draw: consecutive epochs put about a quarter of each batch's rows together again, and
/// the models generalised worse than the reference trainer's.) Within a batch, rows of one
/// surface keep their shuffled order.
public func shuffledBatches(surface: [Int32], batchSize: Int, seed: UInt64, epoch: Int) -> [[Int]] {
    precondition(batchSize >= 1, "batchSize must be >= 1, got \(batchSize)")
    precondition(surface.allSatisfy { $0 >= 0 }, "surface indices must be >= 0")
    let n = surface.count
    var order = Array(0..<n)
    var mixer = SplitMix64(seed: seed ^ (0x9E37_79B9_7F4A_7C15 &* UInt64(bitPattern: Int64(epoch) &+ 1)))
    var generator = SplitMix64(seed: mixer.next())
    if n > 1 {
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int(generator.next(below: UInt64(i + 1)))
            order.swapAt(i, j)
        }
    }
    let surfaceCount = Int(surface.max() ?? 0) + 1
    var counts = [Int](repeating: 0, count: surfaceCount + 1)
    var batches: [[Int]] = []
    batches.reserveCapacity((n + batchSize - 1) / batchSize)
    var start = 0
    while start < n {
        let end = min(start + batchSize, n)
        // Stable counting sort of order[start ..< end] by surface.
        for s in counts.indices { counts[s] = 0 }
        for k in start..<end { counts[Int(surface[order[k]]) + 1] += 1 }
        for s in 1...surfaceCount { counts[s] += counts[s - 1] }
        var batch = [Int](repeating: 0, count: end - start)
        for k in start..<end {
            let s = Int(surface[order[k]])
            batch[counts[s]] = order[k]
            counts[s] += 1
        }
        batches.append(batch)
        start = end
    }
    return batches
}

/// Negative downsampling, as ads pipelines thin their biggest surfaces: the rows of
/// `0 ..< N` to train on, in order. A row of surface s with no positive label (every
/// task 0 or missing in `labels` [N, T]) is kept with probability `keepRate[s]`; rows
/// with a positive label, and rows of surfaces not in `keepRate` (or at rate 1), are
/// always kept. The draw for row n is `uniform()` of a SplitMix64 seeded with
/// `seed ^ (0xD1B54A32D192ED03 * (n + 1))`: the same rows for a seed, whatever the
/// epoch, thread count or resume point.
///
/// Training on the result shifts the model's logits on s by about ln(keepRate[s])
/// upward; Platt calibration per surface (SPEC 2.7), fitted on the untouched
/// validation split, takes the shift back out.
///
/// `firstRow` numbers the given rows from there (n = firstRow + index; the result too), so
/// sampling a file block by block gives what sampling it whole gives.
public func negativeSampledRows(surface: [Int32], labels: [Float], taskCount T: Int,
                                keepRate: [Int32: Double], seed: UInt64, firstRow: Int = 0) -> [Int] {
    precondition(labels.count == surface.count * T, "labels must be [N, T]: \(labels.count) values for \(surface.count) rows")
    precondition(keepRate.values.allSatisfy { $0 > 0 && $0 <= 1 }, "keep rates must be in (0, 1]: \(keepRate)")
    var kept: [Int] = []
    kept.reserveCapacity(surface.count)
    for i in 0..<surface.count {
        let n = firstRow + i
        guard let rate = keepRate[surface[i]], rate < 1 else { kept.append(n); continue }
        var positive = false
        for t in 0..<T where labels[i * T + t] == 1 { positive = true }
        if positive { kept.append(n); continue }
        var generator = SplitMix64(seed: seed ^ (0xD1B5_4A32_D192_ED03 &* UInt64(n + 1)))
        if generator.uniform() < rate { kept.append(n) }
    }
    return kept
}
