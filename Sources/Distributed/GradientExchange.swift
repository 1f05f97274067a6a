import NN
import Tensors

/// What one data-parallel step exchanged: the global batch's rows and loss sum, and this
/// rank's communication cost.
public struct ExchangeStep: Sendable {
    /// Rows of the global batch (the sum of the ranks' local rows).
    public var rows: Int
    /// sum over the global batch of each row's loss (sum over ranks of local mean x local rows).
    public var lossSum: Double
    /// Bytes this rank sent and received in the step's collectives.
    public var bytes: Int
    /// Seconds this rank spent in the step's collectives.
    public var seconds: Double
}

/// Turns every rank's gradients of its share of a global batch into the global batch's
/// gradients, identical on every rank, so that every rank applies the same optimizer step.
///
/// Rank r trained on b_r of the B = sum_r b_r rows, and its loss was the mean over its rows, so
/// the gradient of the global mean loss is g = sum_r (b_r / B) g_r:
/// - dense: each rank scales its gradient block [P] by b_r / B, then one sum-allreduce over
///   the block in fixed-size buckets taken in order (`Communicator.allreduceSum`), so every
///   run reduces the same slices the same way;
/// - embeddings: each table's gradient stays sparse (`SparseRows`: the distinct rows a batch
///   touched, [rows, D] values). The ranks' (row id, gradient row) pairs of every table are
///   packed into one id buffer and one value buffer and gathered (`MPI_Allgatherv`, 2 calls a
///   step after one `MPI_Allgather` of the counts and losses); every rank then rebuilds each
///   table's `SparseRows` by adding the ranks' rows in rank order, scaled by b_r / B. No dense
///   [buckets, D] buffer is ever reduced.
///
/// With one rank (`Communicator.single`) nothing is scaled or moved.
public final class GradientExchange {
    public let communicator: Communicator
    public let store: ParameterStore
    /// Floats per dense allreduce call.
    public let bucket: Int

    public init(communicator: Communicator, store: ParameterStore, bucketFloats: Int = 1 << 22) {
        self.communicator = communicator
        self.store = store
        bucket = bucketFloats
    }

    /// Sums the ranks' gradients in `store` (see the type's doc). `localRows` is b_r and
    /// `localLossSum` this rank's loss mean x b_r (0 for a rank without rows this step).
    public func exchange(localRows: Int, localLossSum: Double) throws -> ExchangeStep {
        let c = communicator
        guard c.size > 1 else { return ExchangeStep(rows: localRows, lossSum: localLossSum, bytes: 0, seconds: 0) }
        let before = (c.bytesSent + c.bytesReceived, c.seconds)
        let tables = store.embeddingTables
        // 1. every rank's rows, loss sum and per-table touched-row counts
        var header = [Double(localRows), localLossSum]
        for table in tables { header.append(Double(table.sparseGrad.rows.count)) }
        let width = header.count
        let headers = try c.allgather(header)
        var rows = 0
        var lossSum = 0.0
        for r in 0..<c.size {
            rows += Int(headers[r * width])
            lossSum += headers[r * width + 1]
        }
        let scale = rows > 0 ? Float(Double(localRows) / Double(rows)) : 0

        // 2. dense: scale by b_r / B, allreduce in buckets
        let gradients = store.gradients.pointer
        let count = store.denseCount
        for i in 0..<count { gradients[i] *= scale }
        try c.allreduceSum(gradients, count: count, bucket: bucket)

        // 3. sparse: pack (ids, values) of every table, gather, rebuild in rank order
        var ids: [Int32] = [], values: [Float] = []
        for table in tables {
            let g = table.sparseGrad
            ids.append(contentsOf: g.rows)
            g.values.withUnsafeBufferPointer { v in
                values.reserveCapacity(values.count + v.count)
                for x in v { values.append(x * scale) }
            }
        }
        var idCounts = [Int](repeating: 0, count: c.size), valueCounts = [Int](repeating: 0, count: c.size)
        for r in 0..<c.size {
            for (t, table) in tables.enumerated() {
                let n = Int(headers[r * width + 2 + t])
                idCounts[r] += n
                valueCounts[r] += n * table.dim
            }
        }
        let allIDs = try c.allgatherv(ids, counts: idCounts)
        let allValues = try c.allgatherv(values, counts: valueCounts)
        for table in tables { table.sparseGrad.reset() }
        allValues.withUnsafeBufferPointer { allValues in
            var idAt = 0, valueAt = 0
            for r in 0..<c.size {
                for (t, table) in tables.enumerated() {
                    let n = Int(headers[r * width + 2 + t]), d = table.dim
                    let g = table.sparseGrad
                    for i in 0..<n { g.add(row: allIDs[idAt + i], allValues.baseAddress! + valueAt + i * d) }
                    idAt += n
                    valueAt += n * d
                }
            }
        }
        return ExchangeStep(rows: rows, lossSum: lossSum, bytes: c.bytesSent + c.bytesReceived - before.0,
                            seconds: c.seconds - before.1)
    }
}
