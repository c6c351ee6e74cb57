/// Checks the analytic gradients of a scalar node against central finite differences:
/// for every element x of every input and parameter the root depends on,
///     numeric = (f(x + eps) - f(x - eps)) / (2 eps),
/// and |analytic - numeric| must be at most atol + rtol · |numeric| (PyTorch's gradcheck rule).
public struct GradientCheckResult: Sendable {
    /// The largest |analytic - numeric| seen.
    public var maxAbsoluteError = 0.0
    /// The element that failed worst, relative to its tolerance, if any failed.
    public var worst: (node: NodeID, index: Int, analytic: Double, numeric: Double)?
    /// Elements compared.
    public var checked = 0

    public var passed: Bool { worst == nil }
}

extension Graph {
    /// Runs the check described on `GradientCheckResult`. Afterwards leaf values are as before,
    /// and the gradients of the leaves hold the analytic gradient of `root` (they were zeroed
    /// first). Use float64 graphs: float32 needs a far larger eps and looser tolerances.
    public func checkGradients(of root: NodeID, eps: Double = 1e-6, atol: Double = 1e-5,
                               rtol: Double = 1e-3) throws -> GradientCheckResult {
        try check(root)
        guard eps > 0, eps.isFinite, atol >= 0, rtol >= 0 else {
            throw BackpropError.invalidArgument("eps must be positive and the tolerances not negative")
        }
        switch dtype {
        case .float32: return try checkGradients(Float.self, root, eps, atol, rtol)
        case .float64: return try checkGradients(Double.self, root, eps, atol, rtol)
        }
    }

    private func checkGradients<T: Scalar>(_: T.Type, _ root: NodeID, _ eps: Double, _ atol: Double,
                                           _ rtol: Double) throws -> GradientCheckResult {
        try forward(through: root)
        zeroGradients()
        try backward(from: root)
        let leaves = ancestors(of: root).filter { nodes[$0].isLeaf && gradients[$0] != nil }
        var result = GradientCheckResult()
        var worstRatio = 1.0
        for leaf in leaves {
            let x = values[leaf]!.storage.typed(T.self) + values[leaf]!.offset
            let analytic = gradients[leaf]!.storage.typed(T.self) + gradients[leaf]!.offset
            for i in 0..<nodes[leaf].shape.count {
                let original = x[i]
                x[i] = original + T(eps)
                let plus = try rootValue(T.self, root, changed: leaf)
                x[i] = original - T(eps)
                let minus = try rootValue(T.self, root, changed: leaf)
                x[i] = original
                invalidateDependents(of: leaf)
                let numeric = (plus - minus) / (2 * eps)
                let error = Swift.abs(Double(analytic[i]) - numeric)
                result.maxAbsoluteError = max(result.maxAbsoluteError, error)
                result.checked += 1
                let ratio = error / (atol + rtol * Swift.abs(numeric))
                if ratio > worstRatio || (ratio.isNaN && result.worst == nil) {
                    worstRatio = ratio.isNaN ? .infinity : ratio
                    result.worst = (leaf, i, Double(analytic[i]), numeric)
                }
            }
        }
        try forward(through: root)
        return result
    }

    private func rootValue<T: Scalar>(_: T.Type, _ root: NodeID, changed leaf: NodeID) throws -> Double {
        invalidateDependents(of: leaf)
        try forward(through: root)
        return Double(values[root]!.storage.typed(T.self)[values[root]!.offset])
    }
}
