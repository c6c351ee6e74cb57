/// Gradient clipping on a graph's parameter gradients, as torch.nn.utils.clip_grad_norm_ and
/// clip_grad_value_.
public enum GradientClipping {
    /// Scales every parameter gradient by max_norm / (total_norm + 1e-6) when the global L2 norm
    /// exceeds `maxNorm`. Returns the norm before clipping. A non-finite norm throws and changes
    /// nothing.
    @discardableResult
    public static func clipNorm(_ graph: Graph, maxNorm: Double) throws -> Double {
        guard maxNorm.isFinite, maxNorm > 0 else {
            throw BackpropError.invalidArgument("max norm must be positive and finite, got \(maxNorm)")
        }
        return switch graph.dtype {
        case .float32: try clipNorm(graph.parameterGradients.typed(Float.self), graph.parameterCount, maxNorm)
        case .float64: try clipNorm(graph.parameterGradients.typed(Double.self), graph.parameterCount, maxNorm)
        }
    }

    /// Clamps every parameter gradient to [-value, value].
    public static func clipValue(_ graph: Graph, value: Double) throws {
        guard value.isFinite, value > 0 else {
            throw BackpropError.invalidArgument("clip value must be positive and finite, got \(value)")
        }
        switch graph.dtype {
        case .float32: clamp(graph.parameterGradients.typed(Float.self), graph.parameterCount, Float(value))
        case .float64: clamp(graph.parameterGradients.typed(Double.self), graph.parameterCount, value)
        }
    }

    /// The global L2 norm of `count` values, accumulated in double precision.
    static func norm<T: Scalar>(_ g: UnsafePointer<T>, _ count: Int) -> Double {
        var sum = 0.0
        for i in 0..<count { sum += Double(g[i]) * Double(g[i]) }
        return sum.squareRoot()
    }

    private static func clipNorm<T: Scalar>(_ g: UnsafeMutablePointer<T>, _ count: Int, _ maxNorm: Double) throws -> Double {
        let total = norm(g, count)
        guard total.isFinite else {
            throw BackpropError.nonFinite("the gradient norm is \(total); no gradient was clipped")
        }
        let coefficient = maxNorm / (total + 1e-6)
        if coefficient < 1 {
            for i in 0..<count { g[i] *= T(coefficient) }
        }
        return total
    }

    private static func clamp<T: Scalar>(_ g: UnsafeMutablePointer<T>, _ count: Int, _ value: T) {
        for i in 0..<count { g[i] = min(max(g[i], -value), value) }
    }
}
