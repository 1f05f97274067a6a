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

/// max |a - b| over two equally long arrays (infinity when the lengths differ).
func maxAbsDiff(_ a: [Double], _ b: [Double]) -> Double {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
