import Foundation
import Tensors

/// What the candidates of `late` and `append` fusion read of U users' sequences (SPEC 2.2).
/// It depends on a user's items and actions only (and the model's weights), so serving
/// computes it once per user and `UserStateCache` keeps it across requests.
///
/// Shapes (T = sum of lengths, d = d_model, K = recent_k):
/// - `lengths` [U] valid prefix lengths, `offsets` [U] each user's first packed row;
/// - `readout` [U, (1 + K) d]: [maxpool ; x_0 ... x_{K-1}] of the final x (after seq.ln_f);
/// - `layers`: with `append`, one [T, 3d] per block, the fused qkv of LN1 of the user tokens
///   entering it (the candidates read the k and v columns only; the q columns of a state
///   rebuilt from the cache are 0); with `late`, one [U, L, d], the final x (invalid rows 0).
public struct UserSide {
    public var lengths: [Int32]
    public var offsets: [Int32]
    public var readout: Tensor
    public var layers: [Tensor]
}

/// One user's share of a `UserSide`, as the cache keeps it: n valid tokens, the readout row
/// [(1 + K) d] and, per layer, the rows the candidates read: `append` the keys and values
/// [n, 2d] (the q columns are dropped), `late` the final x [n, d].
struct UserEntry {
    var length: Int
    var readout: [Float]
    var layers: [[Float]]
    var bytes: Int { 4 * (readout.count + layers.reduce(0) { $0 + $1.count }) + 64 }
}

/// A bounded, thread-safe cache of users' sequence states across requests (serving, `late`
/// and `append` fusion): a user whose items and actions are exactly those of an earlier
/// request skips the Transformer over its tokens; the candidates' side runs as always. A
/// repeated batch scores the same bits as when it filled the cache; a user's state carries the
/// float rounding of the batch that computed it (which users' tokens shared its products), so
/// a mixed batch matches scoring without the cache to within that rounding (<= 1e-6 in tests).
///
/// The key is the user's valid items and actions themselves (compared whole, never a hash
/// alone), so a new action is a new key and an entry is never stale. One cache belongs to one
/// loaded model (the state depends on its weights). Entries are evicted least recently used
/// first once their bytes exceed `budgetBytes` (the oldest tenth at a time); an entry larger
/// than the budget is not kept.
///
/// ```swift
/// let cache = UserStateCache(budgetBytes: 256 << 20)
/// let engine = InferenceEngine(model: model, userStates: cache)  // hits, misses: cache.statistics
/// ```
public final class UserStateCache: @unchecked Sendable {
    /// Counters since creation; `bytes` and `entries` are the current contents.
    public struct Statistics: Sendable, Equatable {
        public var hits = 0, misses = 0, evictions = 0, entries = 0, bytes = 0
        public init() {}
    }

    public let budgetBytes: Int
    private let lock = NSLock()
    private var entries: [[Int32]: (entry: UserEntry, used: UInt64)] = [:]
    private var clock: UInt64 = 0
    private var stats = Statistics()

    public init(budgetBytes: Int) {
        precondition(budgetBytes >= 0, "budgetBytes must be >= 0, got \(budgetBytes)")
        self.budgetBytes = budgetBytes
    }

    public var statistics: Statistics { lock.withLock { stats } }

    /// The key of a user: [valid items ; valid actions].
    static func key(items: ArraySlice<Int32>, actions: ArraySlice<Int32>) -> [Int32] { Array(items) + Array(actions) }

    /// Bytes an entry and its key count against the budget.
    private static func footprint(_ key: [Int32], _ entry: UserEntry) -> Int { entry.bytes + 4 * key.count }

    func lookup(_ key: [Int32]) -> UserEntry? {
        lock.withLock {
            clock += 1
            guard let found = entries[key] else { stats.misses += 1; return nil }
            entries[key]!.used = clock
            stats.hits += 1
            return found.entry
        }
    }

    func insert(_ key: [Int32], _ entry: UserEntry) {
        let size = Self.footprint(key, entry)
        guard size <= budgetBytes else { return }
        lock.withLock {
            clock += 1
            if let old = entries.updateValue((entry, clock), forKey: key) {
                stats.bytes -= Self.footprint(key, old.entry)
            } else {
                stats.entries += 1
            }
            stats.bytes += size
            guard stats.bytes > budgetBytes else { return }
            // least recently used first, until a tenth of the budget is free
            for (oldKey, value) in entries.sorted(by: { $0.value.used < $1.value.used }) {
                guard stats.bytes > budgetBytes - budgetBytes / 10 else { break }
                entries[oldKey] = nil
                stats.bytes -= Self.footprint(oldKey, value.entry)
                stats.entries -= 1
                stats.evictions += 1
            }
        }
    }
}
