import Testing
@testable import Backprop

@Suite struct FitTests {
    /// Two interleaved spirals' worth of difficulty is not needed: four Gaussian-ish clusters,
    /// one per class, from a seeded generator.
    static func clusters(samples: Int, seed: UInt64) -> (x: [Float], y: [Int32]) {
        var g = Generator(seed: seed)
        var x: [Float] = [], y: [Int32] = []
        let centers: [(Double, Double)] = [(1, 1), (-1, 1), (-1, -1), (1, -1)]
        for i in 0..<samples {
            let c = i % 4
            x += [Float(centers[c].0 + 0.4 * g.normal()), Float(centers[c].1 + 0.4 * g.normal())]
            y.append(Int32(c))
        }
        return (x, y)
    }

    func network(seed: UInt64 = 1) throws -> Network {
        let net = try Network(inputWidth: 2, seed: seed)
        try net.addDense(units: 16, activation: .relu)
        try net.addDense(units: 4, activation: .none)
        try net.setLoss(.crossEntropy)
        return net
    }

    func fit(_ net: Network, _ data: (x: [Float], y: [Int32]), options: FitOptions, optimizer: Optimizer? = nil,
             onEpoch: (EpochReport) -> Bool = { _ in true }) throws -> FitResult {
        try data.x.withUnsafeBufferPointer { x in
            try data.y.withUnsafeBufferPointer { y in
                try net.fit(inputs: x, targets: .labels(y), samples: data.y.count,
                            optimizer: optimizer ?? Optimizer(.adam, options: OptimizerOptions(learningRate: 0.02)),
                            options: options, onEpoch: onEpoch)
            }
        }
    }

    @Test func fitLearnsClustersAndReportsEveryEpoch() throws {
        let net = try network()
        var options = FitOptions()
        options.epochs = 20
        options.batchSize = 16
        options.validationSplit = 0.25
        var reports: [EpochReport] = []
        let result = try fit(net, Self.clusters(samples: 400, seed: 3), options: options) { reports.append($0); return true }
        #expect(result.history.count == 20 && reports.count == 20)
        let last = result.history.last!
        #expect(last.trainAccuracy > 0.9 && last.validationAccuracy > 0.9)
        #expect(last.trainLoss < result.history.first!.trainLoss)
        #expect(last.gradientNorms.count == 2 && last.updateRatios.allSatisfy { $0 > 0 && $0 < 1 })
        #expect(!last.exploding)
    }

    @Test func theSameSeedGivesTheSameRun() throws {
        var options = FitOptions()
        options.epochs = 3
        let data = Self.clusters(samples: 100, seed: 4)
        let a = try fit(try network(seed: 5), data, options: options)
        let b = try fit(try network(seed: 5), data, options: options)
        #expect(a.history.map(\.trainLoss) == b.history.map(\.trainLoss))
    }

    @Test func earlyStoppingRestoresTheBestWeights() throws {
        let net = try network()
        var options = FitOptions()
        options.epochs = 50
        options.patience = 2
        options.minDelta = 1e9  // nothing after the first epoch counts as an improvement
        var afterFirst: [Float] = []
        let result = try fit(net, Self.clusters(samples: 64, seed: 6), options: options) { report in
            if report.epoch == 1 { afterFirst = net.copyOfParameters() }
            return true
        }
        #expect(result.stoppedEarly && result.history.count == 3 && result.bestEpoch == 1)
        #expect(net.copyOfParameters() == afterFirst)
    }

    @Test func theCallbackCanStopTraining() throws {
        var options = FitOptions()
        options.epochs = 10
        let result = try fit(try network(), Self.clusters(samples: 32, seed: 7), options: options) { $0.epoch < 2 }
        #expect(result.stoppedByCallback && result.history.count == 2)
    }

    @Test func badDataIsRefusedBeforeAnythingChanges() throws {
        let net = try network()
        let before = net.copyOfParameters()
        var data = Self.clusters(samples: 16, seed: 8)
        data.x[5] = .nan
        #expect(throws: BackpropError.self) { try fit(net, data, options: FitOptions()) }
        data = Self.clusters(samples: 16, seed: 8)
        data.y[2] = 9
        #expect(throws: BackpropError.self) { try fit(net, data, options: FitOptions()) }
        var options = FitOptions()
        options.validationSplit = 1.5
        #expect(throws: BackpropError.self) { try fit(net, Self.clusters(samples: 16, seed: 8), options: options) }
        #expect(net.copyOfParameters() == before)
    }

    @Test func aSchedulerDrivesTheRateAcrossEpochs() throws {
        let net = try network()
        let sgd = try Optimizer(.sgd, options: OptimizerOptions(learningRate: 0.1))
        var step = ScheduleOptions(rule: .step)
        step.gamma = 0.5
        let scheduler = try Scheduler(step, baseRate: 0.1)
        var options = FitOptions()
        options.epochs = 3
        let data = Self.clusters(samples: 32, seed: 9)
        let result = try data.x.withUnsafeBufferPointer { x in
            try data.y.withUnsafeBufferPointer { y in
                try net.fit(inputs: x, targets: .labels(y), samples: 32, optimizer: sgd, scheduler: scheduler, options: options)
            }
        }
        #expect(result.history.map(\.learningRate) == [0.1, 0.05, 0.025])
    }

    @Test func evaluateMatchesALossComputedByHand() throws {
        let net = try Network(inputWidth: 1, seed: 2)
        try net.addDense(units: 1, activation: .none, initializer: .constant(1))  // y = x + 1
        let x: [Float] = [0, 1, 2], t: [Float] = [1, 1, 1]
        let (loss, accuracy) = try x.withUnsafeBufferPointer { xs in
            try t.withUnsafeBufferPointer { try net.evaluate(inputs: xs, targets: .values($0), samples: 3, batchSize: 2) }
        }
        #expect(abs(loss - (0 + 1 + 4) / 3.0) < 1e-6)  // outputs 1, 2, 3 against 1
        #expect(accuracy == 1)  // every output and target is above 0.5
    }
}

extension Network {
    /// The flat parameter block, as float32.
    func copyOfParameters() -> [Float] {
        var values = [Float](repeating: 0, count: parameterCount)
        try! values.withUnsafeMutableBufferPointer { try graph.copyParameters(into: $0) }
        return values
    }
}
