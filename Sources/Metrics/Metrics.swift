// SPEC 4 metrics of probabilities p against 0/1 labels y, in float64, as `auc`, `logloss`,
// `ece` and `metrics` in braid_ref.py. Pure functions; sums are pairwise (as numpy's), so
// results agree with the reference to a few ulps and stay accurate over millions of rows.
import Foundation

/// Mann–Whitney AUC with average ranks (ties get half credit): the probability that a
/// random positive scores above a random negative. O(n log n). nil when either class is
/// absent. `labels` hold 0 or 1, one per probability.
public func auc(probabilities: [Double], labels: [Double]) -> Double? {
    checkInputs(probabilities, labels, function: "auc")
    var positives = 0
    for label in labels where label == 1 { positives += 1 }
    let negatives = labels.count - positives
    guard positives > 0, negatives > 0 else { return nil }
    let order = stableOrder(probabilities)
    // Rank sum of the positives; ranks are 1-based, a tie group [i, j] gets (i + j) / 2 + 1.
    var positiveRankSum = 0.0
    var start = 0
    while start < order.count {
        var end = start
        let value = probabilities[order[start]]
        var positivesInGroup = 0
        while end < order.count && probabilities[order[end]] == value {
            if labels[order[end]] == 1 { positivesInGroup += 1 }
            end += 1
        }
        positiveRankSum += Double(positivesInGroup) * (Double(start + end - 1) / 2 + 1)
        start = end
    }
    let n1 = Double(positives)
    return (positiveRankSum - n1 * (n1 + 1) / 2) / (n1 * Double(negatives))
}

/// Mean binary cross-entropy -mean(y log p + (1 - y) log(1 - p)) with p clipped to
/// [1e-15, 1 - 1e-15] (SPEC 4). nil for no rows.
public func logLoss(probabilities: [Double], labels: [Double]) -> Double? {
    checkInputs(probabilities, labels, function: "logLoss")
    guard !probabilities.isEmpty else { return nil }
    let epsilon = 1e-15
    var terms = [Double](repeating: 0, count: probabilities.count)
    for index in probabilities.indices {
        let p = min(max(probabilities[index], epsilon), 1 - epsilon)
        let y = labels[index]
        terms[index] = y * log(p) + (1 - y) * log(1 - p)
    }
    return -pairwiseSum(terms) / Double(terms.count)
}

/// The entropy of a Bernoulli(rate) label, -(r log r + (1 - r) log(1 - r)): the log loss of
/// always predicting the empirical positive rate. nil unless 0 < rate < 1.
public func binaryEntropy(rate: Double) -> Double? {
    guard rate > 0, rate < 1 else { return nil }
    return -(rate * log(rate) + (1 - rate) * log(1 - rate))
}

/// Normalized entropy: log loss divided by the entropy of the empirical positive rate
/// (< 1 beats predicting the base rate). nil for no rows or a single class.
public func normalizedEntropy(probabilities: [Double], labels: [Double]) -> Double? {
    guard let loss = logLoss(probabilities: probabilities, labels: labels),
          let entropy = binaryEntropy(rate: pairwiseSum(labels) / Double(labels.count)) else { return nil }
    return loss / entropy
}

/// Calibration ratio mean(p) / mean(y) (1 = calibrated on average). nil for no rows or no positives.
public func calibrationRatio(probabilities: [Double], labels: [Double]) -> Double? {
    checkInputs(probabilities, labels, function: "calibrationRatio")
    guard !labels.isEmpty else { return nil }
    let rate = pairwiseSum(labels) / Double(labels.count)
    guard rate > 0 else { return nil }
    return pairwiseSum(probabilities) / Double(probabilities.count) / rate
}

/// Expected calibration error over `bins` equal-count bins of the rows sorted stably by p:
/// sum over bins of n_b / N * |mean p_b - mean y_b|. Bin sizes as `np.array_split`: the
/// first N mod bins bins get one more row; empty bins are skipped. nil for no rows.
public func expectedCalibrationError(probabilities: [Double], labels: [Double], bins: Int = 20) -> Double? {
    checkInputs(probabilities, labels, function: "expectedCalibrationError")
    precondition(bins >= 1, "expectedCalibrationError: bins is \(bins); expected at least 1")
    let count = probabilities.count
    guard count > 0 else { return nil }
    let order = stableOrder(probabilities)
    var binProbabilities = [Double](), binLabels = [Double]()
    binProbabilities.reserveCapacity(count / bins + 1)
    binLabels.reserveCapacity(count / bins + 1)
    var total = 0.0
    var start = 0
    for bin in 0..<bins {
        let size = count / bins + (bin < count % bins ? 1 : 0)
        guard size > 0 else { continue }
        binProbabilities.removeAll(keepingCapacity: true)
        binLabels.removeAll(keepingCapacity: true)
        for position in start..<(start + size) {
            binProbabilities.append(probabilities[order[position]])
            binLabels.append(labels[order[position]])
        }
        let gap = abs(pairwiseSum(binProbabilities) / Double(size) - pairwiseSum(binLabels) / Double(size))
        total += Double(size) / Double(count) * gap
        start += size
    }
    return total
}

/// Row indices sorted by value, ties in index order (numpy's `argsort(kind="mergesort")`).
func stableOrder(_ values: [Double]) -> [Int] {
    var keyed = [IndexedValue]()
    keyed.reserveCapacity(values.count)
    for index in values.indices { keyed.append(IndexedValue(value: values[index], index: index)) }
    keyed.sort()
    var order = [Int](repeating: 0, count: values.count)
    for position in keyed.indices { order[position] = keyed[position].index }
    return order
}

private struct IndexedValue: Comparable {
    let value: Double
    let index: Int
    static func < (left: IndexedValue, right: IndexedValue) -> Bool {
        left.value < right.value || (left.value == right.value && left.index < right.index)
    }
}

/// numpy's pairwise summation (`pairwise_sum` in its loops): blocks of at most 128
/// summed with 8 accumulators, halves combined recursively. Error O(log n) ulps.
func pairwiseSum(_ values: [Double]) -> Double {
    values.withUnsafeBufferPointer { pairwiseSum($0) }
}

func pairwiseSum(_ values: UnsafeBufferPointer<Double>) -> Double {
    let count = values.count
    if count < 8 {
        var sum = 0.0
        for value in values { sum += value }
        return sum
    }
    if count <= 128 {
        var r0 = values[0], r1 = values[1], r2 = values[2], r3 = values[3]
        var r4 = values[4], r5 = values[5], r6 = values[6], r7 = values[7]
        var index = 8
        while index < count - count % 8 {
            r0 += values[index]; r1 += values[index + 1]; r2 += values[index + 2]; r3 += values[index + 3]
            r4 += values[index + 4]; r5 += values[index + 5]; r6 += values[index + 6]; r7 += values[index + 7]
            index += 8
        }
        var sum = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while index < count { sum += values[index]; index += 1 }
        return sum
    }
    var half = count / 2
    half -= half % 8
    return pairwiseSum(UnsafeBufferPointer(rebasing: values[..<half]))
        + pairwiseSum(UnsafeBufferPointer(rebasing: values[half...]))
}

private func checkInputs(_ probabilities: [Double], _ labels: [Double], function: String) {
    precondition(probabilities.count == labels.count,
                 "\(function): \(probabilities.count) probabilities but \(labels.count) labels; expected one label per probability")
    for index in probabilities.indices {
        precondition(!probabilities[index].isNaN, "\(function): probability \(index) is NaN; expected a number")
        precondition(labels[index] == 0 || labels[index] == 1,
                     "\(function): label \(index) is \(labels[index]); expected 0 or 1 (drop unlabelled rows first)")
    }
}
