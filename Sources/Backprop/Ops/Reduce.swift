/// Reductions of every element to a scalar.

/// The sum of all elements; each input element's gradient is the upstream gradient.
public struct SumAll: Op {
    public var name: String { "sum" }
    public func outputShape(_ inputs: [Shape]) throws -> Shape { .scalar }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let x = f.input(0)
        var total: T = 0
        for i in 0..<f.inputShape(0).count { total += x[i] }
        f.output[0] = total
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gx = f.inputGradient(0) else { return }
        let g = f.outputGradient[0]
        for i in 0..<f.inputShape(0).count { gx[i] += g }
    }
}

/// The mean of all elements; each input element's gradient is the upstream gradient / count.
public struct MeanAll: Op {
    public var name: String { "mean" }
    public func outputShape(_ inputs: [Shape]) throws -> Shape { .scalar }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let x = f.input(0), n = f.inputShape(0).count
        var total: T = 0
        for i in 0..<n { total += x[i] }
        f.output[0] = total / T(n)
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gx = f.inputGradient(0) else { return }
        let n = f.inputShape(0).count
        let g = f.outputGradient[0] / T(n)
        for i in 0..<n { gx[i] += g }
    }
}

extension Graph {
    public func sum(_ x: NodeID) throws -> NodeID { try apply(SumAll(), [x]) }
    public func mean(_ x: NodeID) throws -> NodeID { try apply(MeanAll(), [x]) }
}
