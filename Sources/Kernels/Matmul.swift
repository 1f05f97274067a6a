import CBLAS

/// Matrix products, row-major: through OpenBLAS `cblas_sgemm`, or `smallProduct` for a short
/// inner dimension and narrow output (`runsAsSmallProduct`, via `gemm`).
///
/// `c[m, n] = alpha * op(a) op(b) + beta * c`, where op(a) is [m, k] (a stored
/// [m, k], or [k, m] when `transA`) and op(b) is [k, n] (b stored [k, n], or
/// [n, k] when `transB`). Leading dimensions are the stored row lengths.
@inlinable
public func matmul(
    _ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
    alpha: Float = 1, beta: Float = 0
) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        if beta == 0 { c.update(repeating: 0, count: m * n) } else if beta != 1 { scale(c, by: beta, count: m * n) }
        return
    }
    // Large products: the rows of c split over Braid's threads, one single-threaded
    // sgemm each (OpenBLAS's own threads would fight Braid's loops on 2 cores).
    let chunks = productChunks(m: m, n: n, k: k, throughBLAS: !runsAsSmallProduct(n: n, k: k))
    let lda = transA ? m : k
    parallelFor(m, grain: (m + chunks - 1) / chunks) { _, rows in
        gemm(c + rows.lowerBound * n, ldc: n, a + (transA ? rows.lowerBound : rows.lowerBound * lda), lda: lda, b, ldb: transB ? k : n,
             m: rows.count, n: n, k: k, transA: transA, transB: transB, alpha: alpha, beta: beta)
    }
}

/// The chunks of c's m rows a large product (m n k >= 2^20) is split into over Braid's threads:
/// `Threads.count`, except for a product through OpenBLAS on a thread where
/// `ProductSplitting.isEnabled` is false (a training shard), which runs as one call. OpenBLAS's
/// value for an entry depends on the call's m (~3% of the entries of 512 x 256 x 246 differ in
/// the last bits between one call and two of 256 rows), so a shard split by the thread count
/// gave other gradients with 2 threads than with 1 (2 threads vs 2 MPI ranks of 1 thread:
/// docs/DECISIONS.md). `smallProduct`'s entries do not depend on m, so its products split freely.
@inlinable func productChunks(m: Int, n: Int, k: Int, throughBLAS: Bool) -> Int {
    guard m * n * k >= 1 << 20 else { return 1 }
    if throughBLAS && !ProductSplitting.isEnabled { return 1 }
    return Swift.min(Threads.count, m)
}

/// Whether `gemm` (and so `matmul` and the linear layers) runs a product with inner dimension k
/// and n output columns through `smallProduct` rather than OpenBLAS: k <= 96 and 8 <= n <= 128,
/// the token-wise linears of the sequence Transformer (d_model 32, d_ff 64: forward x W^T and
/// backward dY W over ~12k tokens). There OpenBLAS copies (packs) all of `a` for only k
/// multiply-adds per element; `smallProduct` reads `a` in place and measured 1.2-1.6x its speed
/// at m 12288 (`braid bench kernels`, linear rows). Long inner dimensions (weight gradients,
/// k = rows) and wide outputs stay with OpenBLAS.
@inlinable public func runsAsSmallProduct(n: Int, k: Int) -> Bool { k <= 96 && n >= 8 && n <= 128 }

/// The forward of a Linear layer: y [m, n] = x [m, k] W^T + bias (W [n, k], bias [n] or
/// nil), then max(y, 0) when `relu` (naive twin: `naiveGemm` plus the bias and ReLU).
public func linearForward(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    m: Int, n: Int, k: Int, relu: Bool
) {
    linearRows(y, x, weight: w, bias: bias, m: m, n: n, k: k) { block, rows in
        if relu { reluForward(block, block, count: rows.count * n) }
    }
}

/// The DCNv2 cross update y = x0 * (h W^T + bias) + x (x0, x, y [m, n]; h [m, k]; W [n, k];
/// bias [n]): w = h W^T + bias goes to `w` when given (kept for a backward pass), else it
/// is formed in y and updated in place (naive twin: `naiveGemm`, then x0 * w + x).
public func crossForward(
    _ y: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>?, x0: UnsafePointer<Float>, x: UnsafePointer<Float>,
    h: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, m: Int, n: Int, k: Int
) {
    linearRows(w ?? y, h, weight: weight, bias: bias, m: m, n: n, k: k) { block, rows in
        let o = rows.lowerBound * n
        multiplyAdd(y + o, x0 + o, block, x + o, count: rows.count * n)
    }
}

/// y [m, n] = x [m, k] W^T + bias, rows split over Braid's threads as in `matmul`; each
/// thread's block of rows is handed to `epilogue(block, rows)` while in cache. At the shapes of
/// `runsAsSmallProduct` W is transposed once and `smallProduct` adds the bias as it writes;
/// otherwise the block is filled with the bias and sgemm multiplies into it (beta = 1: sgemm's
/// own beta = 0 pass would be one more sweep).
func linearRows(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    m: Int, n: Int, k: Int, epilogue: (UnsafeMutablePointer<Float>, Range<Int>) -> Void
) {
    if m == 0 || n == 0 { return }
    let small = k > 0 && runsAsSmallProduct(n: n, k: k)
    let chunks = productChunks(m: m, n: n, k: k, throughBLAS: !small)
    if small {
        let wT = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
        defer { wT.deallocate() }
        transposeInto(wT, w, ldb: k, n: n, k: k)
        parallelFor(m, grain: (m + chunks - 1) / chunks) { _, rows in
            let out = y + rows.lowerBound * n
            smallProduct(out, ldc: n, x + rows.lowerBound * k, lda: k, wT, ldb: n, m: rows.count, n: n, k: k, bias: bias)
            epilogue(out, rows)
        }
        return
    }
    parallelFor(m, grain: (m + chunks - 1) / chunks) { _, rows in
        let out = y + rows.lowerBound * n
        if let bias { fillRows(out, with: bias, rows: rows.count, n: n) }
        gemm(out, ldc: n, x + rows.lowerBound * k, lda: k, w, ldb: k, m: rows.count, n: n, k: k, transB: true, beta: bias == nil ? 0 : 1)
        epilogue(out, rows)
    }
}

/// `batch` independent products with fixed strides between operands:
/// for i in 0..<batch: c_i = alpha * op(a_i) op(b_i) + beta * c_i, where
/// a_i = a + i * strideA (likewise b, c). Used by attention ([U*H] small products).
/// Small products are spread over the cores with one single-threaded sgemm each.
@inlinable
public func batchedMatmul(
    _ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    batch: Int, m: Int, n: Int, k: Int, strideA: Int, strideB: Int, strideC: Int,
    transA: Bool = false, transB: Bool = false, alpha: Float = 1, beta: Float = 0
) {
    let flops = 2 * m * n * k
    parallelFor(batch, grain: Swift.max(1, 200_000 / Swift.max(flops, 1))) { _, range in
        for i in range {
            let ci = c + i * strideC, ai = a + i * strideA, bi = b + i * strideB
            if m * n * k < 4096 {
                naiveMatmulInto(ci, ai, bi, m: m, n: n, k: k, transA: transA, transB: transB, alpha: alpha, beta: beta)
            } else {
                cblas_sgemm(
                    CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    ai, Int32(transA ? m : k), bi, Int32(transB ? k : n), beta, ci, Int32(n))
            }
        }
    }
}

/// A small product by loops (no BLAS call overhead); also the naive twin of `matmul`.
@inlinable
public func naiveMatmulInto(
    _ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    m: Int, n: Int, k: Int, transA: Bool, transB: Bool, alpha: Float, beta: Float
) {
    for i in 0..<m {
        let ci = c + i * n
        if beta == 0 { ci.update(repeating: 0, count: n) } else if beta != 1 { for j in 0..<n { ci[j] *= beta } }
        for p in 0..<k {
            let av = alpha * (transA ? a[p * m + i] : a[i * k + p])
            if transB {
                for j in 0..<n { ci[j] += av * b[j * k + p] }
            } else {
                let bp = b + p * n
                for j in 0..<n { ci[j] += av * bp[j] }
            }
        }
    }
}

/// The general strided product (leading dimensions given): c = alpha op(a) op(b) + beta c.
@inlinable
public func gemm(
    _ c: UnsafeMutablePointer<Float>, ldc: Int, _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
    m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false, alpha: Float = 1, beta: Float = 0
) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        for i in 0..<m { let ci = c + i * ldc; for j in 0..<n { ci[j] = beta == 0 ? 0 : ci[j] * beta } }
        return
    }
    if runsAsSmallProduct(n: n, k: k) {
        if transB {
            // b [n, k] transposed into a [k, n] scratch (at most 96 x 128 floats)
            let bT = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
            defer { bT.deallocate() }
            transposeInto(bT, b, ldb: ldb, n: n, k: k)
            smallProduct(c, ldc: ldc, a, lda: lda, transA: transA, bT, ldb: n, m: m, n: n, k: k, alpha: alpha, beta: beta)
        } else {
            smallProduct(c, ldc: ldc, a, lda: lda, transA: transA, b, ldb: ldb, m: m, n: n, k: k, alpha: alpha, beta: beta)
        }
        return
    }
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Every row of out [rows, n] = row [n]: SIMD8 stores for the short rows of token-wise
/// layers (a `memmove` call per row of 32-96 floats cost more than the copy).
@inlinable public func fillRows(_ out: UnsafeMutablePointer<Float>, with row: UnsafePointer<Float>, rows: Int, n: Int) {
    if n % 8 != 0 || n > 512 {
        for r in 0..<rows { (out + r * n).update(from: row, count: n) }
        return
    }
    for r in 0..<rows {
        let o = out + r * n
        var j = 0
        while j < n { store8(load8(row + j), o + j); j += 8 }
    }
}
