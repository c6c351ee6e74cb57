/// Per-layer gradient health for one step: the L2 norm of each parameterized layer's gradients,
/// and the ratio ‖update‖ / ‖weights‖ of that step (around 1e-3 is the usual healthy range).
struct LayerHealth {
    var gradientNorms: [Double] = []
    var updateRatios: [Double] = []

    init() {}

    /// Measures `network` after an optimizer step whose starting parameters were `before` (the
    /// flat block); the gradients are still those the step used.
    init(_ network: Network, parametersBefore before: [Float]) throws {
        let after = network.copyOfParameters()
        var gradients = [Float](repeating: 0, count: network.parameterCount)
        try gradients.withUnsafeMutableBufferPointer { try network.graph.copyParameterGradients(into: $0) }
        for layer in network.layers {
            let nodes = [layer.weight, layer.bias].compactMap { $0 }
            guard !nodes.isEmpty else { continue }
            var gradientSquares = 0.0, updateSquares = 0.0, weightSquares = 0.0
            for node in nodes {
                guard let offset = network.graph.parameterOffsets[node] else { continue }
                let count = try network.graph.shape(of: node).count
                for i in offset..<(offset + count) {
                    gradientSquares += Double(gradients[i]) * Double(gradients[i])
                    let change = Double(after[i]) - Double(before[i])
                    updateSquares += change * change
                    weightSquares += Double(before[i]) * Double(before[i])
                }
            }
            gradientNorms.append(gradientSquares.squareRoot())
            updateRatios.append(weightSquares > 0 ? (updateSquares / weightSquares).squareRoot() : .infinity)
        }
    }
}
