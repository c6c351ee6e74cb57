/// Plain gradient descent on the flat parameter block: w ← w - learning_rate · ∇w.
public enum GradientDescent {
    /// Applies one step to every parameter of `graph`. Checks first: an invalid learning rate or a
    /// non-finite gradient throws and leaves every weight as it was.
    public static func step(_ graph: Graph, learningRate: Double) throws {
        try step(graph, learningRate: learningRate, gradientsKnownFinite: false)
    }

    /// step, skipping the check for NaN and infinity when the gradients were just checked (see
    /// `Optimizer.step(_:gradientsKnownFinite:)`).
    static func step(_ graph: Graph, learningRate: Double, gradientsKnownFinite: Bool) throws {
        try checkLearningRate(learningRate)
        switch graph.dtype {
        case .float32: try step(graph, Float(learningRate), gradientsKnownFinite)
        case .float64: try step(graph, learningRate, gradientsKnownFinite)
        }
        graph.parametersDidChange()
    }

    public static func checkLearningRate(_ learningRate: Double) throws {
        guard learningRate.isFinite, learningRate >= 0 else {
            throw BackpropError.invalidArgument("learning rate must be finite and not negative, got \(learningRate)")
        }
    }

    private static func step<T: Scalar>(_ graph: Graph, _ learningRate: T, _ gradientsKnownFinite: Bool) throws {
        let w = graph.parameterValues.typed(T.self), g = graph.parameterGradients.typed(T.self)
        let n = graph.parameterCount
        if !gradientsKnownFinite, let bad = firstNonFinite(g, n) {
            throw BackpropError.nonFinite("gradient element \(bad) of the parameters is \(g[bad]); no weight was changed")
        }
        for i in 0..<n { w[i] -= learningRate * g[i] }
    }
}

/// The index of the first NaN or infinite element, or nil when all are finite.
func firstNonFinite<T: Scalar>(_ x: UnsafePointer<T>, _ count: Int) -> Int? {
    let allFinite = switch T.self {
    case is Float.Type: exponentsAreFinite(UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self), count, mask: 0x7F80_0000)
    case is Double.Type: exponentsAreFinite(UnsafeRawPointer(x).assumingMemoryBound(to: UInt64.self), count, mask: 0x7FF0_0000_0000_0000)
    default: (0..<count).allSatisfy { x[$0].isFinite }
    }
    return allFinite ? nil : (0..<count).first { !x[$0].isFinite }
}

/// True when no element has every exponent bit set (the encoding of NaN and infinity). With
/// the exponent bits alone, adding the lowest exponent bit carries into the top bit exactly
/// when all of them are set; OR-ing those sums is plain integer work that vectorizes with the
/// baseline x86-64 instructions, where a floating-point reduction may not be reordered.
@inline(__always)
private func exponentsAreFinite<U: FixedWidthInteger & UnsignedInteger>(_ bits: UnsafePointer<U>, _ count: Int, mask: U) -> Bool {
    let lowestExponentBit = mask & (~mask &+ 1)
    var carries: U = 0
    for i in 0..<count { carries |= (bits[i] & mask) &+ lowestExponentBit }
    return carries >> (U.bitWidth - 1) == 0
}
