/// Comparisons, `where`, and stop-gradient: ops that choose or test but pass no gradient to
/// what they test.

/// Which comparison a `Compare` op makes.
public enum Comparison: Int32, Sendable, CaseIterable {
    case equal = 0, notEqual, less, lessEqual, greater, greaterEqual

    var name: String {
        switch self {
        case .equal: "eq"
        case .notEqual: "ne"
        case .less: "lt"
        case .lessEqual: "le"
        case .greater: "gt"
        case .greaterEqual: "ge"
        }
    }
}

/// 1 where the comparison holds, else 0, with broadcasting. Its output carries no gradient.
public struct Compare: Op {
    public var comparison: Comparison
    public init(_ comparison: Comparison) { self.comparison = comparison }
    public var name: String { comparison.name }
    public var propagatesGradient: Bool { false }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard let shape = Shape.broadcast(inputs[0], inputs[1]) else {
            throw BackpropError.shape("\(name): shapes \(inputs[0]) and \(inputs[1]) do not broadcast")
        }
        return shape
    }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let a = f.input(0), b = f.input(1), out = f.output
        let test: (T, T) -> Bool = switch comparison {
        case .equal: (==)
        case .notEqual: (!=)
        case .less: (<)
        case .lessEqual: (<=)
        case .greater: (>)
        case .greaterEqual: (>=)
        }
        forEachBroadcast(f.outputShape, f.inputShape(0), f.inputShape(1)) { i, ia, ib in
            out[i] = test(a[ia], b[ib]) ? 1 : 0
        }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {}
}

/// condition != 0 ? a : b, with all three broadcast together. The gradient goes only to the
/// branch taken, so NaN or infinity in the other branch never leaks into it; the condition gets
/// none.
public struct Where: Op {
    public var name: String { "where" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard let ab = Shape.broadcast(inputs[1], inputs[2]), let shape = Shape.broadcast(inputs[0], ab) else {
            throw BackpropError.shape("where: condition \(inputs[0]), \(inputs[1]) and \(inputs[2]) do not broadcast")
        }
        return shape
    }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let c = f.input(0), a = f.input(1), b = f.input(2), out = f.output
        forEachBroadcast3(f) { i, ic, ia, ib in out[i] = c[ic] != 0 ? a[ia] : b[ib] }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        let c = f.input(0), g = f.outputGradient
        let ga = f.inputGradient(1), gb = f.inputGradient(2)
        forEachBroadcast3(f) { i, ic, ia, ib in
            if c[ic] != 0 { ga?[ia] += g[i] } else { gb?[ib] += g[i] }
        }
    }

    private func forEachBroadcast3<T: Scalar>(_ f: Frame<T>, _ body: (Int, Int, Int, Int) -> Void) {
        let out = f.outputShape, rank = out.rank
        let strides = (0..<3).map { broadcastStrides(f.inputShape($0), rank: rank, out: out) }
        var index = [Int](repeating: 0, count: rank)
        var offsets = [0, 0, 0]
        for i in 0..<out.count {
            body(i, offsets[0], offsets[1], offsets[2])
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                for k in 0..<3 { offsets[k] += strides[k][axis] }
                if index[axis] < out.dims[axis] { break }
                for k in 0..<3 { offsets[k] -= strides[k][axis] * out.dims[axis] }
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// The input's values with no gradient behind them (PyTorch's `detach`).
public struct Detach: Op {
    public var name: String { "detach" }
    public var propagatesGradient: Bool { false }
    public func outputShape(_ inputs: [Shape]) throws -> Shape { inputs[0] }
    public func forward<T: Scalar>(_ f: Frame<T>) { f.output.update(from: f.input(0), count: f.count) }
    public func backward<T: Scalar>(_ f: Frame<T>) {}
}

extension Graph {
    public func compare(_ a: NodeID, _ b: NodeID, _ comparison: Comparison) throws -> NodeID {
        try apply(Compare(comparison), [a, b])
    }
    public func `where`(_ condition: NodeID, _ a: NodeID, _ b: NodeID) throws -> NodeID {
        try apply(Where(), [condition, a, b])
    }
    public func detach(_ x: NodeID) throws -> NodeID { try apply(Detach(), [x]) }
}
