import Foundation
import Kernels

/// Float buffers reused across training steps and inference calls.
///
/// Buffers are kept in free lists by power-of-two size class, so a step that
/// allocates the same shapes as the previous one touches no new memory (no page
/// faults, no malloc in the hot path once warm). One pool per `ThreadSlot`: a buffer goes
/// back to the pool it came from (whichever thread frees it), so the shards of a training
/// step, each on its own thread, keep reusing buffers in their own core's caches instead of
/// trading them (with one shared pool, a buffer shard 0 had just written could be handed to
/// shard 1 on the other core, whose writes then miss and pull the lines across).
public final class BufferPool: @unchecked Sendable {
    /// The pools, by thread slot (slots past the last share it).
    static let pools = (0...64).map { _ in BufferPool() }

    /// The calling thread's pool.
    public static var forCurrentThread: BufferPool { pools[Swift.min(ThreadSlot.current, pools.count - 1)] }

    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private let lock = NSLock()

    @usableFromInline static func sizeClass(_ count: Int) -> Int {
        count <= 16 ? 16 : 1 << (Int.bitWidth - (count - 1).leadingZeroBitCount)
    }

    /// A buffer of at least `count` floats (its capacity is the size class).
    public func take(_ count: Int) -> (UnsafeMutablePointer<Float>, Int) {
        let capacity = Self.sizeClass(count)
        lock.lock()
        let p = free[capacity]?.popLast()
        lock.unlock()
        if let p { return (p, capacity) }
        return (UnsafeMutablePointer<Float>.allocate(capacity: capacity), capacity)
    }

    /// Returns a buffer obtained from `take`.
    public func give(_ pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        lock.lock()
        free[capacity, default: []].append(pointer)
        lock.unlock()
    }

}

/// Memory behind one or more tensors: a pooled buffer returned to its pool when
/// the last tensor using it goes away, or a borrowed pointer kept alive by `owner`.
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let capacity: Int
    private let pool: BufferPool?
    private let owner: AnyObject?

    /// A buffer of `count` floats from the calling thread's pool, zero-filled when `zeroed`.
    public init(count: Int, zeroed: Bool) {
        let pool = BufferPool.forCurrentThread
        (pointer, capacity) = pool.take(Swift.max(count, 1))
        self.pool = pool
        owner = nil
        if zeroed { pointer.update(repeating: 0, count: count) }
    }

    /// Memory owned elsewhere (a parameter block, a memory-mapped file).
    public init(borrowing pointer: UnsafeMutablePointer<Float>, capacity: Int, owner: AnyObject?) {
        self.pointer = pointer
        self.capacity = capacity
        self.pool = nil
        self.owner = owner
    }

    deinit { pool?.give(pointer, capacity: capacity) }
}

/// A block of floats allocated once (parameters, their gradients, optimizer state).
public final class FloatBlock: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: Swift.max(count, 1))
        pointer.update(repeating: 0, count: count)
    }
    deinit { pointer.deallocate() }
}
