import Checkpoint
import Data
import Foundation
import Inference
import Model
import NN
import Schema
import TestSupport

/// A fixture's model (Tests/Fixtures/<name>: model.json + weights.safetensors) and its
/// batch.csv encoded without labels.
func fixtureModel(_ name: String) throws -> BraidModel {
    try BraidModel.load(directory: Fixtures.url(name))
}

func fixtureRows(_ name: String, config: ModelConfig) throws -> EncodedRows {
    try EncodedRows(file: Fixtures.url("\(name)/batch.csv"), config: config, options: EncodeOptions(labels: false))
}

/// Row n of a batch whose rows are their own users (userIndex nil) as a batch of one.
func singleRow(_ batch: Batch, _ n: Int, maxLength L: Int) -> Batch {
    precondition(batch.userIndex == nil)
    let T = batch.labels.count / max(batch.count, 1), nDense = batch.dense.count / max(batch.count, 1)
    let categorical = batch.categorical.map { f -> FeatureIDs in
        guard let offsets = f.offsets else { return FeatureIDs(ids: [f.ids[n]]) }
        let ids = Array(f.ids[Int(offsets[n])..<Int(offsets[n + 1])])
        return FeatureIDs(ids: ids, offsets: [0, Int32(ids.count)])
    }
    return Batch(count: 1, surface: [batch.surface[n]], categorical: categorical,
                 dense: Array(batch.dense[(n * nDense)..<((n + 1) * nDense)]),
                 seqItems: Array(batch.seqItems[(n * L)..<((n + 1) * L)]),
                 seqActions: Array(batch.seqActions[(n * L)..<((n + 1) * L)]),
                 userIndex: nil, labels: Array(batch.labels[(n * T)..<((n + 1) * T)]),
                 oracle: Array(batch.oracle[(n * T)..<((n + 1) * T)]))
}

/// max |a - b| over two equally long arrays (infinity when the lengths differ).
func maxAbsDiff(_ a: [Double], _ b: [Double]) -> Double {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
