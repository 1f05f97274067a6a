import Random

/// An epoch's training plan for data larger than memory: the N rows of `source` are cut into
/// blocks of `blockRows` consecutive rows, the blocks are shuffled (Fisher-Yates, SplitMix64
/// seeded from (seed, epoch)), and taken `windowBlocks` at a time into an in-memory window
/// whose rows (with the previous window's leftover) are shuffled and cut into batches of
/// `batchSize`, each sorted by surface, by `shuffledBatches` seeded from (seed, epoch, window).
/// A window's last batch, when short, is carried into the next window, so every batch but the
/// epoch's last has `batchSize` rows and there are ceil(rows / batchSize) batches.
///
/// Each window reads `windowBlocks` runs of `blockRows` consecutive rows (large sequential
/// reads of a memory-mapped cache), and the plan holds one window's row indices at a time:
/// memory O(windowBlocks x blockRows), whatever N. Rows that `keep` (given a block's first row
/// and its targets) leaves out are not trained on: negative sampling, applied block by block.
///
/// Versus the full shuffle (`shuffledBatches` over all N rows), a batch mixes rows of at most
/// `windowBlocks` blocks: on data whose file order is not random (sorted by time or user),
/// batches are less diverse; see docs/DECISIONS.md for the measured effect on AUC.
public struct BlockShuffledBatches: Sequence, @unchecked Sendable {
    public let source: any RowSource
    public let batchSize: Int
    public let blockRows: Int
    public let windowBlocks: Int
    public let seed: UInt64
    public let epoch: Int
    /// The kept rows of a block from its first row and targets (default: every row).
    public let keep: (@Sendable (Int, RowTargets) -> [Int])?

    public init(source: any RowSource, batchSize: Int, blockRows: Int = 4096, windowBlocks: Int = 64, seed: UInt64, epoch: Int,
                keep: (@Sendable (Int, RowTargets) -> [Int])? = nil) {
        precondition(batchSize >= 1 && blockRows >= 1 && windowBlocks >= 1,
                     "batchSize, blockRows and windowBlocks must be >= 1, got \(batchSize), \(blockRows), \(windowBlocks)")
        self.source = source
        self.batchSize = batchSize
        self.blockRows = blockRows
        self.windowBlocks = windowBlocks
        self.seed = seed
        self.epoch = epoch
        self.keep = keep
    }

    /// The blocks in this epoch's order.
    func blockOrder() -> [Int] {
        let blocks = (source.count + blockRows - 1) / blockRows
        var order = Array(0..<blocks)
        var mixer = SplitMix64(seed: seed ^ (0xA076_1D64_78BD_642F &* UInt64(bitPattern: Int64(epoch) &+ 1)))
        var generator = SplitMix64(seed: mixer.next())
        if blocks > 1 {
            for i in stride(from: blocks - 1, to: 0, by: -1) { order.swapAt(i, Int(generator.next(below: UInt64(i + 1)))) }
        }
        return order
    }

    public func makeIterator() -> Iterator { Iterator(plan: self) }

    /// Yields the batches in order, reading one window of blocks at a time.
    public struct Iterator: IteratorProtocol {
        let plan: BlockShuffledBatches
        let order: [Int]
        var nextBlock = 0
        var window = 0
        var leftover: [Int] = []
        var leftoverSurface: [Int32] = []
        var pending: [[Int]] = []
        var pendingAt = 0

        init(plan: BlockShuffledBatches) {
            self.plan = plan
            order = plan.blockOrder()
        }

        public mutating func next() -> [Int]? {
            while pendingAt >= pending.count {
                if nextBlock >= order.count {
                    guard !leftover.isEmpty else { return nil }
                    pending = [leftover]
                    pendingAt = 0
                    leftover = []
                    break
                }
                fillWindow()
            }
            pendingAt += 1
            return pending[pendingAt - 1]
        }

        /// Reads the next window's blocks and cuts them (after the leftover) into batches.
        private mutating func fillWindow() {
            var rows = leftover, surface = leftoverSurface
            let source = plan.source
            for b in order[nextBlock ..< Swift.min(nextBlock + plan.windowBlocks, order.count)] {
                let range = b * plan.blockRows ..< Swift.min((b + 1) * plan.blockRows, source.count)
                let targets = source.targets(rows: range)
                if let keep = plan.keep {
                    for n in keep(range.lowerBound, targets) {
                        rows.append(n)
                        surface.append(targets.surface[n - range.lowerBound])
                    }
                } else {
                    rows.append(contentsOf: range)
                    surface.append(contentsOf: targets.surface)
                }
            }
            nextBlock = Swift.min(nextBlock + plan.windowBlocks, order.count)
            let last = nextBlock >= order.count
            let windowSeed = plan.seed ^ (0xE703_7ED1_A0B4_28DB &* UInt64(window + 1))
            var batches = shuffledBatches(surface: surface, batchSize: plan.batchSize, seed: windowSeed, epoch: plan.epoch)
            window += 1
            leftover = []
            leftoverSurface = []
            if !last, let tail = batches.last, tail.count < plan.batchSize {
                batches.removeLast()
                leftover = tail.map { rows[$0] }
                leftoverSurface = tail.map { surface[$0] }
            }
            pending = batches.map { $0.map { rows[$0] } }
            pendingAt = 0
        }
    }
}
