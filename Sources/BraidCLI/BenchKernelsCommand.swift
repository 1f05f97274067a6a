import ArgumentParser
import CBLAS
import Foundation
import Kernels
import TextTable

/// `braid bench kernels`: sgemm GFLOP/s through Braid's `matmul` against calling
/// `cblas_sgemm` directly, and memory-bound kernels (add, gelu, layer norm,
/// softmax) in GB/s against memcpy of the same bytes, and attention's per-head products
/// (`smallProduct` at the shapes blocked attention runs) against `cblas_sgemm` of the same
/// shape, on one thread, and the token-wise linears' products (`gemm`, which runs them through
/// `smallProduct`) against `cblas_sgemm`. Every figure is the median
/// of `--repeats` timed runs after `--warmup` untimed ones; the two sides of each
/// ratio are timed alternately so drift in machine load hits both alike.
struct BenchKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "sgemm through Braid vs OpenBLAS directly; memory-bound kernels vs memcpy.")

    @OptionGroup var options: BenchRepeatOptions<BenchKernelsCommand>

    @Option(help: "Square sgemm sizes n (n x n times n x n).")
    var sizes = "128,256,512,1024"

    @Option(help: "Floats per buffer in the memory-bound benchmarks (rows of 256 for layer norm and softmax).")
    var elements = 1 << 23

    @Option(help: "Untimed warm-up runs per figure.")
    var warmup = 3

    @Option(help: ArgumentHelp("Sequence lengths L of the attention-product rows (head width 16, d 32, the block of "
                               + "blocked attention at each L).", valueName: "list"))
    var attentionLengths = "64,1024"

    @Option(help: "Rows m of the linear-product rows (tokens of a batch shard: ~12k for 256 rows of L 64).")
    var linearRows = 12_288

    func validate() throws {
        try requireAtLeast(("--warmup", warmup, 0), ("--linear-rows", linearRows, 1))
        guard elements >= 256, elements % 256 == 0 else { throw ValidationError("--elements must be a positive multiple of 256, got \(elements)") }
        guard parsedSizes.count > 0, parsedSizes.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--sizes must be comma-separated positive integers, got '\(sizes)'")
        }
        guard let lengths = parsedAttentionLengths, lengths.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--attention-lengths must be comma-separated positive integers, got '\(attentionLengths)'")
        }
    }

    var parsedSizes: [Int] { sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
    var parsedAttentionLengths: [Int]? {
        let parts = attentionLengths.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.contains(nil) ? nil : parts.map { $0! }
    }

    struct GemmRow: Codable {
        var n: Int, threads: Int, braidGFLOPS: Double, openblasGFLOPS: Double, ratio: Double
    }
    struct MemoryRow: Codable {
        var kernel: String, threads: Int, bytes: Int, kernelGBps: Double, memcpyGBps: Double, ratio: Double
    }
    struct AttentionRow: Codable {
        var product: String, length: Int, m: Int, n: Int, k: Int, braidGFLOPS: Double, openblasGFLOPS: Double, ratio: Double
    }
    struct LinearRow: Codable {
        var product: String, m: Int, n: Int, k: Int, braidGFLOPS: Double, openblasGFLOPS: Double, ratio: Double
    }
    struct Report: Codable {
        var threadsOption: Int, repeats: Int, warmup: Int, openblasCoretype: String?
        var sgemm: [GemmRow], memory: [MemoryRow], attention: [AttentionRow], linear: [LinearRow]
    }

    func run() throws {
        let threadCounts = options.threads == 1 ? [1] : [1, options.threads]
        var gemmRows: [GemmRow] = [], memoryRows: [MemoryRow] = []
        for t in threadCounts {
            Threads.set(t)
            for n in parsedSizes { gemmRows.append(benchGemm(n: n, threads: t)) }
            memoryRows += benchMemory(threads: t)
        }
        Threads.set(1)
        let attentionRows = parsedAttentionLengths!.flatMap { benchAttention(length: $0) }
        let linear = benchLinear(m: linearRows)
        let report = Report(threadsOption: options.threads, repeats: options.repeats, warmup: warmup,
                            openblasCoretype: openBLASCoretype,
                            sgemm: gemmRows, memory: memoryRows, attention: attentionRows, linear: linear)
        if options.json {
            try printJSON(report)
        } else {
            printTable(report)
        }
    }

    /// Median seconds per call of `a` and `b`, timed alternately. Each timed sample
    /// runs the body enough times to last >= 2 ms.
    func timeAlternating(_ a: () -> Void, _ b: () -> Void) -> (Double, Double) {
        for _ in 0..<warmup { a(); b() }
        // calibrate the inner count on `a`
        var inner = 1
        while true {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<inner { a() }
            let dt = DispatchTime.now().uptimeNanoseconds - t0
            if dt >= 2_000_000 || inner >= 1 << 20 { break }
            inner *= 2
        }
        var ta: [Double] = [], tb: [Double] = []
        for _ in 0..<options.repeats {
            var t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<inner { a() }
            ta.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(inner))
            t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<inner { b() }
            tb.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(inner))
        }
        return (median(ta), median(tb))
    }

    func benchGemm(n: Int, threads: Int) -> GemmRow {
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n), b = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        for i in 0..<(n * n) { a[i] = Float(i % 13) * 0.01 - 0.06; b[i] = Float(i % 7) * 0.02 - 0.07; c[i] = 0 }
        let (braid, direct) = timeAlternating({
            matmul(c, a, b, m: n, n: n, k: n)
        }, {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, c, Int32(n))
        })
        let flops = 2 * Double(n) * Double(n) * Double(n)
        let gb = flops / braid / 1e9, go = flops / direct / 1e9
        return GemmRow(n: n, threads: threads, braidGFLOPS: gb, openblasGFLOPS: go, ratio: gb / go)
    }

    /// One query block's products of blocked attention at length L (head width 16 of d 32, qkv
    /// rows 96 floats apart, the block `attentionBlock(length:)`, scratch rows `scratchStride`),
    /// each through `smallProduct` and through `cblas_sgemm` with the same operands, alternately:
    /// scores S = Q_b K^T [r, L] (k 16), P V [r, 16] (k L) and the backward's P^T dO [L, 16]
    /// accumulated (k r).
    func benchAttention(length L: Int) -> [AttentionRow] {
        let dh = 16, d = 32, ld = 3 * d, r = Swift.min(attentionBlock(length: L), L), lds = scratchStride(L)
        func buffer(_ n: Int, _ seed: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
            for i in 0..<n { p[i] = Float((i * 7 + seed) % 23) * 0.01 - 0.11 }
            return p
        }
        let qkv = buffer(L * ld, 1), kT = buffer(dh * lds, 2), s = buffer(r * lds, 3), dO = buffer(L * d, 4)
        let out = buffer(L * ld, 5)
        defer { for p in [qkv, kT, s, dO, out] { p.deallocate() } }
        var rows: [AttentionRow] = []
        func measure(_ name: String, m: Int, n: Int, k: Int, _ braid: () -> Void, _ blas: () -> Void) {
            let (tb, to) = timeAlternating(braid, blas)
            let flops = 2 * Double(m) * Double(n) * Double(k)
            rows.append(AttentionRow(product: name, length: L, m: m, n: n, k: k, braidGFLOPS: flops / tb / 1e9,
                                     openblasGFLOPS: flops / to / 1e9, ratio: to / tb))
        }
        measure("S = Q K^T", m: r, n: L, k: dh, {
            smallProduct(s, ldc: lds, qkv, lda: ld, kT, ldb: lds, m: r, n: L, k: dh, alpha: 0.25)
        }, {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(r), Int32(L), Int32(dh), 0.25, qkv, Int32(ld), kT, Int32(lds), 0, s, Int32(lds))
        })
        measure("P V", m: r, n: dh, k: L, {
            smallProduct(out, ldc: d, s, lda: lds, qkv + 2 * d, ldb: ld, m: r, n: dh, k: L)
        }, {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(r), Int32(dh), Int32(L), 1, s, Int32(lds), qkv + 2 * d, Int32(ld), 0, out, Int32(d))
        })
        measure("dV += P^T dO", m: L, n: dh, k: r, {
            smallProduct(out + 2 * d, ldc: ld, s, lda: lds, transA: true, dO, ldb: d, m: L, n: dh, k: r, beta: 1)
        }, {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(L), Int32(dh), Int32(r), 1, s, Int32(lds), dO, Int32(d), 1, out + 2 * d, Int32(ld))
        })
        return rows
    }

    /// The Transformer's token-wise linears at m rows (d_model 32, d_ff 64: QKV 32 -> 96, output
    /// 32 -> 32, FFN 32 -> 64 and 64 -> 32): the forward y = x W^T (+= onto a bias fill, as
    /// `linearRows`) and the backward's dX += dY W, through `gemm` (`smallProduct` at these
    /// shapes, `runsAsSmallProduct`) and through `cblas_sgemm`, alternately.
    func benchLinear(m: Int) -> [LinearRow] {
        var rows: [LinearRow] = []
        for (k, n) in [(32, 96), (32, 32), (32, 64), (64, 32)] {
            let x = UnsafeMutablePointer<Float>.allocate(capacity: m * Swift.max(k, n))
            let w = UnsafeMutablePointer<Float>.allocate(capacity: n * k), y = UnsafeMutablePointer<Float>.allocate(capacity: m * Swift.max(k, n))
            defer { x.deallocate(); w.deallocate(); y.deallocate() }
            for i in 0..<(m * Swift.max(k, n)) { x[i] = Float((i * 7) % 23) * 0.01 - 0.11; y[i] = 0 }
            for i in 0..<(n * k) { w[i] = Float((i * 5) % 19) * 0.01 - 0.09 }
            func measure(_ name: String, m: Int, n: Int, k: Int, _ braid: () -> Void, _ blas: () -> Void) {
                let (tb, to) = timeAlternating(braid, blas)
                let flops = 2 * Double(m) * Double(n) * Double(k)
                rows.append(LinearRow(product: name, m: m, n: n, k: k, braidGFLOPS: flops / tb / 1e9, openblasGFLOPS: flops / to / 1e9,
                                      ratio: to / tb))
            }
            measure("y += x W^T", m: m, n: n, k: k, {
                gemm(y, ldc: n, x, lda: k, w, ldb: k, m: m, n: n, k: k, transB: true, beta: 1)
            }, {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, x, Int32(k), w, Int32(k), 1, y, Int32(n))
            })
            // dY [m, n] (x's buffer) times W [n, k] into dX [m, k] (y's)
            measure("dX += dY W", m: m, n: k, k: n, {
                gemm(y, ldc: k, x, lda: n, w, ldb: k, m: m, n: k, k: n, beta: 1)
            }, {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(k), Int32(n), 1, x, Int32(n), w, Int32(k), 1, y, Int32(k))
            })
        }
        return rows
    }

    /// Memory-bound kernels split over `threads` chunks with `parallelFor` (as the
    /// ops do), against memcpy of an n-float buffer split the same way, timed
    /// alternately with each kernel. Bytes count every float read and written once
    /// (weights and statistics excluded): add 12n, the others 8n (= memcpy's).
    func benchMemory(threads: Int) -> [MemoryRow] {
        let n = elements, width = 256, rows = n / width
        let x = UnsafeMutablePointer<Float>.allocate(capacity: n), y = UnsafeMutablePointer<Float>.allocate(capacity: n)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
        let w = UnsafeMutablePointer<Float>.allocate(capacity: width), bias = UnsafeMutablePointer<Float>.allocate(capacity: width)
        let stats = UnsafeMutablePointer<Float>.allocate(capacity: 2 * (n / 32))
        defer { for p in [x, y, out, w, bias, stats] { p.deallocate() } }
        for i in 0..<n { x[i] = Float(i % 101) * 0.02 - 1; y[i] = Float(i % 37) * 0.05 - 0.9; out[i] = 0 }
        for j in 0..<width { w[j] = 1 + Float(j % 5) * 0.1; bias[j] = Float(j % 3) * 0.1 }

        // the yardstick: memcpy of one n-float buffer (8n bytes moved), split the same way
        let copy: () -> Void = { parallelFor(n, grain: 1 << 16) { _, r in memcpy(out + r.lowerBound, x + r.lowerBound, r.count * 4) } }
        var rowsOut: [MemoryRow] = []
        func measure(_ name: String, bytes: Int, _ body: @escaping () -> Void) {
            let (tk, tc) = timeAlternating(body, copy)
            let gk = Double(bytes) / tk / 1e9, gc = Double(8 * n) / tc / 1e9
            rowsOut.append(MemoryRow(kernel: name, threads: threads, bytes: bytes, kernelGBps: gk, memcpyGBps: gc, ratio: gk / gc))
        }
        let rowGrain = Swift.max(1, (1 << 16) / width)
        measure("add", bytes: 3 * n * 4) {
            parallelFor(n, grain: 1 << 16) { _, r in add(out + r.lowerBound, x + r.lowerBound, y + r.lowerBound, count: r.count) }
        }
        measure("gelu", bytes: 2 * n * 4) {
            parallelFor(n, grain: 1 << 16) { _, r in geluForward(out + r.lowerBound, x + r.lowerBound, count: r.count) }
        }
        measure("layerNorm[*,256]", bytes: 2 * n * 4) {
            parallelFor(rows, grain: rowGrain) { _, r in
                layerNormForward(out + r.lowerBound * width, mean: stats + r.lowerBound, rstd: stats + rows + r.lowerBound,
                                 x + r.lowerBound * width, weight: w, bias: bias, rows: r.count, n: width)
            }
        }
        // the Transformer's width (d_model 32): many short rows
        measure("layerNorm[*,32]", bytes: 2 * n * 4) {
            parallelFor(n / 32, grain: (1 << 16) / 32) { _, r in
                layerNormForward(out + r.lowerBound * 32, mean: stats + r.lowerBound, rstd: stats + n / 32 + r.lowerBound,
                                 x + r.lowerBound * 32, weight: w, bias: bias, rows: r.count, n: 32)
            }
        }
        measure("softmax[*,256]", bytes: 2 * n * 4) {
            parallelFor(rows, grain: rowGrain) { _, r in
                softmaxForward(out + r.lowerBound * width, x + r.lowerBound * width, mask: nil, rows: r.count, n: width)
            }
        }
        return rowsOut
    }

    func printTable(_ r: Report) {
        func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
        print("OPENBLAS_CORETYPE=\(r.openblasCoretype ?? "(unset)"), median of \(r.repeats) runs after \(r.warmup) warm-up")
        print("")
        print("sgemm n x n x n     threads   braid GFLOP/s   cblas GFLOP/s   braid/cblas")
        for g in r.sgemm {
            print(pad("\(g.n)", 7) + pad("\(g.threads)", 20) + pad(f(g.braidGFLOPS), 16) + pad(f(g.openblasGFLOPS), 16) + pad(f(g.ratio, 3), 14))
        }
        print("")
        print("kernel              threads   MiB moved   kernel GB/s   memcpy GB/s   kernel/memcpy")
        for m in r.memory {
            print(m.kernel.padding(toLength: 18, withPad: " ", startingAt: 0) + pad("\(m.threads)", 9)
                  + pad(f(Double(m.bytes) / 1_048_576, 0), 12) + pad(f(m.kernelGBps), 14) + pad(f(m.memcpyGBps), 14) + pad(f(m.ratio, 2), 16))
        }
        print("")
        print("attention product     L      m x n x k          smallProduct GFLOP/s   cblas GFLOP/s   speed-up (1 thread)")
        for a in r.attention {
            print(a.product.padding(toLength: 18, withPad: " ", startingAt: 0) + pad("\(a.length)", 6)
                  + pad("\(a.m) x \(a.n) x \(a.k)", 19) + pad(f(a.braidGFLOPS), 23) + pad(f(a.openblasGFLOPS), 16) + pad(f(a.ratio, 2), 22))
        }
        print("")
        print("linear product        m x n x k             gemm GFLOP/s   cblas GFLOP/s   speed-up (1 thread)")
        for l in r.linear {
            print(l.product.padding(toLength: 18, withPad: " ", startingAt: 0) + pad("\(l.m) x \(l.n) x \(l.k)", 18)
                  + pad(f(l.braidGFLOPS), 18) + pad(f(l.openblasGFLOPS), 16) + pad(f(l.ratio, 2), 22))
        }
    }
}

extension BenchKernelsCommand: BenchRepeatDefaults {
    static let defaultRepeats = 15
    static let threadsHelp = "Thread count for the multi-threaded rows (1-thread rows are always run)."
}
