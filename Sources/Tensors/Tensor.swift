import Foundation

/// A dense, row-major Float32 array with an optional gradient.
///
/// `data` points at `count = shape.product` contiguous floats. Operations on
/// tensors (in `Ops/`) record a backward rule on the current `Tape` when one is
/// active and an input requires a gradient; without a tape (inference) nothing is
/// recorded and no gradient memory exists.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let storage: Storage
    public let offset: Int
    /// True for parameters and for results of recorded operations.
    public internal(set) var requiresGrad: Bool
    /// dLoss/dself, allocated (zeroed) on first use during the backward pass, or
    /// preassigned (parameters: a slice of the gradient block).
    public internal(set) var gradStorage: Storage?
    public internal(set) var gradOffset = 0

    public var data: UnsafeMutablePointer<Float> { storage.pointer + offset }
    public var grad: UnsafeMutablePointer<Float>? { gradStorage.map { $0.pointer + gradOffset } }

    /// A new tensor from the buffer pool (contents undefined unless `zeroed`).
    public init(shape: [Int], zeroed: Bool = false) {
        self.shape = shape
        count = shape.reduce(1, *)
        storage = Storage(count: count, zeroed: zeroed)
        offset = 0
        requiresGrad = false
    }

    /// A tensor over existing storage (views, parameters).
    public init(shape: [Int], storage: Storage, offset: Int = 0, requiresGrad: Bool = false) {
        self.shape = shape
        count = shape.reduce(1, *)
        precondition(offset + count <= storage.capacity, "view \(shape) at \(offset) exceeds storage \(storage.capacity)")
        self.storage = storage
        self.offset = offset
        self.requiresGrad = requiresGrad
    }

    /// A tensor holding a copy of `values`.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// Gives this tensor a gradient slot in preassigned memory (parameters).
    public func attachGradient(_ storage: Storage, offset: Int) {
        gradStorage = storage
        gradOffset = offset
        requiresGrad = true
    }

    /// The gradient buffer, allocating a zeroed one if needed (backward pass only).
    @discardableResult
    public func ensureGrad() -> UnsafeMutablePointer<Float> {
        if gradStorage == nil { gradStorage = Storage(count: count, zeroed: true); gradOffset = 0 }
        return grad!
    }

    /// The gradient buffer for a backward rule that will cover every element: `fresh` when
    /// it was allocated just now (contents undefined), so the rule writes its contribution
    /// instead of adding it to zeros (saves a memset and a read of the buffer); otherwise the
    /// rule adds, as with `ensureGrad`.
    public func gradForFullWrite() -> (pointer: UnsafeMutablePointer<Float>, fresh: Bool) {
        if gradStorage == nil {
            gradStorage = Storage(count: count, zeroed: false)
            gradOffset = 0
            return (grad!, true)
        }
        return (grad!, false)
    }

    /// Takes over `output`'s gradient buffer as this tensor's, when this one has none yet and
    /// the two have the same count: the backward rule of an op whose input gradient equals
    /// its output gradient (a reshape, one operand of a same-shape add) then copies nothing.
    /// `output` gives the buffer up (its gradient reads nil afterwards), so a second operand
    /// of the same add gets its own; later contributions to this tensor add into the buffer,
    /// which the output's rule, the only reader of the output's gradient, has finished with.
    func adoptGradient(of output: Tensor) -> Bool {
        guard gradStorage == nil, let storage = output.gradStorage, output.count == count else { return false }
        gradStorage = storage
        gradOffset = output.gradOffset
        output.gradStorage = nil
        return true
    }

    public var values: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }
    public var gradValues: [Float]? { grad.map { Array(UnsafeBufferPointer(start: $0, count: count)) } }
    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }
    /// The size of the last dimension.
    public var lastDim: Int { shape.last ?? 1 }
    /// Rows when viewed as [count / lastDim, lastDim].
    public var rows: Int { lastDim == 0 ? 0 : count / lastDim }
}

/// Records the backward rules of operations run while it is current, in order,
/// and runs them in reverse (reverse-mode automatic differentiation).
///
/// Usage: `let tape = Tape(); let loss = tape.record { model.loss(batch) }; tape.backward(loss)`.
/// Parameters accumulate into their gradient slots (`+=`); call the optimizer's
/// `zeroGradients` between steps.
public final class Tape {
    /// The tape recording on this thread (thread-local, so concurrent trainings
    /// and tests never record into each other's tape).
    static var current: Tape? {
        get { pthread_getspecific(tapeKey).map { Unmanaged<Tape>.fromOpaque($0).takeUnretainedValue() } }
        set { pthread_setspecific(tapeKey, newValue.map { Unmanaged.passUnretained($0).toOpaque() }) }
    }
    @usableFromInline var rules: [() -> Void] = []

    /// Whether a tape records on this thread (false in inference: ops keep no graph).
    public static var isRecording: Bool { current != nil }

    public init() {}

    /// Runs `body` with this tape recording.
    public func record<T>(_ body: () throws -> T) rethrows -> T {
        let saved = Tape.current
        defer { withExtendedLifetime(self) {} }
        Tape.current = self
        defer { Tape.current = saved }
        return try body()
    }

    /// Seeds d(loss)/d(loss) = 1 (loss must be a single element) and runs every rule backwards.
    public func backward(_ loss: Tensor) {
        precondition(loss.count == 1, "backward needs a scalar loss, got shape \(loss.shape)")
        loss.ensureGrad()[0] += 1
        for rule in rules.reversed() { rule() }
        rules.removeAll(keepingCapacity: true)
    }

    /// Whether an operation on `inputs` must be recorded (a tape is active and an input needs a gradient).
    static func needsGrad(_ inputs: Tensor?...) -> Tape? {
        guard let tape = current else { return nil }
        for t in inputs where t?.requiresGrad == true { return tape }
        return nil
    }
}

extension Tensor {
    /// Records `rule` (run during the backward pass when `self` received a gradient)
    /// if `tape` is non-nil, marking `self` as requiring a gradient.
    func recordBackward(on tape: Tape?, _ rule: @escaping (UnsafeMutablePointer<Float>) -> Void) {
        guard let tape else { return }
        requiresGrad = true
        tape.rules.append {
            if let g = self.grad { rule(g) }
        }
    }
}

private let tapeKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()
