/// Plain gradient descent on the flat parameter block: w ← w - learning_rate · ∇w.
public enum GradientDescent {
    /// Applies one step to every parameter of `graph`. Checks first: an invalid learning rate or a
    /// non-finite gradient throws and leaves every weight as it was.
    public static func step(_ graph: Graph, learningRate: Double) throws {
        try checkLearningRate(learningRate)
        switch graph.dtype {
        case .float32: try step(graph, Float(learningRate))
        case .float64: try step(graph, learningRate)
        }
        graph.parametersDidChange()
    }

    public static func checkLearningRate(_ learningRate: Double) throws {
        guard learningRate.isFinite, learningRate >= 0 else {
            throw BackpropError.invalidArgument("learning rate must be finite and not negative, got \(learningRate)")
        }
    }

    private static func step<T: Scalar>(_ graph: Graph, _ learningRate: T) throws {
        let w = graph.parameterValues.typed(T.self), g = graph.parameterGradients.typed(T.self)
        let n = graph.parameterCount
        if let bad = firstNonFinite(g, n) {
            throw BackpropError.nonFinite("gradient element \(bad) of the parameters is \(g[bad]); no weight was changed")
        }
        for i in 0..<n { w[i] -= learningRate * g[i] }
    }
}

/// The index of the first NaN or infinite element, or nil when all are finite.
func firstNonFinite<T: Scalar>(_ x: UnsafePointer<T>, _ count: Int) -> Int? {
    // A sum is NaN or infinite if any term is (or it overflows), so the common case is one pass.
    var sum: T = 0
    for i in 0..<count { sum += x[i] * 0 }
    guard !sum.isFinite else { return nil }
    return (0..<count).first { !x[$0].isFinite }
}
