/// Per-layer gradient health for one step: the L2 norm of each parameterized layer's gradients,
/// and the ratio ‖update‖ / ‖weights‖ of that step (around 1e-3 is the usual healthy range).
struct LayerHealth {
    /// Room for the flat parameter block before and after a step, and for its gradients:
    /// allocated once per fit, before training starts.
    struct Buffers {
        let before: CheckedArray<Float>
        let after: CheckedArray<Float>
        let gradients: CheckedArray<Float>

        init(parameterCount: Int) throws {
            before = try CheckedArray(zeros: parameterCount)
            after = try CheckedArray(zeros: parameterCount)
            gradients = try CheckedArray(zeros: parameterCount)
        }
    }

    var gradientNorms: [Double] = []
    var updateRatios: [Double] = []

    init() {}

    /// Measures `network` after an optimizer step whose starting parameters are in
    /// `buffers.before`; the gradients are still those the step used.
    init(_ network: Network, _ buffers: Buffers) throws {
        let before = buffers.before, after = buffers.after, gradients = buffers.gradients
        try network.graph.copyParameters(into: after.buffer)
        try network.graph.copyParameterGradients(into: gradients.buffer)
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
