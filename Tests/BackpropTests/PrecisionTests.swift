import Testing
@testable import Backprop

/// The float32 path against the float64 path: the same graph, built twice from the same seeded
/// values, must agree in value and gradient to float32's precision, for every op family.
@Suite struct PrecisionTests {
    typealias Build = @Sendable (inout GraphBuilder) throws -> NodeID

    static let cases: [(String, Build)] = [
        ("arithmetic", { b in
            let x = try b.input([3, 4]), y = try b.input([4], in: 0.5...2)
            return try b.graph.div(try b.graph.sub(try b.graph.mul(x, y), try b.graph.pow(y, try b.input([], in: 1...2))), y)
        }),
        ("activations", { b in
            let x = try b.input([2, 5], in: -3...3)
            let parts = [try b.graph.gelu(x), try b.graph.gelu(x, tanhApproximation: true), try b.graph.silu(x),
                         try b.graph.softplus(x), try b.graph.elu(x), try b.graph.leakyReLU(x), try b.graph.tanh(x)]
            return try parts.dropFirst().reduce(parts[0]) { try b.graph.add($0, $1) }
        }),
        ("reductions", { b in
            let x = try b.input([2, 3, 4])
            let s = try b.graph.reduce(x, .logsumexp, axes: [1], keepDimensions: true)
            return try b.graph.add(s, try b.graph.reduce(x, .max, axes: [1], keepDimensions: true))
        }),
        ("layout and matmul", { b in
            let x = try b.input([2, 3, 4]), w = try b.input([4, 5])
            let product = try b.graph.matmul(try b.graph.permute(x, [1, 0, 2]), w)
            return try b.graph.concat([try b.graph.slice(product, axis: 2, start: 1, end: 4), product], axis: 2)
        }),
        ("normalization", { b in
            let x = try b.input([3, 6])
            return try b.graph.layerNorm(try b.graph.softmax(x, axis: 0), normalizedRank: 1)
        }),
        ("losses", { b in
            let logits = try b.input([4, 3]), labels = try b.constant([0, 2, 1, 2], [4])
            let p = try b.input([4, 3], in: 0.1...0.9), t = try b.input([4, 3], in: 0...1)
            let losses = [try b.graph.crossEntropy(logits, labels), try b.graph.bceLoss(p, t),
                          try b.graph.bceWithLogitsLoss(logits, t), try b.graph.huberLoss(logits, t, delta: 0.5)]
            return try losses.dropFirst().reduce(losses[0]) { try b.graph.add($0, $1) }
        }),
    ]

    @Test(arguments: cases.indices)
    func float32AgreesWithFloat64(index: Int) throws {
        let (name, build) = Self.cases[index]
        func run(_ dtype: DType) throws -> (value: [Double], gradients: [[Double]]) {
            var b = GraphBuilder(dtype: dtype, seed: 71)
            let out = try build(&b)
            let root = try b.weightedSum(out)
            try b.graph.forward()
            try b.graph.backward(from: root)
            let leaves = (0..<b.graph.nodeCount).filter {
                b.graph.nodes[$0].isLeaf && b.graph.nodes[$0].requiresGradient
            }
            return (try values(b.graph, root), try leaves.map { try gradient(b.graph, $0) })
        }
        let single = try run(.float32), double = try run(.float64)
        #expect(abs(single.value[0] - double.value[0]) <= 1e-4 * max(1, abs(double.value[0])), "\(name) value")
        for (g32, g64) in zip(single.gradients, double.gradients) {
            for (a, b) in zip(g32, g64) { #expect(abs(a - b) <= 1e-4 + 1e-3 * abs(b), "\(name) gradient") }
        }
    }

    /// A float32 loss over millions of elements is summed in double: naive float addition of
    /// 2^22 values of about 0.1 drifts by several percent.
    @Test func float32LossesOfLargeBatchesDoNotDrift() throws {
        let rows = 1 << 22
        let graph = Graph(dtype: .float32)
        let p = try graph.input(try Shape([rows, 1])), t = try graph.constant(try Shape([rows, 1]))
        let logits = try graph.input(try Shape([rows, 2])), labels = try graph.constant(try Shape([rows]))
        let mse = try graph.mseLoss(p, t), crossEntropy = try graph.crossEntropy(logits, labels)
        // (p - t)² = 0.1 in float32 each; cross-entropy with logits (0, 1) and label 0 is
        // log(1 + e) each.
        let difference = Float(0.1).squareRoot()
        try graph.setValue(p, from: [Float](repeating: difference, count: rows), count: rows)
        try graph.setValue(t, from: [Float](repeating: 0, count: rows), count: rows)
        try graph.setValue(logits, from: (0..<2 * rows).map { Float($0 % 2) }, count: 2 * rows)
        try graph.setValue(labels, from: [Float](repeating: 0, count: rows), count: rows)
        try graph.forward()
        var value: Float = 0
        try graph.value(mse, into: &value, count: 1)
        let element = Double(difference * difference)
        #expect(abs(Double(value) - element) <= 1e-6 * element)
        try graph.value(crossEntropy, into: &value, count: 1)
        let expected = Double(Float.log(1 + Float.exp(1)))
        #expect(abs(Double(value) - expected) <= 1e-6 * expected)
    }
}
