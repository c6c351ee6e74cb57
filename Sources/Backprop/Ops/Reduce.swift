/// Reductions over chosen axes (all axes when none are given), with or without keeping the
/// reduced axes as size 1. Input elements map to outputs through the kept shape, broadcast back.
public struct Reduce: Op {
    public enum Kind: Int32, Sendable, CaseIterable {
        case sum = 0, mean, max, min, logsumexp
    }

    public var kind: Kind
    /// Axes to reduce, negative ones counted from the end; empty means every axis.
    public var axes: [Int]
    public var keepDimensions: Bool

    public init(_ kind: Kind, axes: [Int] = [], keepDimensions: Bool = false) {
        self.kind = kind
        self.axes = axes
        self.keepDimensions = keepDimensions
    }

    public var name: String {
        switch kind {
        case .sum: "sum"
        case .mean: "mean"
        case .max: "max"
        case .min: "min"
        case .logsumexp: "logsumexp"
        }
    }

    /// The input's shape with every reduced axis set to 1.
    func keptShape(_ input: Shape) throws -> Shape {
        var dims = input.dims
        if axes.isEmpty { return try Shape(dims.map { _ in 1 }) }
        for axis in axes {
            let a = axis < 0 ? axis + input.rank : axis
            guard a >= 0 && a < input.rank else {
                throw BackpropError.shape("\(name): axis \(axis) is out of range for shape \(input)")
            }
            guard dims[a] != 0 else {
                throw BackpropError.invalidArgument("\(name): axis \(axis) appears twice")
            }
            dims[a] = 0  // marked; set to 1 below
        }
        return try Shape(dims.map { $0 == 0 ? 1 : $0 })
    }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        let kept = try keptShape(inputs[0])
        if keepDimensions { return kept }
        let reduced = Set(axes.map { $0 < 0 ? $0 + inputs[0].rank : $0 })
        let all = axes.isEmpty
        return try Shape(kept.dims.indices.filter { !all && !reduced.contains($0) }.map { kept.dims[$0] })
    }

    /// max/min keep the number of tied maxima per output; logsumexp keeps the shift.
    public func scratchCount(_ inputs: [Shape]) -> Int {
        switch kind {
        case .max, .min, .logsumexp: (try? keptShape(inputs[0]).count) ?? 0
        case .sum, .mean: 0
        }
    }

    public func forward<T: Scalar>(_ f: Frame<T>) throws {
        let x = f.input(0), out = f.output, input = f.inputShape(0)
        let kept = try keptShape(input)
        let perOutput = T(input.count / max(kept.count, 1))
        switch kind {
        case .sum, .mean:
            out.update(repeating: 0, count: kept.count)
            forEachBroadcast(input, input, kept) { i, _, io in out[io] += x[i] }
            if kind == .mean { for o in 0..<kept.count { out[o] /= perOutput } }
        case .max, .min:
            let ties = f.scratch
            out.update(repeating: kind == .max ? -T.infinity : T.infinity, count: kept.count)
            forEachBroadcast(input, input, kept) { i, _, io in
                if kind == .max ? x[i] > out[io] : x[i] < out[io] { out[io] = x[i] }
            }
            ties.update(repeating: 0, count: kept.count)
            forEachBroadcast(input, input, kept) { i, _, io in if x[i] == out[io] { ties[io] += 1 } }
        case .logsumexp:
            let shift = f.scratch
            shift.update(repeating: -T.infinity, count: kept.count)
            forEachBroadcast(input, input, kept) { i, _, io in if x[i] > shift[io] { shift[io] = x[i] } }
            for o in 0..<kept.count where !shift[o].isFinite { shift[o] = 0 }
            out.update(repeating: 0, count: kept.count)
            forEachBroadcast(input, input, kept) { i, _, io in out[io] += T.exp(x[i] - shift[io]) }
            for o in 0..<kept.count { out[o] = shift[o] + T.log(out[o]) }
        }
    }

    /// Sum and mean spread the gradient evenly; max and min route it to the chosen elements,
    /// split evenly among ties (PyTorch's amax/amin rule); logsumexp weighs it by softmax.
    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gx = f.inputGradient(0), let kept = try? keptShape(f.inputShape(0)) else { return }
        let x = f.input(0), out = f.output, g = f.outputGradient, input = f.inputShape(0)
        switch kind {
        case .sum:
            forEachBroadcast(input, input, kept) { i, _, io in gx[i] += g[io] }
        case .mean:
            let perOutput = T(input.count / max(kept.count, 1))
            forEachBroadcast(input, input, kept) { i, _, io in gx[i] += g[io] / perOutput }
        case .max, .min:
            let ties = f.scratch
            forEachBroadcast(input, input, kept) { i, _, io in
                if x[i] == out[io] { gx[i] += g[io] / ties[io] }
            }
        case .logsumexp:
            forEachBroadcast(input, input, kept) { i, _, io in gx[i] += g[io] * T.exp(x[i] - out[io]) }
        }
    }
}

extension Graph {
    /// Sum of all elements: a scalar.
    public func sum(_ x: NodeID) throws -> NodeID { try apply(Reduce(.sum), [x]) }
    /// Mean of all elements: a scalar.
    public func mean(_ x: NodeID) throws -> NodeID { try apply(Reduce(.mean), [x]) }

    public func reduce(_ x: NodeID, _ kind: Reduce.Kind, axes: [Int], keepDimensions: Bool = false) throws -> NodeID {
        try apply(Reduce(kind, axes: axes, keepDimensions: keepDimensions), [x])
    }
}
