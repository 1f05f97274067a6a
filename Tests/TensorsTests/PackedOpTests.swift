import Foundation
import Kernels
import Tensors
import Testing
import TestSupport

// Packed (jagged) sequence ops: the reference pads the packed rows to [U, L, .]
// (zeros past each length), runs the padded naive twin and reads the valid rows back.

/// Packed row index of sequence u, position i -> padded row u * L + i.
private func paddedRows(_ lengths: [Int32], _ L: Int) -> [Int] {
    lengths.enumerated().flatMap { u, n in (0..<Int(n)).map { u * L + $0 } }
}

private func pad(_ x: [Double], _ lengths: [Int32], _ L: Int, width: Int) -> [Double] {
    var out = [Double](repeating: 0, count: lengths.count * L * width)
    for (t, r) in paddedRows(lengths, L).enumerated() { for j in 0..<width { out[r * width + j] = x[t * width + j] } }
    return out
}

private func unpad(_ x: [Double], _ lengths: [Int32], _ L: Int, width: Int) -> [Double] {
    paddedRows(lengths, L).flatMap { r in Array(x[(r * width)..<((r + 1) * width)]) }
}

private func offsets(_ lengths: [Int32]) -> [Int32] {
    var o: [Int32] = [], s: Int32 = 0
    for n in lengths { o.append(s); s += n }
    return o
}

/// lengths 0, 1, L and in between in one batch
@Test(arguments: [1, 2]) func packedSelfAttentionOp(_ heads: Int) {
    let lengths: [Int32] = [3, 0, 5, 1], L = 5, d = 4, T = 9
    checkOp(shapes: [[T, 3 * d]], range: -2...2,
            forward: { selfAttention(packed: $0[0], lengths: lengths, offsets: offsets(lengths), maxLength: L, heads: heads) },
            reference: { x in
                let padded = naiveAttention(pad(x[0], lengths, L, width: 3 * d), lengths: lengths, sequences: 4, length: L, dim: d, heads: heads)
                return unpad(padded, lengths, L, width: d)
            })
}

@Test(arguments: [1, 2]) func packedAppendAttentionOp(_ heads: Int) {
    let lengths: [Int32] = [2, 0, 4], L = 4, d = 4, T = 6
    let users: [Int32] = [2, 2, 0, 1, 2]
    for wrt in [[0, 1], [0], [1]] {
        checkOp(shapes: [[5, 3 * d], [T, 3 * d]], range: -2...2, wrt: wrt,
                forward: { appendAttention($0[0], user: $0[1], lengths: lengths, userIndex: users, heads: heads,
                                           offsets: offsets(lengths), maxLength: L) },
                reference: { x in
                    naiveAppendAttention(x[0], user: pad(x[1], lengths, L, width: 3 * d), lengths: lengths, userIndex: users,
                                         candidates: 5, length: L, dim: d, heads: heads)
                })
    }
    // one candidate per user (no userIndex)
    checkOp(shapes: [[3, 3 * d], [T, 3 * d]], range: -2...2,
            forward: { appendAttention($0[0], user: $0[1], lengths: lengths, userIndex: nil, heads: heads,
                                       offsets: offsets(lengths), maxLength: L) },
            reference: { x in
                naiveAppendAttention(x[0], user: pad(x[1], lengths, L, width: 3 * d), lengths: lengths, userIndex: nil,
                                     candidates: 3, length: L, dim: d, heads: heads)
            })
}

@Test func scatterRowsOp() {
    let index: [Int32] = [4, 0, 2]
    checkOp(shapes: [[3, 2, 3]], forward: { scatterRows($0[0], index, rows: 6) }, reference: { x in
        var out = [Double](repeating: 0, count: 36)
        for (i, r) in index.enumerated() { for j in 0..<6 { out[Int(r) * 6 + j] = x[0][i * 6 + j] } }
        return out
    })
    checkOp(shapes: [[0, 4]], forward: { scatterRows($0[0], [], rows: 2) }, reference: { _ in [Double](repeating: 0, count: 8) })
}
