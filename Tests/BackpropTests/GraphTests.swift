import Testing
@testable import Backprop

@Suite struct GraphTests {
    @Test func circuitGivesTheClassicValuesAndGradients() throws {
        var b = GraphBuilder()
        let x = try b.constant([-2], []), y = try b.constant([5], []), z = try b.constant([-4], [])
        // Constants have no gradient: rebuild the circuit with inputs.
        let g = b.graph
        let (ix, iy, iz) = (try g.input(.scalar), try g.input(.scalar), try g.input(.scalar))
        try b.set(ix, [-2]); try b.set(iy, [5]); try b.set(iz, [-4])
        let f = try g.mul(try g.add(ix, iy), iz)
        try g.forward()
        try g.backward(from: f)
        #expect(try values(g, f) == [-12])
        #expect(try gradient(g, ix) == [-4])
        #expect(try gradient(g, iy) == [-4])
        #expect(try gradient(g, iz) == [3])
        _ = (x, y, z)
    }

    @Test func leafGradientsAccumulateAcrossBackwardCallsUntilZeroed() throws {
        var b = GraphBuilder()
        let x = try b.input([3])
        let root = try b.weightedSum(try b.graph.tanh(x))
        try b.graph.forward()
        try b.graph.backward(from: root)
        let once = try gradient(b.graph, x)
        try b.graph.backward(from: root)
        let twice = try gradient(b.graph, x)
        for i in 0..<3 { #expect(isClose(twice[i], 2 * once[i])) }
        b.graph.zeroGradients()
        #expect(try gradient(b.graph, x) == [0, 0, 0])
    }

    @Test func aNodeUsedTwiceReceivesTheSumOfBothContributions() throws {
        var b = GraphBuilder()
        let x = try b.input([4])
        let root = try b.graph.sum(try b.graph.mul(x, x))
        try b.graph.forward()
        try b.graph.backward(from: root)
        let xs = try values(b.graph, x)
        #expect(try gradient(b.graph, x) == xs.map { 2 * $0 })
    }

    @Test func aBroadcastRowGetsTheColumnSumOfTheGradient() throws {
        var b = GraphBuilder()
        let m = try b.input([2, 3]), row = try b.input([3])
        let root = try b.graph.sum(try b.graph.add(m, row))
        try b.graph.forward()
        try b.graph.backward(from: root)
        #expect(try gradient(b.graph, row) == [2, 2, 2])
        #expect(try gradient(b.graph, m) == [1, 1, 1, 1, 1, 1])
    }

    @Test func maximumSplitsTheGradientEvenlyOnATie() throws {
        var b = GraphBuilder()
        let x = try b.input([2]), y = try b.input([2])
        try b.set(x, [1, 3]); try b.set(y, [1, 2])
        let root = try b.graph.sum(try b.graph.maximum(x, y))
        try b.graph.forward()
        try b.graph.backward(from: root)
        #expect(try gradient(b.graph, x) == [0.5, 1])
        #expect(try gradient(b.graph, y) == [0.5, 0])
    }

    @Test func aShapeMismatchIsReportedWhenTheNodeIsAddedAndLeavesTheGraphUsable() throws {
        var b = GraphBuilder()
        let a = try b.input([2, 3]), c = try b.input([4])
        let before = b.graph.nodeCount
        #expect(throws: BackpropError.shape("add: shapes [2, 3] and [4] do not broadcast")) {
            try b.graph.add(a, c)
        }
        #expect(throws: BackpropError.self) { try b.graph.matmul(a, a) }
        #expect(b.graph.nodeCount == before)
        let ok = try b.graph.sum(a)
        try b.graph.forward()
        try b.graph.backward(from: ok)
    }

    @Test func backwardNeedsAScalarRootAndACurrentForward() throws {
        var b = GraphBuilder()
        let x = try b.input([3])
        let y = try b.graph.exp(x), s = try b.graph.sum(y)
        #expect(throws: BackpropError.self) { try b.graph.backward(from: s) }  // no forward yet
        try b.graph.forward()
        #expect {
            try b.graph.backward(from: y)
        } throws: { ($0 as? BackpropError).map { if case .shape = $0 { true } else { false } } ?? false }
        try b.graph.backward(from: s)
        try b.set(x, [1, 2, 3])  // a new value makes the forward stale
        #expect(throws: BackpropError.self) { try b.graph.backward(from: s) }
        #expect(throws: BackpropError.self) { try values(b.graph, y) }
    }

    @Test func anInvalidLabelFailsTheForwardAndTheGraphRecovers() throws {
        var b = GraphBuilder()
        let logits = try b.input([2, 3])
        let labels = try b.constant([0, 3], [2])
        let loss = try b.graph.crossEntropy(logits, labels)
        #expect(throws: BackpropError.self) { try b.graph.forward() }
        try b.set(labels, [0, 2.5])
        #expect(throws: BackpropError.self) { try b.graph.forward() }
        try b.set(labels, [0, 2])
        try b.graph.forward()
        try b.graph.backward(from: loss)
    }

    @Test func softmaxCrossEntropyIsStableForHugeLogits() throws {
        var b = GraphBuilder(dtype: .float32)
        let logits = try b.input([2, 3])
        try b.set(logits, [1e4, -1e4, 0, -1e4, 1e4, 1e4])
        let labels = try b.constant([1, 2], [2])
        let loss = try b.graph.crossEntropy(logits, labels, reduction: .none)
        let total = try b.graph.sum(loss)
        try b.graph.forward()
        try b.graph.backward(from: total)
        let l = try values(b.graph, loss)
        #expect(isClose(l[0], 2e4, tolerance: 1e-6))
        #expect(isClose(l[1], Double(Float.log(2)), tolerance: 1e-6))
        #expect(try gradient(b.graph, logits).allSatisfy { $0.isFinite })
    }

    @Test func sigmoidIsFiniteAtTheExtremes() throws {
        var b = GraphBuilder(dtype: .float32)
        let x = try b.input([4])
        try b.set(x, [-100, -1000, 100, 1000])
        let y = try b.graph.sigmoid(x)
        try b.graph.forward()
        let v = try values(b.graph, y)
        #expect(v.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 })
        #expect(v[2] == 1 && v[0] < 1e-40)
    }

    @Test func float32AgreesWithFloat64() throws {
        func run(_ dtype: DType) throws -> ([Double], Double) {
            var b = GraphBuilder(dtype: dtype, seed: 21)
            let x = try b.input([3, 4]), w = try b.input([4, 2])
            let loss = try b.weightedSum(try b.graph.sigmoid(try b.graph.matmul(x, w)))
            try b.graph.forward()
            try b.graph.backward(from: loss)
            return (try gradient(b.graph, w), try values(b.graph, loss)[0])
        }
        let (g32, l32) = try run(.float32), (g64, l64) = try run(.float64)
        #expect(isClose(l32, l64, tolerance: 1e-5))
        for (a, b) in zip(g32, g64) { #expect(abs(a - b) <= 1e-5 + 1e-4 * abs(b)) }
    }

    @Test func theGradientCheckCatchesAWrongBackward() throws {
        /// Doubles its input but claims a derivative of 3.
        struct WrongDouble: Op {
            var name: String { "wrong_double" }
            func outputShape(_ inputs: [Shape]) throws -> Shape { inputs[0] }
            func forward<T: Scalar>(_ f: Frame<T>) { for i in 0..<f.count { f.output[i] = 2 * f.input(0)[i] } }
            func backward<T: Scalar>(_ f: Frame<T>) {
                for i in 0..<f.count { f.inputGradient(0)?[i] += 3 * f.outputGradient[i] }
            }
        }
        var b = GraphBuilder()
        let x = try b.input([3])
        let root = try b.graph.sum(try b.graph.apply(WrongDouble(), [x]))
        let result = try b.graph.checkGradients(of: root)
        #expect(!result.passed)
        #expect(isClose(result.worst?.numeric ?? 0, 2, tolerance: 1e-6))
    }
}
