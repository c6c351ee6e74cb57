import Testing
@testable import Backprop

/// Every op's backward against central finite differences, in float64, on shapes that include
/// broadcasting edge cases (scalars, rows, size-1 axes, a batch of 1).
@Suite struct GradientCheckTests {
    static let broadcastPairs: [([Int], [Int])] = [
        ([3, 4], [3, 4]), ([3, 4], [4]), ([4], [3, 4]), ([3, 4], []), ([], [3, 4]),
        ([3, 1], [1, 4]), ([2, 3, 4], [3, 1]), ([1, 4], [1, 4]), ([], []),
    ]

    @Test(arguments: ["add", "sub", "mul", "div", "maximum", "minimum", "pow"], broadcastPairs)
    func binaryOpGradientsMatchFiniteDifferences(op: String, shapes: ([Int], [Int])) throws {
        var b = GraphBuilder(seed: 7)
        let x = try b.input(shapes.0)
        // Keep divisors away from zero.
        let y = op == "div" ? try b.input(shapes.1, in: 0.5...2) : try b.input(shapes.1)
        if op == "pow" { try b.set(x, b.random(count: try b.graph.shape(of: x).count, in: 0.5...2)) }
        let g = b.graph
        let out = switch op {
        case "add": try g.add(x, y)
        case "sub": try g.sub(x, y)
        case "mul": try g.mul(x, y)
        case "div": try g.div(x, y)
        case "maximum": try g.maximum(x, y)
        case "pow": try g.pow(x, y)
        default: try g.minimum(x, y)
        }
        try expectGradientsMatchFiniteDifferences(g, try b.weightedSum(out))
    }

    static let unaryOps = ["neg", "abs", "exp", "log", "sqrt", "square", "reciprocal", "pow", "relu",
                           "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "softplus", "sigmoid", "tanh"]

    @Test(arguments: unaryOps, [[2, 3], [], [1, 5]])
    func unaryOpGradientsMatchFiniteDifferences(op: String, dims: [Int]) throws {
        var b = GraphBuilder(seed: 11)
        let positiveOnly = ["log", "sqrt", "pow", "reciprocal"].contains(op)
        let x = positiveOnly ? try b.input(dims, in: 0.2...3) : try b.input(dims, in: -3...3)
        let g = b.graph
        let out = switch op {
        case "neg": try g.neg(x)
        case "abs": try g.abs(x)
        case "exp": try g.exp(x)
        case "log": try g.log(x)
        case "sqrt": try g.sqrt(x)
        case "square": try g.square(x)
        case "reciprocal": try g.reciprocal(x)
        case "pow": try g.pow(x, 2.5)
        case "relu": try g.relu(x)
        case "leaky_relu": try g.leakyReLU(x, slope: 0.1)
        case "elu": try g.elu(x, alpha: 1.5)
        case "gelu": try g.gelu(x)
        case "gelu_tanh": try g.gelu(x, tanhApproximation: true)
        case "silu": try g.silu(x)
        case "softplus": try g.softplus(x)
        case "sigmoid": try g.sigmoid(x)
        default: try g.tanh(x)
        }
        try expectGradientsMatchFiniteDifferences(g, try b.weightedSum(out))
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matmulGradientsMatchFiniteDifferences(transposes: (Bool, Bool)) throws {
        var b = GraphBuilder(seed: 3)
        let (m, k, n) = (3, 4, 2)
        let a = try b.input(transposes.0 ? [k, m] : [m, k])
        let c = try b.input(transposes.1 ? [n, k] : [k, n])
        let product = try b.graph.matmul(a, c, transposeA: transposes.0, transposeB: transposes.1)
        #expect(try b.graph.shape(of: product).dims == [m, n])
        try expectGradientsMatchFiniteDifferences(b.graph, try b.weightedSum(product))
    }

    /// Shapes past the toy sizes above, as dense layers use them.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func largerMatmulGradientsMatchFiniteDifferences(transposes: (Bool, Bool)) throws {
        var b = GraphBuilder(seed: 19)
        let (m, k, n) = (17, 20, 15)
        let a = try b.input(transposes.0 ? [k, m] : [m, k])
        let c = try b.input(transposes.1 ? [n, k] : [k, n])
        let product = try b.graph.matmul(a, c, transposeA: transposes.0, transposeB: transposes.1)
        try expectGradientsMatchFiniteDifferences(b.graph, try b.weightedSum(product))
    }

    @Test(arguments: [[4, 3], [], [1, 1, 5]])
    func reductionGradientsMatchFiniteDifferences(dims: [Int]) throws {
        var b = GraphBuilder(seed: 5)
        let x = try b.input(dims)
        let s = try b.graph.sum(x), m = try b.graph.mean(x)
        // A nonlinear function of both, so the upstream gradient is not one.
        let root = try b.graph.mul(try b.graph.exp(s), try b.graph.tanh(m))
        try expectGradientsMatchFiniteDifferences(b.graph, root)
    }

    @Test(arguments: Reduction.allCases)
    func mseLossGradientsMatchFiniteDifferences(reduction: Reduction) throws {
        var b = GraphBuilder(seed: 9)
        let p = try b.input([4, 3]), t = try b.input([4, 3])
        var root = try b.graph.mseLoss(p, t, reduction: reduction)
        if reduction == .none { root = try b.weightedSum(root) }
        try expectGradientsMatchFiniteDifferences(b.graph, root)
    }

    @Test(arguments: Reduction.allCases, [1, 5])
    func crossEntropyGradientsMatchFiniteDifferences(reduction: Reduction, batch: Int) throws {
        var b = GraphBuilder(seed: 13)
        let logits = try b.input([batch, 4], in: -3...3)
        let labels = try b.constant((0..<batch).map { Double($0 % 4) }, [batch])
        var root = try b.graph.crossEntropy(logits, labels, reduction: reduction)
        if reduction == .none { root = try b.weightedSum(root) }
        try expectGradientsMatchFiniteDifferences(b.graph, root)
    }

    @Test(arguments: [(5, 3, 4), (1, 7, 2), (64, 30, 20)])
    func linearGradientsMatchFiniteDifferences(sizes: (Int, Int, Int)) throws {
        var b = GraphBuilder(seed: 73)
        let (batch, inputs, outputs) = sizes
        let x = try b.input([batch, inputs]), w = try b.input([outputs, inputs]), bias = try b.input([outputs])
        let fused = try b.graph.linear(x, weight: w, bias: bias)
        let composed = try b.graph.add(try b.graph.matmul(x, w, transposeB: true), bias)
        try b.graph.forward()
        let f = try values(b.graph, fused), c = try values(b.graph, composed)
        for (u, v) in zip(f, c) { #expect(abs(u - v) <= 1e-12) }
        try expectGradientsMatchFiniteDifferences(b.graph, try b.weightedSum(fused))
    }

    @Test func denseLayerCompositionMatchesFiniteDifferences() throws {
        // x Wᵀ + b through tanh into a cross-entropy: the network's own structure.
        var b = GraphBuilder(seed: 17)
        let g = b.graph
        let x = try b.input([5, 3]), w = try g.parameter(try Shape([4, 3])), bias = try g.parameter(try Shape([4]))
        try b.set(w, b.random(count: 12))
        try b.set(bias, b.random(count: 4))
        let hidden = try g.tanh(try g.add(try g.matmul(x, w, transposeB: true), bias))
        let labels = try b.constant([0, 1, 2, 3, 1], [5])
        try expectGradientsMatchFiniteDifferences(g, try g.crossEntropy(hidden, labels))
    }
}
