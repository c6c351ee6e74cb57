import BackpropKernels
import Testing
@testable import Backprop

/// A network of dense layers trains through its planned step (DenseTrainingPlan), which
/// promises the graph walk's results to the last bit: every node's value and gradient, and the
/// loss. Here the walk (forward, then backward) and the plan (the forward and backward of a
/// training step) train twin networks, at sizes where the library's own product stores the
/// weight and input gradients and ReLU's backward runs fused with the bias gradient.
struct PlannedStepTests {
    /// Every node's value and gradient, as their bit patterns.
    func everything(_ net: Network) throws -> [[UInt32]] {
        var out: [[UInt32]] = []
        for node in 0..<net.graph.nodeCount {
            let count = try net.graph.shape(of: node).count
            var value = [Float](repeating: 0, count: count), gradient = value
            try net.graph.value(node, into: &value, count: count)
            out.append(value.map(\.bitPattern))
            if (try? net.graph.gradient(node, into: &gradient, count: count)) != nil { // not the input's
                out.append(gradient.map(\.bitPattern))
            }
        }
        return out
    }

    /// On one thread the planned step's ReLU layers skip the upstream's zeros in their weight
    /// gradients (bpk_sgemm_sparse_at); on two they do not. The cases run one at a time, as the
    /// thread count is the process's.
    @Test(.serialized, arguments: avx512Choices, [1, 2])
    func thePlannedStepGivesTheWalksBits(avx512: Bool, threads: Int) throws {
        let threadsBefore = Parallelism.threadCount
        Parallelism.setThreadCount(threads)
        defer { Parallelism.setThreadCount(threadsBefore) }
        let (inputs, batch, classes) = (37, 19, 5)
        func network() throws -> Network {
            let net = try Network(inputWidth: inputs, seed: 9)
            try net.addDense(units: 40, activation: .relu)
            try net.addDense(units: 24, activation: .tanh)
            try net.addDense(units: 33, activation: .relu)
            try net.addDense(units: classes, activation: .none)
            try net.setLoss(.crossEntropy)
            return net
        }
        let walked = try network(), planned = try network()
        var generator = Generator(seed: 3)
        bpk_allow_avx512(avx512)
        defer { bpk_allow_avx512(true) }
        for step in 0..<3 {
            // Inputs with exact zeros and negative zeros, where ReLU's derivative and the
            // +0 of a stored sum matter.
            let x = (0..<batch * inputs).map { i -> Float in
                i % 7 == 0 ? (i % 2 == 0 ? 0 : -0.0) : Float(generator.nextUnit() * 4 - 2)
            }
            let labels = (0..<batch).map { Int32(($0 + step) % classes) }
            walked.zeroGradients()
            _ = try walked.forward(x, batch: batch)
            let loss = try walked.backward(labels: labels)
            let result = try x.withUnsafeBufferPointer { xs in
                try labels.withUnsafeBufferPointer { ys in
                    try planned.forwardBackward(xs, batch: batch, targets: .labels(ys), outputs: nil)
                }
            }
            #expect(result.loss == loss)
            #expect(result.gradientsKnownFinite)
            #expect(try everything(planned) == everything(walked), "step \(step)")
            try walked.update(learningRate: 0.1)
            try planned.update(learningRate: 0.1)
        }
    }

    /// bpk_relu_backward against ReLU's op adding into zeros and the bias gradient's loop, for
    /// widths that end inside and at the edge of a vector, with infinite, NaN and signed-zero
    /// inputs and upstream values.
    @Test(arguments: [1, 7, 8, 9, 16, 17, 40], avx512Choices)
    func reluBackwardGivesTheOpsBits(columns: Int, avx512: Bool) {
        let rows = 5, count = rows * columns
        let special: [Float] = [0, -0.0, .infinity, -.infinity, .nan, 1e-40, -1e-40]
        var generator = Generator(seed: UInt64(columns))
        func values(_ offset: Int) -> [Float] {
            (0..<count).map { i in i % 3 == 0 ? special[(i / 3 + offset) % special.count] : Float(generator.nextUnit() * 2 - 1) }
        }
        let x = values(0), upstream = values(3)
        var y = [Float](repeating: 0, count: count)
        ReLU().forward(x, into: &y, count: count)
        var expected = [Float](repeating: 0, count: count), expectedBias = [Float](repeating: 0.5, count: columns)
        ReLU().backward(x: x, y: y, upstream: upstream, into: &expected, count: count)
        for r in 0..<rows { for j in 0..<columns { expectedBias[j] += expected[r * columns + j] } }
        var gradient = [Float](repeating: .nan, count: count), bias = [Float](repeating: 0.5, count: columns + 1)
        withAVX512(avx512) { bpk_relu_backward(y, upstream, &gradient, &bias, rows, columns) }
        #expect(bitsOrNaN(gradient) == bitsOrNaN(expected))
        #expect(bitsOrNaN(Array(bias.prefix(columns))) == bitsOrNaN(expectedBias))
        #expect(bias[columns] == 0.5) // nothing past the bias gradient
        #expect(expected.contains { $0.isNaN } && expected.contains { $0 != 0 && $0.isFinite })
    }

    /// The bits of each value, but one pattern for every NaN: a NaN's sign and payload follow
    /// the order of an addition's operands, which the compiler may swap.
    func bitsOrNaN(_ values: [Float]) -> [UInt32] {
        values.map { $0.isNaN ? Float.nan.bitPattern : $0.bitPattern }
    }
}
