import Testing
@testable import Backprop

/// Array conveniences over the network's buffer-based API.
extension Network {
    func forward(_ x: [Float], batch: Int) throws -> [Float] {
        var out = [Float](repeating: .nan, count: batch * outputWidth)
        try x.withUnsafeBufferPointer { xs in try out.withUnsafeMutableBufferPointer { try forward(xs, batch: batch, into: $0) } }
        return out
    }
    func predict(_ x: [Float], batch: Int) throws -> [Float] {
        var out = [Float](repeating: .nan, count: batch * outputWidth)
        try x.withUnsafeBufferPointer { xs in try out.withUnsafeMutableBufferPointer { try predict(xs, batch: batch, into: $0) } }
        return out
    }
    func backward(labels: [Int32]) throws -> Double { try labels.withUnsafeBufferPointer { try backward(labels: $0) } }
    func backward(targets: [Float]) throws -> Double { try targets.withUnsafeBufferPointer { try backward(targets: $0) } }
    func trainStep(_ x: [Float], batch: Int, labels: [Int32], learningRate: Double) throws -> Double {
        try x.withUnsafeBufferPointer { xs in
            try labels.withUnsafeBufferPointer { try trainStep(xs, batch: batch, labels: $0, learningRate: learningRate) }
        }
    }
    func trainStep(_ x: [Float], batch: Int, targets: [Float], learningRate: Double) throws -> Double {
        try x.withUnsafeBufferPointer { xs in
            try targets.withUnsafeBufferPointer { try trainStep(xs, batch: batch, targets: $0, learningRate: learningRate) }
        }
    }
}

@Suite struct NetworkTests {
    static let xorInputs: [Float] = [0, 0, 0, 1, 1, 0, 1, 1]
    static let xorLabels: [Int32] = [0, 1, 1, 0]

    func xorNetwork(seed: UInt64) throws -> Network {
        let net = try Network(inputWidth: 2, seed: seed)
        try net.addDense(units: 8, activation: .tanh)
        try net.addDense(units: 2, activation: .none)
        try net.setLoss(.crossEntropy)
        return net
    }

    func parameters(_ net: Network) throws -> [Double] {
        var out = [Double](repeating: 0, count: net.parameterCount)
        var offset = 0
        for layer in net.layers {
            for node in [layer.weight, layer.bias].compactMap({ $0 }) {
                let n = try net.graph.shape(of: node).count
                try out.withUnsafeMutableBufferPointer {
                    try net.graph.value(node, into: $0.baseAddress! + offset, count: n)
                }
                offset += n
            }
        }
        return out
    }

    @Test func xorTrainsToFullAccuracyWithSeparateSteps() throws {
        let net = try xorNetwork(seed: 42)
        var outputs = [Float](repeating: 0, count: 8)
        var first = 0.0, last = 0.0
        for epoch in 0..<500 {
            net.zeroGradients()
            outputs = try net.forward(Self.xorInputs, batch: 4)
            last = try net.backward(labels: Self.xorLabels)
            if epoch == 0 { first = last }
            try net.update(learningRate: 0.5)
        }
        #expect(last < first / 10)
        outputs = try net.predict(Self.xorInputs, batch: 4)
        for row in 0..<4 {
            let predicted: Int32 = outputs[2 * row + 1] > outputs[2 * row] ? 1 : 0
            #expect(predicted == Self.xorLabels[row])
        }
    }

    @Test func theSameSeedGivesTheSameWeightsAndTheSameTraining() throws {
        let a = try xorNetwork(seed: 7), b = try xorNetwork(seed: 7), c = try xorNetwork(seed: 8)
        #expect(try parameters(a) == parameters(b))
        #expect(try parameters(a) != parameters(c))
        for _ in 0..<20 {
            let la = try a.trainStep(Self.xorInputs, batch: 4, labels: Self.xorLabels, learningRate: 0.1)
            let lb = try b.trainStep(Self.xorInputs, batch: 4, labels: Self.xorLabels, learningRate: 0.1)
            #expect(la == lb)
        }
        #expect(try parameters(a) == parameters(b))
    }

    @Test func initialWeightsFollowPyTorchsLinearBound() throws {
        let net = try Network(inputWidth: 16, seed: 3)
        try net.addDense(units: 32, activation: .relu)
        let weights = try parameters(net)
        #expect(weights.count == 16 * 32 + 32)
        #expect(weights.allSatisfy { abs($0) <= 0.25 })
        #expect(weights.contains { abs($0) > 0.2 })  // spread over the range, not clustered at 0
    }

    @Test func mseGradientsAreAveragedOverTheBatch() throws {
        // One sample repeated k times must give the same loss and gradients as the sample alone.
        func gradients(batch: Int) throws -> ([Double], Double) {
            let net = try Network(inputWidth: 3, seed: 5)
            try net.addDense(units: 2, activation: .sigmoid)
            let x: [Float] = (0..<3 * batch).map { Float($0 % 3) - 1 }
            let y: [Float] = (0..<2 * batch).map { $0 % 2 == 0 ? 0.25 : 0.75 }
            _ = try net.forward(x, batch: batch)
            let loss = try net.backward(targets: y)
            var g = [Double](repeating: 0, count: 6)
            try net.graph.gradient(net.layers[0].weight!, into: &g, count: 6)
            return (g, loss)
        }
        let (g1, l1) = try gradients(batch: 1), (g5, l5) = try gradients(batch: 5)
        #expect(isClose(l1, l5, tolerance: 1e-6))
        for (a, b) in zip(g1, g5) { #expect(abs(a - b) <= 1e-6) }
    }

    @Test func backwardIsRefusedAfterPredictOrUpdate() throws {
        let net = try xorNetwork(seed: 1)
        #expect(throws: BackpropError.self) { try net.backward(labels: Self.xorLabels) }
        let predicted = try net.predict(Self.xorInputs, batch: 4)
        #expect(throws: BackpropError.self) { try net.backward(labels: Self.xorLabels) }
        #expect(try net.forward(Self.xorInputs, batch: 4) == predicted)
        _ = try net.backward(labels: Self.xorLabels)
        try net.update(learningRate: 0.1)
        #expect(throws: BackpropError.self) { try net.backward(labels: Self.xorLabels) }
    }

    @Test func badInputChangesNoWeight() throws {
        let net = try xorNetwork(seed: 2)
        let before = try parameters(net)
        let nanInputs: [Float] = [0, .nan, 1, 1, 0, 0, 1, 1]
        #expect(throws: BackpropError.nonFinite("input 1 (row 0, column 1) is nan")) {
            try net.trainStep(nanInputs, batch: 4, labels: Self.xorLabels, learningRate: 0.1)
        }
        #expect(throws: BackpropError.self) {
            try net.trainStep(Self.xorInputs, batch: 4, labels: [0, 1, 2, 0], learningRate: 0.1)
        }
        #expect(throws: BackpropError.self) {
            try net.trainStep(Self.xorInputs, batch: 4, labels: Self.xorLabels, learningRate: -1)
        }
        var short = [Float](repeating: 0, count: 7)
        #expect(throws: BackpropError.self) {
            try Self.xorInputs.withUnsafeBufferPointer { x in try short.withUnsafeMutableBufferPointer { try net.forward(x, batch: 4, into: $0) } }
        }
        #expect(throws: BackpropError.self) { try net.forward(Array(Self.xorInputs.prefix(6)), batch: 4) }
        // A failed step leaves the gradients alone as well as the weights.
        _ = try net.forward(Self.xorInputs, batch: 4)
        _ = try net.backward(labels: Self.xorLabels)
        var gradientsBefore = [Double](repeating: 0, count: 16)
        try net.graph.gradient(net.layers[0].weight!, into: &gradientsBefore, count: 16)
        #expect(throws: BackpropError.self) {
            try net.trainStep(nanInputs, batch: 4, labels: Self.xorLabels, learningRate: 0.1)
        }
        var gradientsAfter = [Double](repeating: 0, count: 16)
        try net.graph.gradient(net.layers[0].weight!, into: &gradientsAfter, count: 16)
        #expect(gradientsAfter == gradientsBefore)
        #expect(try parameters(net) == before)
    }

    @Test func batchSizeCanChangeBetweenSteps() throws {
        let net = try xorNetwork(seed: 4)
        for batch in [4, 1, 3, 4] {
            let x = Array(Self.xorInputs.prefix(2 * batch)), y = Array(Self.xorLabels.prefix(batch))
            let loss = try net.trainStep(x, batch: batch, labels: y, learningRate: 0.1)
            #expect(loss.isFinite && loss > 0)
        }
    }

    @Test func layersAddedAfterTrainingRebuildTheLoss() throws {
        let net = try Network(inputWidth: 2, seed: 9)
        try net.addDense(units: 3, activation: .relu)
        _ = try net.trainStep(Self.xorInputs, batch: 4, targets: [Float](repeating: 0.5, count: 12), learningRate: 0.1)
        try net.addDense(units: 1, activation: .sigmoid)
        let loss = try net.trainStep(Self.xorInputs, batch: 4, targets: [0, 1, 1, 0], learningRate: 0.1)
        #expect(loss.isFinite)
        #expect(net.outputWidth == 1)
    }
}
