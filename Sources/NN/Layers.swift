import Tensors

extension ParameterStore {
    /// A layer's `<name>.weight` and `<name>.bias` (SPEC 2.9 names): Linear's [out, in] and
    /// [out], LayerNorm's [n] and [n].
    func weightAndBias(_ name: String) -> (weight: Tensor, bias: Tensor) { (self["\(name).weight"], self["\(name).bias"]) }
}

/// y = x W^T + b (then max(y, 0) with `relu: true`). Parameters `<name>.weight` [out, in],
/// `<name>.bias` [out].
public struct Linear {
    public let weight: Tensor
    public let bias: Tensor
    public init(_ store: ParameterStore, _ name: String) { (weight, bias) = store.weightAndBias(name) }
    public var inputDimensions: Int { weight.shape[1] }
    public var outputDimensions: Int { weight.shape[0] }
    public func callAsFunction(_ x: Tensor, relu: Bool = false) -> Tensor { linear(x, weight: weight, bias: bias, relu: relu) }
    /// r + (x W^T + b) as one op (`linear(_:weight:bias:residual:)`).
    public func callAsFunction(_ x: Tensor, residual r: Tensor) -> Tensor { linear(x, weight: weight, bias: bias, residual: r) }
}

/// Linear layers `<name>.0`, `<name>.1`, ... each followed by ReLU, the last too
/// (SPEC 2). No layers: the identity.
public struct MLP {
    public let layers: [Linear]
    public init(_ store: ParameterStore, _ name: String, count: Int) {
        layers = (0..<count).map { Linear(store, "\(name).\($0)") }
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for layer in layers { h = layer(h, relu: true) }
        return h
    }
}

/// Layer norm (eps 1e-5, affine): `<name>.weight`, `<name>.bias` [n].
public struct LayerNorm {
    public let weight: Tensor
    public let bias: Tensor
    public init(_ store: ParameterStore, _ name: String) { (weight, bias) = store.weightAndBias(name) }
    public func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias) }
}

/// A DCNv2 cross layer: x_{l+1} = x0 * (W x_l + b) + x_l, with W full
/// (`<name>.weight` [n, n]) or low rank W = U V^T (`<name>.U`, `<name>.V` [n, r],
/// computed U (V^T x)); `<name>.bias` [n].
public struct CrossLayer {
    public let weight: Tensor?
    public let u: Tensor?
    public let v: Tensor?
    public let bias: Tensor
    public init(_ store: ParameterStore, _ name: String, lowRank: Bool) {
        if lowRank { u = store["\(name).U"]; v = store["\(name).V"]; weight = nil } else { weight = store["\(name).weight"]; u = nil; v = nil }
        bias = store["\(name).bias"]
    }
    public func callAsFunction(_ x0: Tensor, _ x: Tensor) -> Tensor {
        if let u, let v { return crossUpdate(x0: x0, x: x, h: matmul(x, v), weight: u, bias: bias) }
        return crossUpdate(x0: x0, x: x, h: x, weight: weight!, bias: bias)
    }
}

/// FFN of a Transformer block: down(GELU(up(x))). `<name>.up` [d_ff, d], `<name>.down` [d, d_ff].
public struct FeedForward {
    public let up: Linear
    public let down: Linear
    public init(_ store: ParameterStore, _ name: String) {
        up = Linear(store, "\(name).up")
        down = Linear(store, "\(name).down")
    }
    public func callAsFunction(_ x: Tensor) -> Tensor { down(gelu(up(x))) }
    /// r + FFN(x), the down projection and the residual add in one op.
    public func callAsFunction(_ x: Tensor, residual r: Tensor) -> Tensor { down(gelu(up(x)), residual: r) }
}

/// Multi-head attention with one fused qkv Linear [3d, d] (rows q, k, v) and an
/// output Linear [d, d] (SPEC 2.2); heads take contiguous slices.
public struct MultiHeadAttention {
    public let qkv: Linear
    public let out: Linear
    public let heads: Int
    public init(_ store: ParameterStore, _ name: String, heads: Int) {
        qkv = Linear(store, "\(name).qkv")
        out = Linear(store, "\(name).out")
        self.heads = heads
    }
}

/// A pre-LN Transformer block: x = x + Attn(LN1(x)); x = x + FFN(LN2(x)).
/// `forward(x:lengths:)` runs user tokens [U, L, d] whose valid positions are a
/// prefix of `lengths[u]`; `forward(x:lengths:candidate:userIndex:)` also runs the
/// append-fusion candidate tokens y [B, d], which attend to their user's valid
/// tokens and to themselves (user tokens never attend to y).
public struct TransformerBlock {
    public let ln1: LayerNorm
    public let attention: MultiHeadAttention
    public let ln2: LayerNorm
    public let ffn: FeedForward
    public init(_ store: ParameterStore, _ name: String, heads: Int) {
        ln1 = LayerNorm(store, "\(name).ln1")
        attention = MultiHeadAttention(store, "\(name).attn", heads: heads)
        ln2 = LayerNorm(store, "\(name).ln2")
        ffn = FeedForward(store, "\(name).ffn")
    }

    public func callAsFunction(_ x: Tensor, lengths: [Int32]) -> Tensor {
        forward(x, lengths: lengths, candidate: nil, userIndex: nil).x
    }

    public func forward(_ x: Tensor, lengths: [Int32], candidate y: Tensor?, userIndex: [Int32]?) -> (x: Tensor, y: Tensor?) {
        let qkvX = attention.qkv(ln1(x))
        let x = attention.out(selfAttention(qkvX, lengths: lengths, heads: attention.heads), residual: x)
        let xOut = ffn(ln2(x), residual: x)
        guard var y else { return (xOut, nil) }
        let qkvY = attention.qkv(ln1(y))
        y = attention.out(appendAttention(qkvY, user: qkvX, lengths: lengths, userIndex: userIndex, heads: attention.heads), residual: y)
        return (xOut, ffn(ln2(y), residual: y))
    }

    /// The same block over packed tokens: x [T, d] holds only the valid tokens,
    /// sequence u at rows offsets[u] ..< offsets[u] + lengths[u] (lengths <= maxLength).
    /// Every token-wise step (LN, qkv, output Linear, FFN) runs on the T valid rows only.
    public func forward(packed x: Tensor, lengths: [Int32], offsets: [Int32], maxLength: Int,
                        candidate y: Tensor?, userIndex: [Int32]?) -> (x: Tensor, y: Tensor?) {
        let (x, qkvX) = userForward(packed: x, lengths: lengths, offsets: offsets, maxLength: maxLength)
        guard let y else { return (x, nil) }
        return (x, candidateForward(y, user: qkvX, lengths: lengths, offsets: offsets, maxLength: maxLength, userIndex: userIndex))
    }

    /// The user tokens' half of `forward(packed:...)`: x [T, d] -> the block's output [T, d]
    /// and the fused qkv [T, 3d] of LN1(x), whose keys and values append-fusion candidates read.
    public func userForward(packed x: Tensor, lengths: [Int32], offsets: [Int32], maxLength: Int) -> (x: Tensor, qkv: Tensor) {
        let qkvX = attention.qkv(ln1(x))
        let x = attention.out(selfAttention(packed: qkvX, lengths: lengths, offsets: offsets, maxLength: maxLength, heads: attention.heads),
                              residual: x)
        return (ffn(ln2(x), residual: x), qkvX)
    }

    /// The candidates' half: y [B, d] attends to the keys and values of its user's tokens in
    /// `user` (packed [T, 3d] as `userForward` returns it; the q columns are not read) and to
    /// itself -> y + Attn + FFN [B, d].
    public func candidateForward(_ y: Tensor, user qkvX: Tensor, lengths: [Int32], offsets: [Int32], maxLength: Int,
                                 userIndex: [Int32]?) -> Tensor {
        let qkvY = attention.qkv(ln1(y))
        let y = attention.out(appendAttention(qkvY, user: qkvX, lengths: lengths, userIndex: userIndex, heads: attention.heads,
                                              offsets: offsets, maxLength: maxLength), residual: y)
        return ffn(ln2(y), residual: y)
    }
}
