import Tensors

/// Intermediate tensors of one forward pass, by the reference's fixture names
/// (`seq_tokens`, `x0`, `gate.<s>`, ...): what parity tests compare.
public final class Trace {
    public var tensors: [String: Tensor] = [:]
    public init() {}
    public subscript(name: String) -> Tensor? {
        get { tensors[name] }
        set { tensors[name] = newValue }
    }
}
