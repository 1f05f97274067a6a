import Foundation

/// Float buffers reused across training steps and inference calls.
///
/// Buffers are kept in free lists by power-of-two size class, so a step that
/// allocates the same shapes as the previous one touches no new memory (no page
/// faults, no malloc in the hot path once warm).
public final class BufferPool: @unchecked Sendable {
    public static let shared = BufferPool()
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

    /// Frees every cached buffer.
    public func drain() {
        lock.lock()
        for (_, list) in free { for p in list { p.deallocate() } }
        free = [:]
        lock.unlock()
    }
}

/// Memory behind one or more tensors: a pooled buffer returned to the pool when
/// the last tensor using it goes away, or a borrowed pointer kept alive by `owner`.
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let capacity: Int
    private let pooled: Bool
    private let owner: AnyObject?

    /// A pooled buffer of `count` floats, zero-filled when `zeroed`.
    public init(count: Int, zeroed: Bool) {
        (pointer, capacity) = BufferPool.shared.take(Swift.max(count, 1))
        pooled = true
        owner = nil
        if zeroed { pointer.update(repeating: 0, count: count) }
    }

    /// Memory owned elsewhere (a parameter block, a memory-mapped file).
    public init(borrowing pointer: UnsafeMutablePointer<Float>, capacity: Int, owner: AnyObject?) {
        self.pointer = pointer
        self.capacity = capacity
        self.pooled = false
        self.owner = owner
    }

    deinit { if pooled { BufferPool.shared.give(pointer, capacity: capacity) } }
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
