import Dispatch
import Foundation
import Synchronization
@testable import Kernels
import Testing
import TestSupport

// parallelFor and its worker pool: the chunks it runs must be exactly the
// documented split (what determinism rests on), each run once, whatever the
// thread count, nesting or number of concurrent callers.

/// The documented split: min(threads, n / grain) chunks (at least 1), the first
/// n % chunks of them one item longer.
func expectedChunks(n: Int, grain: Int, threads: Int) -> [Range<Int>] {
    let chunks = max(1, min(threads, n / max(grain, 1)))
    if n == 0 { return [] }
    let base = n / chunks, extra = n % chunks
    var lo = 0
    return (0..<chunks).map { c in
        let hi = lo + base + (c < extra ? 1 : 0)
        defer { lo = hi }
        return lo..<hi
    }
}

/// Runs parallelFor and returns the range each chunk index received, and for every
/// item the chunk that covered it (-1 if none; -2 if covered twice).
func recordChunks(n: Int, grain: Int, maxChunks: Int) -> (ranges: [Range<Int>?], owner: [Int]) {
    let ranges = UnsafeMutableBufferPointer<Range<Int>?>.allocate(capacity: maxChunks)
    ranges.initialize(repeating: nil)
    let owner = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(n, 1))
    owner.initialize(repeating: -1)
    defer { ranges.deallocate(); owner.deallocate() }
    parallelFor(n, grain: grain) { c, r in
        ranges[c] = r
        for i in r { owner[i] = owner[i] == -1 ? c : -2 }
    }
    return (Array(ranges), Array(owner.prefix(n)))
}

@Test func parallelForSplitsExactlyAsDocumented() {
    for threads in [1, 2, 3, 4, 7] {
        withThreads(threads) {
            for n in [0, 1, 2, 3, 5, 6, 7, 8, 63, 64, 65, 1000, 1001, 4099] {
                for grain in [0, 1, 2, 3, 7, 64, 1000, 5000] {
                    let want = expectedChunks(n: n, grain: grain, threads: threads)
                    let got = recordChunks(n: n, grain: grain, maxChunks: threads)
                    let label = "n \(n) grain \(grain) threads \(threads)"
                    #expect(got.ranges.compactMap { $0 } == want, "\(label)")
                    var owner = [Int](repeating: -1, count: n)
                    for (c, r) in want.enumerated() { for i in r { owner[i] = c } }
                    #expect(got.owner == owner, "\(label)")
                }
            }
        }
    }
}

/// Chunked float sum, partials combined in chunk order (as the ops do).
func chunkedSum(_ x: [Float], grain: Int) -> Float {
    let chunks = max(1, min(Threads.count, x.count / grain))
    var partial = [Float](repeating: 0, count: chunks)
    partial.withUnsafeMutableBufferPointer { p in
        x.withUnsafeBufferPointer { xs in
            parallelFor(x.count, grain: grain) { c, r in
                var s: Float = 0
                for i in r { s += xs[i] * xs[i] }
                p[c] = s
            }
        }
    }
    return partial.reduce(0, +)
}

@Test func parallelForResultsMatchTheSerialLoopOfTheSameChunks() {
    let x = randomFloats(100_003, seed: 11)
    for threads in [2, 3, 5] {
        withThreads(threads) {
            // The serial loop over the same boundaries gives the same bits.
            var serial: Float = 0
            for r in expectedChunks(n: x.count, grain: 1000, threads: threads) {
                var s: Float = 0
                for i in r { s += x[i] * x[i] }
                serial += s
            }
            for _ in 0..<200 {
                #expect(chunkedSum(x, grain: 1000).bitPattern == serial.bitPattern, "threads \(threads)")
            }
        }
    }
}

@Test func nestedParallelForRunsTheSameChunks() {
    withThreads(3) {
        let outer = 7, inner = 1001
        let out = UnsafeMutableBufferPointer<Int>.allocate(capacity: outer * inner)
        out.initialize(repeating: 0)
        defer { out.deallocate() }
        for _ in 0..<50 {
            parallelFor(outer) { _, rows in
                for row in rows {
                    parallelFor(inner, grain: 10) { c, r in
                        for i in r { out[row * inner + i] += c + 1 }
                    }
                }
            }
        }
        let chunks = expectedChunks(n: inner, grain: 10, threads: 3)
        for row in 0..<outer {
            for (c, r) in chunks.enumerated() {
                for i in r where out[row * inner + i] != 50 * (c + 1) {
                    Issue.record("row \(row) item \(i): \(out[row * inner + i])")
                    return
                }
            }
        }
    }
}

/// A thread whose top-level chunk is done takes a chunk of the loop nested in another
/// (a training shard that finished early runs part of the slower shard's kernels): nested
/// chunk 0 waits (up to 10 s) for nested chunk 1 to be run by a thread other than its own.
@Test func aThreadWithoutWorkTakesChunksOfTheNestedLoop() {
    withThreads(2) {
        for _ in 0..<20 {
            let ran = UnsafeMutableBufferPointer<Int>.allocate(capacity: 2)
            ran.initialize(repeating: -1)
            defer { ran.deallocate() }
            let done = Atomic<Bool>(false)
            var helped = false
            parallelFor(2) { top, _ in
                if top == 1 { return }
                parallelFor(2) { c, _ in
                    if c == 1 { ran[1] = ThreadSlot.current; done.store(true, ordering: .releasing); return }
                    ran[0] = ThreadSlot.current
                    let start = DispatchTime.now().uptimeNanoseconds
                    while !done.load(ordering: .acquiring) && DispatchTime.now().uptimeNanoseconds - start < 10_000_000_000 { sched_yield() }
                    helped = done.load(ordering: .acquiring)
                }
            }
            #expect(helped && ran[0] != ran[1], "nested chunk 1 ran on slot \(ran[1]), chunk 0 on \(ran[0])")
        }
    }
}

@Test func concurrentCallersEachGetTheirWholeLoop() {
    withThreads(2) {
        let callers = 4, n = 3001, rounds = 300
        let sums = UnsafeMutableBufferPointer<Int>.allocate(capacity: callers)
        sums.initialize(repeating: 0)
        defer { sums.deallocate() }
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            let partial = UnsafeMutableBufferPointer<Int>.allocate(capacity: 2)
            defer { partial.deallocate() }
            for _ in 0..<rounds {
                partial.initialize(repeating: 0)
                parallelFor(n, grain: 100) { c, r in
                    var s = 0
                    for i in r { s += i }
                    partial[c] += s
                }
                sums[caller] += partial[0] + partial[1]
            }
        }
        for caller in 0..<callers { #expect(sums[caller] == rounds * n * (n - 1) / 2, "caller \(caller)") }
    }
}

@Test func resizingThePoolKeepsResults() {
    let x = randomFloats(50_000, seed: 5)
    withThreads(1) {
        #expect(WorkerPool.shared.workerCount == 0)
        let one = chunkedSum(x, grain: 1)
        Threads.set(4)
        #expect(WorkerPool.shared.workerCount == 3)
        let four = chunkedSum(x, grain: 1)
        for threads in [2, 6, 1, 3] {
            Threads.set(threads)
            #expect(WorkerPool.shared.workerCount == threads - 1)
            let sum = chunkedSum(x, grain: 1)
            if threads == 1 { #expect(sum.bitPattern == one.bitPattern) }
            Threads.set(4)
            #expect(chunkedSum(x, grain: 1).bitPattern == four.bitPattern)
        }
        Threads.set(1)
        #expect(WorkerPool.shared.workerCount == 0)
    }
}

@Test func idleWorkersGoToSleep() {
    withThreads(3) {
        parallelFor(1000) { _, _ in }
        // The spin is ~0.1 ms; other tests may wake the workers meanwhile, so poll.
        var asleep = false
        for _ in 0..<2000 where !asleep {
            usleep(1000)
            asleep = WorkerPool.shared.sleepingWorkers == 2
        }
        #expect(asleep)
    }
}
