/// A sparse gradient of an embedding table: the distinct rows a batch touched
/// and one gradient row [dim] for each (never a dense [rows, dim] buffer).
///
/// Rows are found through an open-addressing hash map (PERF-NOTES: sorting ids to
/// de-duplicate is 5x slower); `rows` keeps first-touch order, so the optimizer
/// update is deterministic.
public final class SparseRows {
    public let dim: Int
    /// The distinct rows touched since the last `reset`, in first-touch order.
    public private(set) var rows: [Int32] = []
    /// Gradient rows: values[i * dim ..< (i + 1) * dim] belongs to rows[i].
    public private(set) var values: [Float] = []
    private var keys: [Int32] = []     // hash slots: row id or -1
    private var slots: [Int32] = []    // hash slots: index into rows
    private var mask = 0

    public init(dim: Int) {
        self.dim = dim
        resize(capacity: 1024)
    }

    private func resize(capacity: Int) {
        keys = [Int32](repeating: -1, count: capacity)
        slots = [Int32](repeating: 0, count: capacity)
        mask = capacity - 1
        for (i, r) in rows.enumerated() { insertSlot(r, Int32(i)) }
    }

    private func insertSlot(_ row: Int32, _ index: Int32) {
        var h = Int(truncatingIfNeeded: UInt32(bitPattern: row) &* 2_654_435_769) & mask
        while keys[h] != -1 { h = (h + 1) & mask }
        keys[h] = row
        slots[h] = index
    }

    /// The index of `row` in `rows`, adding a zero gradient row if new.
    @inline(__always) public func slot(for row: Int32) -> Int {
        var h = Int(truncatingIfNeeded: UInt32(bitPattern: row) &* 2_654_435_769) & mask
        while true {
            let k = keys[h]
            if k == row { return Int(slots[h]) }
            if k == -1 { break }
            h = (h + 1) & mask
        }
        let index = rows.count
        rows.append(row)
        values.append(contentsOf: repeatElement(0, count: dim))
        if rows.count * 2 > mask + 1 { resize(capacity: (mask + 1) * 2) } else { keys[h] = row; slots[h] = Int32(index) }
        return index
    }

    /// gradient[row] += scale * g[0 ..< dim]
    @inline(__always) public func add(row: Int32, _ g: UnsafePointer<Float>, scale: Float = 1) {
        let s = slot(for: row)
        values.withUnsafeMutableBufferPointer { v in
            let dst = v.baseAddress! + s * dim
            for j in 0..<dim { dst[j] += scale * g[j] }
        }
    }

    /// Every gradient row *= s.
    public func scale(by s: Float) {
        values.withUnsafeMutableBufferPointer { v in for i in v.indices { v[i] *= s } }
    }

    /// Forgets every row (keeps capacity).
    public func reset() {
        if rows.isEmpty { return }
        for i in 0..<keys.count { keys[i] = -1 }
        rows.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
    }
}
