/// Softmax and log-softmax along an axis, layer normalization and dropout.

/// e^x / Σ e^x along one axis, with the maximum subtracted first so nothing overflows.
/// Backward: dx = y · (dy - Σ dy·y).
public struct Softmax: Op {
    public var axis: Int
    /// log-softmax instead: x - logsumexp(x), with backward dx = dy - softmax · Σ dy.
    public var logarithm: Bool
    public init(axis: Int, logarithm: Bool = false) {
        self.axis = axis
        self.logarithm = logarithm
    }
    public var name: String { logarithm ? "log_softmax" : "softmax" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        _ = try normalizedAxis(axis, rank: inputs[0].rank, op: name)
        return inputs[0]
    }

    public func forward<T: Scalar>(_ f: Frame<T>) throws {
        let view = AxisView(f.outputShape, axis: try normalizedAxis(axis, rank: f.outputShape.rank, op: name))
        let x = f.input(0), y = f.output
        forEachLine(view) { start, step in
            var largest = -T.infinity
            for k in 0..<view.length where x[start + k * step] > largest { largest = x[start + k * step] }
            if !largest.isFinite { largest = 0 }
            var sum: T = 0
            for k in 0..<view.length { sum += T.exp(x[start + k * step] - largest) }
            let logSum = T.log(sum)
            for k in 0..<view.length {
                let shifted = x[start + k * step] - largest
                y[start + k * step] = logarithm ? shifted - logSum : T.exp(shifted) / sum
            }
        }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gx = f.inputGradient(0),
              let a = try? normalizedAxis(axis, rank: f.outputShape.rank, op: name) else { return }
        let view = AxisView(f.outputShape, axis: a)
        let y = f.output, g = f.outputGradient
        forEachLine(view) { start, step in
            var total: T = 0
            if logarithm {
                for k in 0..<view.length { total += g[start + k * step] }
                for k in 0..<view.length {
                    let i = start + k * step
                    gx[i] += g[i] - T.exp(y[i]) * total
                }
            } else {
                for k in 0..<view.length { total += g[start + k * step] * y[start + k * step] }
                for k in 0..<view.length {
                    let i = start + k * step
                    gx[i] += y[i] * (g[i] - total)
                }
            }
        }
    }

    /// Every line along the axis: its first element's offset and the stride between elements.
    private func forEachLine(_ view: AxisView, _ body: (Int, Int) -> Void) {
        for o in 0..<view.outer {
            for j in 0..<view.inner { body(o * view.length * view.inner + j, view.inner) }
        }
    }
}

/// Layer normalization over the last axes (those of `weight`, or the last `normalizedRank`):
/// y = (x - mean) / √(var + eps) · weight + bias, with the biased variance, as PyTorch's
/// LayerNorm. Inputs: x, then optionally weight and bias of the normalized shape.
public struct LayerNorm: Op {
    public var normalizedRank: Int
    public var eps: Double
    public init(normalizedRank: Int, eps: Double = 1e-5) {
        self.normalizedRank = normalizedRank
        self.eps = eps
    }
    public var name: String { "layer_norm" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = inputs[0]
        guard normalizedRank >= 1, normalizedRank <= x.rank else {
            throw BackpropError.shape("layer_norm: cannot normalize the last \(normalizedRank) axes of \(x)")
        }
        let normalized = Array(x.dims.suffix(normalizedRank))
        guard inputs.count == 1 || inputs.count == 3 else {
            throw BackpropError.shape("layer_norm: takes x alone, or x, weight and bias")
        }
        for affine in inputs.dropFirst() where affine.dims != normalized {
            throw BackpropError.shape("layer_norm: weight and bias must be \(Shape.format(normalized)) for \(x), got \(affine)")
        }
        return x
    }

    /// Per row: the mean and 1/√(var + eps).
    public func scratchCount(_ inputs: [Shape]) -> Int {
        2 * inputs[0].count / max(1, inputs[0].dims.suffix(normalizedRank).reduce(1, *))
    }

    private func sizes<T: Scalar>(_ f: Frame<T>) -> (rows: Int, width: Int) {
        let width = f.outputShape.dims.suffix(normalizedRank).reduce(1, *)
        return (f.count / width, width)
    }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let (rows, width) = sizes(f)
        let x = f.input(0), y = f.output, stats = f.scratch
        let affine = f.binding.inputShapes.count == 3
        for r in 0..<rows {
            let row = x + r * width, out = y + r * width
            var mean: T = 0
            for j in 0..<width { mean += row[j] }
            mean /= T(width)
            var variance: T = 0
            for j in 0..<width { variance += (row[j] - mean) * (row[j] - mean) }
            variance /= T(width)
            let inverse = 1 / T.sqrt(variance + T(eps))
            stats[2 * r] = mean
            stats[2 * r + 1] = inverse
            for j in 0..<width {
                let normalized = (row[j] - mean) * inverse
                out[j] = affine ? normalized * f.input(1)[j] + f.input(2)[j] : normalized
            }
        }
    }

    /// dx = inv · (dx̂ - mean(dx̂) - x̂ · mean(dx̂ · x̂)), where dx̂ = dy · weight.
    public func backward<T: Scalar>(_ f: Frame<T>) {
        let (rows, width) = sizes(f)
        let x = f.input(0), g = f.outputGradient, stats = f.scratch
        let affine = f.binding.inputShapes.count == 3
        let gx = f.inputGradient(0)
        let gw = affine ? f.inputGradient(1) : nil, gb = affine ? f.inputGradient(2) : nil
        for r in 0..<rows {
            let row = x + r * width, up = g + r * width
            let mean = stats[2 * r], inverse = stats[2 * r + 1]
            var meanUp: T = 0, meanUpNormalized: T = 0
            for j in 0..<width {
                let normalized = (row[j] - mean) * inverse
                let dNormalized = affine ? up[j] * f.input(1)[j] : up[j]
                meanUp += dNormalized
                meanUpNormalized += dNormalized * normalized
                gw?[j] += up[j] * normalized
                gb?[j] += up[j]
            }
            meanUp /= T(width)
            meanUpNormalized /= T(width)
            guard let gx else { continue }
            for j in 0..<width {
                let normalized = (row[j] - mean) * inverse
                let dNormalized = affine ? up[j] * f.input(1)[j] : up[j]
                gx[r * width + j] += inverse * (dNormalized - meanUp - normalized * meanUpNormalized)
            }
        }
    }
}

/// In training mode, zeroes each element with probability p and scales the rest by 1/(1-p)
/// (inverted dropout, as PyTorch), drawing from the graph's seeded generator; in evaluation
/// mode, the identity. The mask is kept for backward.
public struct Dropout: Op {
    public var probability: Double
    public init(probability: Double) { self.probability = probability }
    public var name: String { "dropout" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape { inputs[0] }
    public func scratchCount(_ inputs: [Shape]) -> Int { inputs[0].count }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let x = f.input(0), y = f.output, mask = f.scratch
        let keep = f.isTraining ? 1 - probability : 1
        let scale: T = keep > 0 ? T(1 / keep) : 0
        for i in 0..<f.count {
            mask[i] = !f.isTraining ? 1 : f.randomUnit() < probability ? 0 : scale
            y[i] = x[i] * mask[i]
        }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gx = f.inputGradient(0) else { return }
        let g = f.outputGradient, mask = f.scratch
        for i in 0..<f.count { gx[i] += g[i] * mask[i] }
    }
}

extension Graph {
    public func softmax(_ x: NodeID, axis: Int = -1) throws -> NodeID { try apply(Softmax(axis: axis), [x]) }
    public func logSoftmax(_ x: NodeID, axis: Int = -1) throws -> NodeID {
        try apply(Softmax(axis: axis, logarithm: true), [x])
    }
    public func layerNorm(_ x: NodeID, weight: NodeID, bias: NodeID, eps: Double = 1e-5) throws -> NodeID {
        guard eps > 0, eps.isFinite else { throw BackpropError.invalidArgument("layer_norm: eps must be positive") }
        return try apply(LayerNorm(normalizedRank: try shape(of: weight).rank, eps: eps), [x, weight, bias])
    }
    public func layerNorm(_ x: NodeID, normalizedRank: Int, eps: Double = 1e-5) throws -> NodeID {
        guard eps > 0, eps.isFinite else { throw BackpropError.invalidArgument("layer_norm: eps must be positive") }
        return try apply(LayerNorm(normalizedRank: normalizedRank, eps: eps), [x])
    }
    public func dropout(_ x: NodeID, probability: Double) throws -> NodeID {
        guard probability >= 0, probability <= 1 else {
            throw BackpropError.invalidArgument("dropout: probability must be in [0, 1], got \(probability)")
        }
        return try apply(Dropout(probability: probability), [x])
    }
}
