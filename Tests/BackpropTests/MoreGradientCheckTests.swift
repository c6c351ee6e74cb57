import Testing
@testable import Backprop

/// Gradient checks for the ops beyond elementwise arithmetic: reductions over axes, layout ops,
/// batched matmul, softmax, normalization, selection and every loss.
@Suite struct MoreGradientCheckTests {
    static let reductionCases: [([Int], [Int], Bool)] = [
        ([3, 4], [], false), ([3, 4], [0], false), ([3, 4], [1], true), ([2, 3, 4], [0, 2], false),
        ([2, 3, 4], [-1], true), ([1, 5], [0], false), ([], [], false),
    ]

    @Test(arguments: Reduce.Kind.allCases, reductionCases)
    func reductionsOverAxesMatchFiniteDifferences(kind: Reduce.Kind, config: ([Int], [Int], Bool)) throws {
        var b = GraphBuilder(seed: 23)
        let x = try b.input(config.0)
        let out = try b.graph.reduce(x, kind, axes: config.1, keepDimensions: config.2)
        try expectGradientsMatchFiniteDifferences(b.graph, try b.weightedSum(out))
    }

    @Test func reductionShapesFollowNumPy() throws {
        var b = GraphBuilder()
        let x = try b.input([2, 3, 4])
        #expect(try b.graph.shape(of: b.graph.reduce(x, .sum, axes: [1])).dims == [2, 4])
        #expect(try b.graph.shape(of: b.graph.reduce(x, .max, axes: [1], keepDimensions: true)).dims == [2, 1, 4])
        #expect(try b.graph.shape(of: b.graph.reduce(x, .mean, axes: [])).dims == [])
        #expect(throws: BackpropError.self) { try b.graph.reduce(x, .sum, axes: [3]) }
        #expect(throws: BackpropError.self) { try b.graph.reduce(x, .sum, axes: [1, -2]) }
    }

    @Test func maxSplitsTheGradientAmongTies() throws {
        var b = GraphBuilder()
        let x = try b.input([4])
        try b.set(x, [1, 3, 3, 2])
        let root = try b.graph.reduce(x, .max, axes: [0])
        try b.graph.forward()
        try b.graph.backward(from: root)
        #expect(try gradient(b.graph, x) == [0, 0.5, 0.5, 0])
    }

    @Test func layoutOpsMatchFiniteDifferences() throws {
        var b = GraphBuilder(seed: 29)
        let g = b.graph
        let x = try b.input([2, 3, 4]), y = try b.input([2, 1, 4])
        let reshaped = try g.reshape(x, [6, 4])
        let permuted = try g.permute(x, [2, 0, 1])
        let joined = try g.concat([x, y, x], axis: 1)
        let sliced = try g.slice(x, axis: -1, start: 1, end: 3)
        let table = try b.input([5, 3])
        let indices = try b.constant([4, 0, 4, 2], [2, 2])
        let rows = try g.gather(table, indices)
        #expect(try g.shape(of: permuted).dims == [4, 2, 3])
        #expect(try g.shape(of: joined).dims == [2, 7, 4])
        #expect(try g.shape(of: sliced).dims == [2, 3, 2])
        #expect(try g.shape(of: rows).dims == [2, 2, 3])
        var terms: [NodeID] = []
        for node in [reshaped, permuted, joined, sliced, rows] { terms.append(try b.weightedSum(node)) }
        var root = terms[0]
        for t in terms.dropFirst() { root = try g.add(root, t) }
        try expectGradientsMatchFiniteDifferences(g, root)
    }

    @Test func permuteAndSliceMoveTheRightElements() throws {
        var b = GraphBuilder()
        let x = try b.constant([0, 1, 2, 3, 4, 5], [2, 3])
        let t = try b.graph.transpose(x), s = try b.graph.slice(x, axis: 1, start: 1, end: 3)
        try b.graph.forward()
        #expect(try values(b.graph, t) == [0, 3, 1, 4, 2, 5])
        #expect(try values(b.graph, s) == [1, 2, 4, 5])
    }

    @Test(arguments: [([2, 3, 4], [4, 5]), ([3, 4], [2, 4, 5]), ([2, 1, 3, 4], [3, 4, 2])])
    func batchedMatmulBroadcastsAndMatchesFiniteDifferences(shapes: ([Int], [Int])) throws {
        var b = GraphBuilder(seed: 31)
        let a = try b.input(shapes.0), c = try b.input(shapes.1)
        let product = try b.graph.matmul(a, c)
        try expectGradientsMatchFiniteDifferences(b.graph, try b.weightedSum(product))
    }

    @Test(arguments: [0, 1, -1], [false, true])
    func softmaxAlongAnyAxisMatchesFiniteDifferences(axis: Int, logarithm: Bool) throws {
        var b = GraphBuilder(seed: 37)
        let x = try b.input([2, 3, 4], in: -3...3)
        let y = logarithm ? try b.graph.logSoftmax(x, axis: axis) : try b.graph.softmax(x, axis: axis)
        try expectGradientsMatchFiniteDifferences(b.graph, try b.weightedSum(y))
    }

    @Test func softmaxIsStableForHugeLogits() throws {
        var b = GraphBuilder(dtype: .float32)
        let x = try b.input([1, 3])
        try b.set(x, [1e4, -1e4, 1e4])
        let s = try b.graph.softmax(x), l = try b.graph.logSoftmax(x)
        try b.graph.forward()
        #expect(try values(b.graph, s) == [0.5, 0, 0.5])
        let logs = try values(b.graph, l)
        #expect(isClose(logs[0], -Double(Float.log(2)), tolerance: 1e-6))
        #expect(isClose(logs[1], -2e4 - Double(Float.log(2)), tolerance: 1e-6))
    }

    @Test(arguments: [true, false])
    func layerNormMatchesFiniteDifferences(affine: Bool) throws {
        var b = GraphBuilder(seed: 41)
        let x = try b.input([3, 2, 4])
        let y: NodeID
        if affine {
            let w = try b.input([2, 4], in: 0.5...1.5), bias = try b.input([2, 4])
            y = try b.graph.layerNorm(x, weight: w, bias: bias)
        } else {
            y = try b.graph.layerNorm(x, normalizedRank: 1)
        }
        try expectGradientsMatchFiniteDifferences(b.graph, try b.weightedSum(y))
    }

    @Test func whereSendsGradientOnlyToTheBranchTaken() throws {
        var b = GraphBuilder(seed: 43)
        let g = b.graph
        let condition = try b.constant([1, 0, 1], [3]), a = try b.input([2, 3]), c = try b.input([])
        try expectGradientsMatchFiniteDifferences(g, try b.weightedSum(try g.where(condition, a, c)))
        // A NaN in the branch not taken must not reach any gradient.
        let x = try b.input([2])
        try b.set(x, [0, 4])
        let safe = try g.where(try g.compare(x, try b.constant([0], []), .greater), try g.log(x), x)
        let root = try g.sum(safe)
        try g.forward(through: root)
        try g.backward(from: root)
        #expect(try gradient(g, x) == [1, 0.25])
    }

    @Test func detachAndComparisonsStopTheGradient() throws {
        var b = GraphBuilder()
        let x = try b.input([3])
        let root = try b.graph.sum(try b.graph.mul(x, try b.graph.detach(x)))
        try b.graph.forward()
        try b.graph.backward(from: root)
        #expect(try gradient(b.graph, x) == values(b.graph, x))
        let test = try b.graph.compare(x, x, .equal)
        #expect(throws: BackpropError.self) { try b.graph.backward(from: try b.graph.sum(test)) }
    }

    @Test func dropoutScalesKeptValuesAndRoutesTheGradientThroughTheMask() throws {
        var b = GraphBuilder(seed: 47)
        let x = try b.input([1000], in: 1...2)
        let y = try b.graph.dropout(x, probability: 0.25)
        let root = try b.graph.sum(y)
        try b.graph.forward()
        try b.graph.backward(from: root)
        let xs = try values(b.graph, x), ys = try values(b.graph, y), gs = try gradient(b.graph, x)
        let dropped = ys.filter { $0 == 0 }.count
        #expect(dropped > 200 && dropped < 300)
        for i in 0..<1000 {
            #expect(ys[i] == 0 ? gs[i] == 0 : isClose(ys[i], xs[i] / 0.75) && isClose(gs[i], 1 / 0.75))
        }
        b.graph.isTraining = false
        try b.graph.forward()
        #expect(try values(b.graph, y) == xs)
    }

    @Test func dropoutIsReproducibleFromTheSeed() throws {
        func mask(seed: UInt64) throws -> [Double] {
            let g = Graph(dtype: .float64, seed: seed)
            let x = try g.input(try Shape([64]))
            try g.setValue(x, from: [Double](repeating: 1, count: 64), count: 64)
            let y = try g.dropout(x, probability: 0.5)
            try g.forward()
            return try values(g, y)
        }
        #expect(try mask(seed: 5) == mask(seed: 5))
        #expect(try mask(seed: 5) != mask(seed: 6))
    }

    static let elementwiseLosses = ["mse", "l1", "huber", "bce", "bce_logits"]

    @Test(arguments: elementwiseLosses, Reduction.allCases)
    func elementwiseLossesMatchFiniteDifferences(loss: String, reduction: Reduction) throws {
        var b = GraphBuilder(seed: 53)
        let g = b.graph
        let p = loss == "bce" ? try b.input([3, 2], in: 0.1...0.9) : try b.input([3, 2])
        let t = try b.input([3, 2], in: 0...1)
        var root = switch loss {
        case "mse": try g.mseLoss(p, t, reduction: reduction)
        case "l1": try g.l1Loss(p, t, reduction: reduction)
        case "huber": try g.huberLoss(p, t, delta: 0.7, reduction: reduction)
        case "bce": try g.bceLoss(p, t, reduction: reduction)
        default: try g.bceWithLogitsLoss(p, t, reduction: reduction)
        }
        if reduction == .none { root = try b.weightedSum(root) }
        try expectGradientsMatchFiniteDifferences(g, root)
    }

    @Test(arguments: Reduction.allCases)
    func crossEntropyWithProbabilityTargetsAndNLLMatchFiniteDifferences(reduction: Reduction) throws {
        var b = GraphBuilder(seed: 59)
        let g = b.graph
        let logits = try b.input([3, 4])
        let targets = try g.softmax(try b.input([3, 4]))
        var ce = try g.crossEntropy(logits, targets, reduction: reduction)
        let labels = try b.constant([3, 0, 1], [3])
        var nll = try g.nllLoss(try g.logSoftmax(logits), labels, reduction: reduction)
        if reduction == .none {
            ce = try b.weightedSum(ce)
            nll = try b.weightedSum(nll)
        }
        try expectGradientsMatchFiniteDifferences(g, try g.add(ce, nll))
    }

    @Test func nllAfterLogSoftmaxEqualsCrossEntropy() throws {
        var b = GraphBuilder(seed: 61)
        let logits = try b.input([4, 5]), labels = try b.constant([0, 4, 2, 2], [4])
        let ce = try b.graph.crossEntropy(logits, labels)
        let nll = try b.graph.nllLoss(try b.graph.logSoftmax(logits), labels)
        try b.graph.forward()
        #expect(isClose(try values(b.graph, ce)[0], try values(b.graph, nll)[0], tolerance: 1e-12))
    }

    @Test func binaryLossesAreStableAtTheExtremes() throws {
        var b = GraphBuilder(dtype: .float32)
        let x = try b.input([4]), t = try b.constant([1, 0, 0, 1], [4])
        try b.set(x, [100, 100, -100, -100])
        let withLogits = try b.graph.bceWithLogitsLoss(x, t, reduction: .none)
        let p = try b.input([2]), tp = try b.constant([1, 0], [2])
        try b.set(p, [0, 1])
        let bce = try b.graph.bceLoss(p, tp, reduction: .none)
        let root = try b.graph.add(try b.graph.sum(withLogits), try b.graph.sum(bce))
        try b.graph.forward()
        try b.graph.backward(from: root)
        let l = try values(b.graph, withLogits)
        #expect(l[0] < 1e-30 && isClose(l[1], 100, tolerance: 1e-6) && l[2] < 1e-30 && isClose(l[3], 100, tolerance: 1e-6))
        #expect(try values(b.graph, bce) == [100, 100])  // log clamped at -100, as PyTorch
        #expect(try gradient(b.graph, x).allSatisfy { $0.isFinite })
        #expect(try gradient(b.graph, p).allSatisfy { $0.isFinite })
    }
}

@Suite struct CustomOpTests {
    /// x · y elementwise, written against raw memory as an outside caller would.
    static func product() -> CustomOp {
        CustomOp(
            name: "custom_mul",
            shape: { shapes in
                guard shapes.count == 2, shapes[0] == shapes[1] else { throw BackpropError.shape("custom_mul: shapes differ") }
                return shapes[0]
            },
            forward: { inputs, output in
                let x = inputs[0].data!.assumingMemoryBound(to: Double.self)
                let y = inputs[1].data!.assumingMemoryBound(to: Double.self)
                let out = output.data!.assumingMemoryBound(to: Double.self)
                for i in 0..<output.shape.count { out[i] = x[i] * y[i] }
            },
            backward: { inputs, _, upstream, gradients in
                let x = inputs[0].data!.assumingMemoryBound(to: Double.self)
                let y = inputs[1].data!.assumingMemoryBound(to: Double.self)
                let g = upstream.data!.assumingMemoryBound(to: Double.self)
                for i in 0..<upstream.shape.count {
                    gradients[0].data?.assumingMemoryBound(to: Double.self)[i] += g[i] * y[i]
                    gradients[1].data?.assumingMemoryBound(to: Double.self)[i] += g[i] * x[i]
                }
            })
    }

    @Test func aCustomOpTakesPartInForwardAndBackward() throws {
        var b = GraphBuilder(seed: 67)
        let x = try b.input([2, 3]), y = try b.input([2, 3])
        let out = try b.graph.apply(Self.product(), [x, y])
        try expectGradientsMatchFiniteDifferences(b.graph, try b.weightedSum(try b.graph.tanh(out)))
        #expect(throws: BackpropError.self) { try b.graph.apply(Self.product(), [x, try b.input([3])]) }
    }

    @Test func aFailingCallbackFailsTheCallThatRanIt() throws {
        struct Refused: Error {}
        let failing = CustomOp(name: "refuse", shape: { $0[0] }, forward: { _, _ in throw Refused() },
                               backward: { _, _, _, _ in })
        var b = GraphBuilder()
        let x = try b.input([2])
        _ = try b.graph.apply(failing, [x])
        #expect(throws: Refused.self) { try b.graph.forward() }
    }
}
