import Testing
@testable import Backprop

@Suite struct LayerTests {
    @Test func aFloat64NetworksGradientsMatchFiniteDifferences() throws {
        let net = try Network(inputWidth: 3, seed: 11, dtype: .float64)
        try net.addDense(units: 4, activation: .tanh)
        try net.addLayerNorm()
        try net.addDense(units: 3, activation: .none)
        try net.setLoss(.crossEntropy)
        _ = try net.forward([0.5, -1, 2, 1, 0, -0.5], batch: 2)
        _ = try net.backward(labels: [2, 0])
        // The loss node is the last node of the network's graph.
        try expectGradientsMatchFiniteDifferences(net.graph, net.graph.nodeCount - 1)
    }

    @Test func dropoutIsActiveInTrainingAndOffInPrediction() throws {
        let net = try Network(inputWidth: 200, seed: 3)
        try net.addDense(units: 200, activation: .relu, initializer: .constant(0.01))
        try net.addDropout(probability: 0.5)
        let x = [Float](repeating: 1, count: 200)
        let trained = try net.forward(x, batch: 1), predicted = try net.predict(x, batch: 1)
        let zeros = trained.filter { $0 == 0 }.count
        #expect(zeros > 60 && zeros < 140)
        #expect(predicted.allSatisfy { abs($0 - 2.01) < 1e-4 })
        #expect(trained.allSatisfy { $0 == 0 || abs($0 - 4.02) < 1e-3 })
    }

    @Test func initializersFollowTorchNNInitScales() throws {
        func weights(_ initializer: Initializer, fanIn: Int = 400, fanOut: Int = 100) throws -> [Double] {
            let net = try Network(inputWidth: fanIn, seed: 9)
            try net.addDense(units: fanOut, activation: .none, initializer: initializer)
            var out = [Double](repeating: 0, count: fanIn * fanOut)
            try net.graph.value(net.layers[0].weight!, into: &out, count: out.count)
            return out
        }
        func std(_ x: [Double]) -> Double {
            let mean = x.reduce(0, +) / Double(x.count)
            return (x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count)).squareRoot()
        }
        let xavier = try weights(.xavierUniform)
        #expect(xavier.allSatisfy { abs($0) <= (6.0 / 500).squareRoot() })
        #expect(abs(std(try weights(.xavierNormal)) - (2.0 / 500).squareRoot()) < 0.003)
        #expect(try weights(.kaimingUniform).allSatisfy { abs($0) <= (6.0 / 400).squareRoot() })
        #expect(abs(std(try weights(.kaimingNormal)) - (2.0 / 400).squareRoot()) < 0.003)
        #expect(try weights(.zeros).allSatisfy { $0 == 0 })
        #expect(try weights(.constant(0.5)).allSatisfy { $0 == 0.5 })
    }

    @Test func moduleIndicesMatchATorchSequential() throws {
        // Sequential(Linear, ReLU, Dropout, Linear, LayerNorm, Linear)
        let net = try Network(inputWidth: 4, seed: 1)
        try net.addDense(units: 8, activation: .relu)
        try net.addDropout(probability: 0.1)
        try net.addDense(units: 8, activation: .none)
        try net.addLayerNorm()
        try net.addDense(units: 2, activation: .none)
        #expect(net.layers.map(\.moduleIndex) == [0, 2, 3, 4, 5])
    }

    @Test func flatParametersRoundTripAndRefuseBadValues() throws {
        let net = try Network(inputWidth: 3, seed: 2)
        try net.addDense(units: 2, activation: .sigmoid)
        var flat = [Float](repeating: 0, count: net.parameterCount)
        try flat.withUnsafeMutableBufferPointer { try net.graph.copyParameters(into: $0) }
        let doubled = flat.map { $0 * 2 }
        try doubled.withUnsafeBufferPointer { try net.graph.setParameters(from: $0) }
        var back = [Float](repeating: 0, count: flat.count)
        try back.withUnsafeMutableBufferPointer { try net.graph.copyParameters(into: $0) }
        #expect(back == doubled)
        var bad = doubled
        bad[3] = .infinity
        #expect(throws: BackpropError.self) { try bad.withUnsafeBufferPointer { try net.graph.setParameters(from: $0) } }
        try back.withUnsafeMutableBufferPointer { try net.graph.copyParameters(into: $0) }
        #expect(back == doubled)
    }
}

@Suite struct DropoutConsistencyTests {
    @Test func theFirstBackwardUsesTheMaskOfTheForwardBeforeIt() throws {
        // The loss nodes are added on the first backward; that must not recompute dropout.
        let net = try Network(inputWidth: 64, seed: 12)
        try net.addDropout(probability: 0.5)
        try net.setLoss(.mse)
        let x = [Float](repeating: 1, count: 64)
        let y = try net.forward(x, batch: 1)
        _ = try net.backward(targets: [Float](repeating: 0, count: 64))
        // With no parameters, the loss is mean(y²): check it against the returned outputs.
        var loss = 0.0
        try net.graph.value(net.graph.nodeCount - 1, into: &loss, count: 1)
        let expected = y.map { Double($0) * Double($0) }.reduce(0, +) / 64
        #expect(abs(loss - expected) < 1e-6)
    }
}
