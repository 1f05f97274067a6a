import Foundation
import Kernels
import Testing
import TestSupport

// Fused attention kernels against the Float64 naive attention: lengths 0, 1 and
// L mixed in one batch, heads 1 and 2; backward kernels against central
// differences of the naive forward; 1 and 2 threads bitwise identical.

struct AttentionCase: CustomTestStringConvertible, Sendable {
    var lengths: [Int32], L: Int, d: Int, heads: Int
    var testDescription: String { "lengths \(lengths) L\(L) d\(d) heads\(heads)" }
}

let attentionCases = [
    AttentionCase(lengths: [0, 1, 5, 3], L: 5, d: 4, heads: 1),
    AttentionCase(lengths: [0, 1, 5, 3], L: 5, d: 6, heads: 2),
    AttentionCase(lengths: [1], L: 1, d: 2, heads: 2),
    AttentionCase(lengths: [0, 0], L: 3, d: 4, heads: 2),
    AttentionCase(lengths: [7, 2, 0, 7, 4], L: 7, d: 10, heads: 2),
]

func selfAttentionForward(_ qkv: [Float], _ t: AttentionCase) -> (out: [Float], probs: [Float]) {
    let U = t.lengths.count
    var out = [Float](repeating: .nan, count: U * t.L * t.d)
    var probs = [Float](repeating: .nan, count: U * t.heads * t.L * t.L)
    attentionForward(&out, probs: &probs, qkv: qkv, lengths: t.lengths, sequences: U, length: t.L, dim: t.d, heads: t.heads)
    return (out, probs)
}

@Test(arguments: attentionCases) func attentionMatchesNaive(_ t: AttentionCase) {
    let U = t.lengths.count
    let qkv = randomFloats(U * t.L * 3 * t.d, seed: 1, in: -2...2)
    let (out, probs) = selfAttentionForward(qkv, t)
    let naive = { (x: [Double]) in naiveAttention(x, lengths: t.lengths, sequences: U, length: t.L, dim: t.d, heads: t.heads) }
    #expect(relativeError(out, naive(qkv.doubles)) < 1e-5)
    // backward: accumulates the derivative of sum(out * dout) into dqkv
    let dout = randomFloats(U * t.L * t.d, seed: 2), dqkv0 = randomFloats(qkv.count, seed: 3)
    var dqkv = dqkv0
    attentionBackward(dqkv: &dqkv, dout: dout, probs: probs, qkv: qkv, lengths: t.lengths, sequences: U, length: t.L, dim: t.d, heads: t.heads)
    let fd = centralDifference(at: qkv.doubles) { dot(naive($0), dout.doubles) }
    #expect(relativeError(zip(dqkv, dqkv0).map { Double($0) - Double($1) }, fd) < 1e-4)
    // overwrite: every element written (padded rows, empty sequences too), as added to zeros
    var zeros = [Float](repeating: 0, count: qkv.count), fresh = [Float](repeating: .nan, count: qkv.count)
    attentionBackward(dqkv: &zeros, dout: dout, probs: probs, qkv: qkv, lengths: t.lengths, sequences: U, length: t.L, dim: t.d, heads: t.heads)
    attentionBackward(dqkv: &fresh, dout: dout, probs: probs, qkv: qkv, lengths: t.lengths, sequences: U, length: t.L, dim: t.d, heads: t.heads,
                      overwrite: true)
    #expect(fresh == zeros)
}

struct AppendCase: CustomTestStringConvertible, Sendable {
    var lengths: [Int32], userIndex: [Int32]?, L: Int, d: Int, heads: Int
    var testDescription: String { "lengths \(lengths) users \(userIndex.map { "\($0)" } ?? "identity") L\(L) d\(d) heads\(heads)" }
}

let appendCases = [
    AppendCase(lengths: [0, 1, 4, 2], userIndex: nil, L: 4, d: 4, heads: 1),
    AppendCase(lengths: [0, 1, 4, 2], userIndex: nil, L: 4, d: 6, heads: 2),
    // several candidates per user (their user gradients add up), one user never used
    AppendCase(lengths: [3, 0, 4, 1], userIndex: [0, 0, 2, 1, 0, 2, 3], L: 4, d: 6, heads: 2),
    AppendCase(lengths: [5], userIndex: [0, 0, 0], L: 5, d: 2, heads: 1),
    // long runs of one user (one product per run and head), a user with no valid token
    AppendCase(lengths: [6, 0, 3], userIndex: [0, 0, 0, 0, 0, 1, 1, 2, 2, 0], L: 6, d: 8, heads: 2),
]

@Test(arguments: appendCases, [true, false]) func appendAttentionMatchesNaive(_ t: AppendCase, _ candidateGradient: Bool) {
    let U = t.lengths.count, B = t.userIndex?.count ?? U, ld = 3 * t.d
    let y = randomFloats(B * ld, seed: 4, in: -2...2), user = randomFloats(U * t.L * ld, seed: 5, in: -2...2)
    var out = [Float](repeating: .nan, count: B * t.d), probs = [Float](repeating: .nan, count: B * t.heads * (t.L + 1))
    let ui = t.userIndex
    func forward(_ out: UnsafeMutablePointer<Float>, _ probs: UnsafeMutablePointer<Float>) {
        if let ui {
            appendAttentionForward(out, probs: probs, qkvY: y, qkvUser: user, lengths: t.lengths, userIndex: ui,
                                   candidates: B, length: t.L, dim: t.d, heads: t.heads)
        } else {
            appendAttentionForward(out, probs: probs, qkvY: y, qkvUser: user, lengths: t.lengths, userIndex: nil,
                                   candidates: B, length: t.L, dim: t.d, heads: t.heads)
        }
    }
    forward(&out, &probs)
    let naive = { (yv: [Double], uv: [Double]) in
        naiveAppendAttention(yv, user: uv, lengths: t.lengths, userIndex: ui, candidates: B, length: t.L, dim: t.d, heads: t.heads)
    }
    #expect(relativeError(out, naive(y.doubles, user.doubles)) < 1e-5)

    let dout = randomFloats(B * t.d, seed: 6)
    let dy0 = randomFloats(y.count, seed: 7), du0 = randomFloats(user.count, seed: 8)
    var dy = dy0, du = du0
    dy.withUnsafeMutableBufferPointer { pdy in du.withUnsafeMutableBufferPointer { pdu in
        let dY = candidateGradient ? pdy.baseAddress : nil
        if let ui {
            appendAttentionBackward(dqkvY: dY, dqkvUser: pdu.baseAddress, dout: dout, probs: probs, qkvY: y, qkvUser: user,
                                    lengths: t.lengths, userIndex: ui, candidates: B, length: t.L, dim: t.d, heads: t.heads)
        } else {
            appendAttentionBackward(dqkvY: dY, dqkvUser: pdu.baseAddress, dout: dout, probs: probs, qkvY: y, qkvUser: user,
                                    lengths: t.lengths, userIndex: nil, candidates: B, length: t.L, dim: t.d, heads: t.heads)
        }
    } }
    let fdUser = centralDifference(at: user.doubles) { dot(naive(y.doubles, $0), dout.doubles) }
    #expect(relativeError(zip(du, du0).map { Double($0) - Double($1) }, fdUser) < 1e-4)
    if candidateGradient {
        let fdY = centralDifference(at: y.doubles) { dot(naive($0, user.doubles), dout.doubles) }
        #expect(relativeError(zip(dy, dy0).map { Double($0) - Double($1) }, fdY) < 1e-4)
    } else {
        expectIdentical(dy, dy0, "dqkvY == nil must leave the candidate gradient alone")
    }
}

struct TargetCase: CustomTestStringConvertible, Sendable {
    var lengths: [Int32], userIndex: [Int32], L: Int, d: Int
    var testDescription: String { "lengths \(lengths) users \(userIndex) L\(L) d\(d)" }
}

let targetCases = [
    // runs of one user, users with no valid token, a user met twice apart, one never met
    TargetCase(lengths: [3, 0, 5, 1], userIndex: [0, 0, 2, 1, 1, 0, 2, 2, 2, 3], L: 5, d: 4),
    TargetCase(lengths: [1], userIndex: [0], L: 1, d: 3),
    TargetCase(lengths: [7, 2], userIndex: [Int32](repeating: 0, count: 9) + [1, 1], L: 7, d: 10),
]

@Test(arguments: targetCases) func targetAttentionMatchesNaive(_ t: TargetCase) {
    let U = t.lengths.count, B = t.userIndex.count, scale = 1 / Float(t.d).squareRoot()
    let q = randomFloats(B * t.d, seed: 15, in: -2...2), x = randomFloats(U * t.L * t.d, seed: 16, in: -2...2)
    var scores = [Float](repeating: .nan, count: B * t.L)
    let out = mutating([Float](repeating: .nan, count: B * t.d)) {
        targetAttentionForward($0, query: q, users: x, lengths: t.lengths, userIndex: t.userIndex, candidates: B, length: t.L, dim: t.d,
                               scale: scale, scores: &scores)
    }
    let naive = naiveTargetAttention(query: q.doubles, users: x.doubles, lengths: t.lengths, userIndex: t.userIndex, length: t.L,
                                     dim: t.d, scale: Double(scale))
    #expect(relativeError(out, naive) < 1e-5)
}

@Test func targetAttentionSplitOverThreads() {
    // large enough that parallelFor splits the candidates (grain 131072 / (L * d)), a run crossing the split
    let L = 32, d = 64, U = 3, B = 300
    var rng = TestRandom(seed: 17)
    let lengths: [Int32] = [Int32(L), 0, 9]
    let userIndex = (0..<B).map { b in Int32(b < 200 ? 0 : b < 220 ? 1 : rng.below(U)) }
    let q = randomFloats(B * d, seed: 18), x = randomFloats(U * L * d, seed: 19)
    func run() -> [Float] {
        var scores = [Float](repeating: .nan, count: B * L)
        return mutating([Float](repeating: .nan, count: B * d)) {
            targetAttentionForward($0, query: q, users: x, lengths: lengths, userIndex: userIndex, candidates: B, length: L, dim: d,
                                   scale: 0.125, scores: &scores)
        }
    }
    let naive = naiveTargetAttention(query: q.doubles, users: x.doubles, lengths: lengths, userIndex: userIndex, length: L, dim: d,
                                     scale: 0.125)
    #expect(relativeError(withThreads(1) { run() }, naive) < 1e-5)
    #expect(relativeError(withThreads(2) { run() }, naive) < 1e-5)
}

/// Runs `run` (an attention's forward output and backward dqkv over `qkv`) on 1 and on 2
/// threads, expects the two bitwise identical and the forward equal to the naive attention;
/// returns the 1-thread result.
@discardableResult
func expectSameOnOneAndTwoThreads(
    _ label: String, qkv: [Float], lengths: [Int32], L: Int, d: Int, heads: Int, _ run: () -> ([Float], [Float])
) -> ([Float], [Float]) {
    let one = withThreads(1) { run() }, two = withThreads(2) { run() }
    expectIdentical(one.0, two.0, "\(label) forward, 1 vs 2 threads")
    expectIdentical(one.1, two.1, "\(label) backward, 1 vs 2 threads")
    let naive = naiveAttention(qkv.doubles, lengths: lengths, sequences: lengths.count, length: L, dim: d, heads: heads)
    #expect(relativeError(one.0, naive) < 1e-5, "\(label) forward vs naive")
    return one
}

@Test func attentionDeterministicAcrossThreadCounts() {
    // large enough that parallelFor really splits (grain 16384 / (L * L * dh))
    let L = 16, d = 64, heads = 2, U = 12
    var rng = TestRandom(seed: 9)
    let lengths = (0..<U).map { _ in Int32(rng.below(L + 1)) }
    let t = AttentionCase(lengths: lengths, L: L, d: d, heads: heads)
    let qkv = randomFloats(U * L * 3 * d, seed: 10)
    let dout = randomFloats(U * L * d, seed: 11)
    func run() -> ([Float], [Float]) {
        let (out, probs) = selfAttentionForward(qkv, t)
        var dqkv = [Float](repeating: 0, count: qkv.count)
        attentionBackward(dqkv: &dqkv, dout: dout, probs: probs, qkv: qkv, lengths: lengths, sequences: U, length: L, dim: d, heads: heads)
        return (out, dqkv)
    }
    expectSameOnOneAndTwoThreads("attention", qkv: qkv, lengths: lengths, L: L, d: d, heads: heads, run)

    // append attention, identity user map (the parallel backward): B >= 2 * 64
    let B = 160, Lu = 8
    let ulen = (0..<B).map { _ in Int32(rng.below(Lu + 1)) }
    let y = randomFloats(B * 3 * d, seed: 12), user = randomFloats(B * Lu * 3 * d, seed: 13), g = randomFloats(B * d, seed: 14)
    func runAppend() -> ([Float], [Float], [Float]) {
        var out = [Float](repeating: 0, count: B * d), probs = [Float](repeating: 0, count: B * heads * (Lu + 1))
        appendAttentionForward(&out, probs: &probs, qkvY: y, qkvUser: user, lengths: ulen, userIndex: nil, candidates: B, length: Lu, dim: d, heads: heads)
        var dy = [Float](repeating: 0, count: y.count), du = [Float](repeating: 0, count: user.count)
        appendAttentionBackward(dqkvY: &dy, dqkvUser: &du, dout: g, probs: probs, qkvY: y, qkvUser: user, lengths: ulen, userIndex: nil,
                                candidates: B, length: Lu, dim: d, heads: heads)
        return (out, dy, du)
    }
    let a1 = withThreads(1) { runAppend() }, a2 = withThreads(2) { runAppend() }
    expectIdentical(a1.0, a2.0, "append attention forward, 1 vs 2 threads")
    expectIdentical(a1.1, a2.1, "append attention dqkvY, 1 vs 2 threads")
    expectIdentical(a1.2, a2.2, "append attention dqkvUser, 1 vs 2 threads")
}

/// Blocked self-attention (lse only) against the naive attention, with blocks of 1-3 query
/// rows so every sequence spans several blocks; padded and packed layouts; backward
/// against central differences; 1 and 2 threads bitwise identical.
@Test(arguments: attentionCases, [1, 2, 3]) func blockedAttentionMatchesNaive(_ t: AttentionCase, _ block: Int) {
    let U = t.lengths.count, ld = 3 * t.d
    let qkv = randomFloats(U * t.L * ld, seed: 21, in: -2...2)
    let naive = { (x: [Double]) in naiveAttention(x, lengths: t.lengths, sequences: U, length: t.L, dim: t.d, heads: t.heads) }
    var out = [Float](repeating: .nan, count: U * t.L * t.d), lse = [Float](repeating: .nan, count: U * t.L * t.heads)
    blockedAttentionForward(&out, lse: &lse, qkv: qkv, lengths: t.lengths, sequences: U, length: t.L, dim: t.d, heads: t.heads, block: block)
    #expect(relativeError(out, naive(qkv.doubles)) < 1e-5)
    // without lse (inference): the same output bits
    var inferenceOut = [Float](repeating: .nan, count: out.count)
    blockedAttentionForward(&inferenceOut, lse: nil, qkv: qkv, lengths: t.lengths, sequences: U, length: t.L, dim: t.d, heads: t.heads, block: block)
    expectIdentical(inferenceOut, out, "blocked forward without lse")
    let dout = randomFloats(U * t.L * t.d, seed: 22), dqkv0 = randomFloats(qkv.count, seed: 23)
    var dqkv = dqkv0
    blockedAttentionBackward(dqkv: &dqkv, dout: dout, out: out, lse: lse, qkv: qkv, lengths: t.lengths, sequences: U, length: t.L, dim: t.d,
                             heads: t.heads, block: block)
    let fd = centralDifference(at: qkv.doubles) { dot(naive($0), dout.doubles) }
    #expect(relativeError(zip(dqkv, dqkv0).map { Double($0) - Double($1) }, fd) < 1e-4)

    // packed: the valid rows only, in order; same values at those rows
    var offsets = [Int32](), valid = [Int]()
    for u in 0..<U { offsets.append(Int32(valid.count)); for i in 0..<Int(t.lengths[u]) { valid.append(u * t.L + i) } }
    let packed = valid.flatMap { qkv[($0 * ld)..<(($0 + 1) * ld)] }
    var pout = [Float](repeating: .nan, count: valid.count * t.d), plse = [Float](repeating: .nan, count: valid.count * t.heads)
    blockedAttentionForward(&pout, lse: &plse, qkv: packed, lengths: t.lengths, sequences: U, length: t.L, dim: t.d, heads: t.heads,
                            offsets: offsets, block: block)
    expectIdentical(pout, valid.flatMap { out[($0 * t.d)..<(($0 + 1) * t.d)] }, "packed vs padded forward")
    let pdout = valid.flatMap { dout[($0 * t.d)..<(($0 + 1) * t.d)] }
    let pd0 = valid.flatMap { dqkv0[($0 * ld)..<(($0 + 1) * ld)] }
    var pd = pd0
    blockedAttentionBackward(dqkv: &pd, dout: pdout, out: pout, lse: plse, qkv: packed, lengths: t.lengths, sequences: U, length: t.L, dim: t.d,
                             heads: t.heads, offsets: offsets, block: block)
    expectIdentical(pd, valid.flatMap { dqkv[($0 * ld)..<(($0 + 1) * ld)] }, "packed vs padded backward")
}

@Test func blockedAttentionLongSequencesAcrossThreads() {
    // a long sequence (several 64-row blocks, split over the threads by block), short ones, an empty one
    let L = 200, d = 16, heads = 2
    let lengths: [Int32] = [200, 3, 0, 131, 64, 65]
    let U = lengths.count
    let qkv = randomFloats(U * L * 3 * d, seed: 24), dout = randomFloats(U * L * d, seed: 25)
    func run() -> ([Float], [Float]) {
        var out = [Float](repeating: .nan, count: U * L * d), lse = [Float](repeating: .nan, count: U * L * heads)
        blockedAttentionForward(&out, lse: &lse, qkv: qkv, lengths: lengths, sequences: U, length: L, dim: d, heads: heads)
        var dqkv = [Float](repeating: 0, count: qkv.count)
        blockedAttentionBackward(dqkv: &dqkv, dout: dout, out: out, lse: lse, qkv: qkv, lengths: lengths, sequences: U, length: L, dim: d, heads: heads)
        return (out, dqkv)
    }
    let one = expectSameOnOneAndTwoThreads("blocked", qkv: qkv, lengths: lengths, L: L, d: d, heads: heads, run)
    // the backward equals the one from saved probabilities
    let (_, probs) = selfAttentionForward(qkv, AttentionCase(lengths: lengths, L: L, d: d, heads: heads))
    var dqkv = [Float](repeating: 0, count: qkv.count)
    attentionBackward(dqkv: &dqkv, dout: dout, probs: probs, qkv: qkv, lengths: lengths, sequences: U, length: L, dim: d, heads: heads)
    #expect(relativeError(one.1, dqkv.doubles) < 1e-5)
}

@Test func blockedAttentionAtStridesOfWholePages() {
    // n = 1024 (rows 4 KiB apart, padded by scratchStride) and 1000, against the kernels that save probabilities
    let L = 1024, d = 8, heads = 2
    let lengths: [Int32] = [1024, 1000]
    let U = lengths.count
    let qkv = randomFloats(U * L * 3 * d, seed: 26, in: -1...1), dout = randomFloats(U * L * d, seed: 27)
    var out = [Float](repeating: .nan, count: U * L * d), lse = [Float](repeating: .nan, count: U * L * heads)
    blockedAttentionForward(&out, lse: &lse, qkv: qkv, lengths: lengths, sequences: U, length: L, dim: d, heads: heads)
    var dqkv = [Float](repeating: 0, count: qkv.count)
    blockedAttentionBackward(dqkv: &dqkv, dout: dout, out: out, lse: lse, qkv: qkv, lengths: lengths, sequences: U, length: L, dim: d, heads: heads)
    let (saved, probs) = selfAttentionForward(qkv, AttentionCase(lengths: lengths, L: L, d: d, heads: heads))
    var dsaved = [Float](repeating: 0, count: qkv.count)
    attentionBackward(dqkv: &dsaved, dout: dout, probs: probs, qkv: qkv, lengths: lengths, sequences: U, length: L, dim: d, heads: heads)
    #expect(relativeError(out, saved.doubles) < 1e-5)
    #expect(relativeError(dqkv, dsaved.doubles) < 1e-5)
}

/// The sparse path of both backward kernels: dO zero on most rows (the last layer's case,
/// where only the readout's max-pool argmaxes and recent positions get a gradient), on some
/// sequences all rows or no row. The gradient is linear in dO, so the dense path gives the
/// same one as g(dO + E) - g(E) with E nonzero on every row; and central differences on a
/// small case. 1 vs 2 threads bitwise; rows past a length, and a sequence without a nonzero
/// row, untouched.
@Test(arguments: [0, 1, 2, 3, 16]) func attentionBackwardSkipsZeroGradientRows(block: Int) {
    // block 0: the kernel that saves probabilities; else the blocked kernel with that block
    let L = block == 0 ? 70 : 300, d = 8, heads = 2
    let lengths: [Int32] = block == 0 ? [70, 37, 0, 5, 64, 50] : [300, 37, 0, 5, 200, 129]
    let U = lengths.count
    let qkv = randomFloats(U * L * 3 * d, seed: 28, in: -1...1)
    var dout = randomFloats(U * L * d, seed: 29)
    for u in 0..<U where u != 3 {   // sequence 3 keeps every row; sequence 5 keeps none
        for i in 0..<L where u == 5 || !(i < 4 || i % 37 == 5 || (u == 1 && i == 36)) {
            for c in 0..<d { dout[(u * L + i) * d + c] = 0 }
        }
    }
    dout[(4 * L + 17) * d + 3] = -0.0   // a row of (signed) zeros is a zero row
    let (_, probs) = selfAttentionForward(qkv, AttentionCase(lengths: lengths, L: L, d: d, heads: heads))
    var out = [Float](repeating: .nan, count: U * L * d), lse = [Float](repeating: .nan, count: U * L * heads)
    if block > 0 {
        blockedAttentionForward(&out, lse: &lse, qkv: qkv, lengths: lengths, sequences: U, length: L, dim: d, heads: heads, block: block)
    }
    let dqkv0 = randomFloats(qkv.count, seed: 30)
    func backward(_ dO: [Float]) -> [Float] {
        var dqkv = dqkv0
        if block == 0 {
            attentionBackward(dqkv: &dqkv, dout: dO, probs: probs, qkv: qkv, lengths: lengths, sequences: U, length: L, dim: d, heads: heads)
        } else {
            blockedAttentionBackward(dqkv: &dqkv, dout: dO, out: out, lse: lse, qkv: qkv, lengths: lengths, sequences: U, length: L, dim: d,
                                     heads: heads, block: block)
        }
        return dqkv
    }
    let one = withThreads(1) { backward(dout) }, two = withThreads(2) { backward(dout) }
    expectIdentical(one, two, "sparse attention backward, 1 vs 2 threads")
    if block == 0 {  // overwrite (rows skipped, sequences with no nonzero row, padding): as added to zeros
        var zeros = [Float](repeating: 0, count: qkv.count), fresh = [Float](repeating: .nan, count: qkv.count)
        attentionBackward(dqkv: &zeros, dout: dout, probs: probs, qkv: qkv, lengths: lengths, sequences: U, length: L, dim: d, heads: heads)
        attentionBackward(dqkv: &fresh, dout: dout, probs: probs, qkv: qkv, lengths: lengths, sequences: U, length: L, dim: d, heads: heads,
                          overwrite: true)
        #expect(fresh == zeros)
    }
    let e = randomFloats(dout.count, seed: 33).map { $0 == 0 ? 1 : $0 }
    let withE = backward(zip(dout, e).map(+)), onlyE = backward(e)
    let dense = zip(withE, onlyE).map { Double($0) - Double($1) }
    let sparse = zip(one, dqkv0).map { Double($0) - Double($1) }
    #expect(relativeError(sparse, dense) < 1e-4)
    for u in 0..<U {
        let first = u == 5 ? 0 : Int(lengths[u])
        for j in ((u * L + first) * 3 * d)..<((u + 1) * L * 3 * d) where one[j] != dqkv0[j] { Issue.record("dqkv[\(j)] changed"); break }
    }

    // small case against central differences of the naive attention
    let t = AttentionCase(lengths: [6, 3], L: 6, d: 4, heads: 2)
    let sq = randomFloats(2 * 6 * 12, seed: 31, in: -2...2)
    var sd = randomFloats(2 * 6 * 4, seed: 32)
    for i in [1, 2, 4, 7, 8, 9, 10, 11] { for c in 0..<4 { sd[i * 4 + c] = 0 } }
    var sg = [Float](repeating: 0, count: sq.count)
    if block == 0 {
        let (_, sp) = selfAttentionForward(sq, t)
        attentionBackward(dqkv: &sg, dout: sd, probs: sp, qkv: sq, lengths: t.lengths, sequences: 2, length: 6, dim: 4, heads: 2)
    } else {
        var so = [Float](repeating: .nan, count: 2 * 6 * 4), sl = [Float](repeating: .nan, count: 2 * 6 * 2)
        blockedAttentionForward(&so, lse: &sl, qkv: sq, lengths: t.lengths, sequences: 2, length: 6, dim: 4, heads: 2, block: block)
        blockedAttentionBackward(dqkv: &sg, dout: sd, out: so, lse: sl, qkv: sq, lengths: t.lengths, sequences: 2, length: 6, dim: 4, heads: 2, block: block)
    }
    let fd = centralDifference(at: sq.doubles) { dot(naiveAttention($0, lengths: t.lengths, sequences: 2, length: 6, dim: 4, heads: 2), sd.doubles) }
    #expect(relativeError(sg, fd) < 1e-4)
}

@Test func scratchStrideIsAnOddNumberOfLines() {
    for n in [0, 1, 15, 16, 17, 64, 1000, 1024, 1025, 4096] {
        let s = scratchStride(n)
        #expect(s >= n && s % 16 == 0 && (s / 16) % 2 == 1 && s <= n + 32, "scratchStride(\(n)) = \(s)")
    }
}

@Test(arguments: [1, 2]) func appendAttentionWithoutSavedProbabilitiesIsTheSame(threads: Int) {
    // serving: the probabilities are not kept and a user's candidates run appendBlockRows(L) at a time
    let L = 600, d = 8, heads = 2, ld = 3 * d
    let lengths: [Int32] = [600, 7, 0]
    let userIndex = [Int32](repeating: 0, count: 130) + [1, 1, 1, 2, 2] + [Int32](repeating: 0, count: 70)
    #expect(appendBlockRows(length: L) < 130)
    let B = userIndex.count, U = lengths.count
    let y = randomFloats(B * ld, seed: 28, in: -2...2), user = randomFloats(U * L * ld, seed: 29, in: -2...2)
    withThreads(threads) {
        for ui in [userIndex, nil] {
            let b = ui?.count ?? U
            var saved = [Float](repeating: .nan, count: b * d), probs = [Float](repeating: .nan, count: b * heads * (L + 1))
            var served = [Float](repeating: .nan, count: b * d)
            if let ui {
                appendAttentionForward(&saved, probs: &probs, qkvY: y, qkvUser: user, lengths: lengths, userIndex: ui,
                                       candidates: b, length: L, dim: d, heads: heads)
                appendAttentionForward(&served, probs: nil, qkvY: y, qkvUser: user, lengths: lengths, userIndex: ui,
                                       candidates: b, length: L, dim: d, heads: heads)
            } else {
                appendAttentionForward(&saved, probs: &probs, qkvY: y, qkvUser: user, lengths: lengths, userIndex: nil,
                                       candidates: b, length: L, dim: d, heads: heads)
                appendAttentionForward(&served, probs: nil, qkvY: y, qkvUser: user, lengths: lengths, userIndex: nil,
                                       candidates: b, length: L, dim: d, heads: heads)
            }
            expectIdentical(served, saved, "append attention with and without saved probabilities")
        }
    }
}
