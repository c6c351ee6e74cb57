import Foundation
import Testing
@testable import Backprop

/// Optimizers against scalar transcriptions of torch.optim's documented update rules, on the
/// loss sum(c·p + p²/2), whose gradient is c + p.
@Suite struct OptimizerTests {
    static let start: [Double] = [0.5, -1.5, 2.0]
    static let c: [Double] = [1.0, -0.5, 0.25]

    /// Runs `steps` optimizer steps through the graph and returns the parameters.
    func run(_ algorithm: OptimizerAlgorithm, _ options: OptimizerOptions, steps: Int = 4) throws -> [Double] {
        let g = Graph(dtype: .float64)
        let p = try g.parameter(try Shape([3]))
        try g.setValue(p, from: Self.start, count: 3)
        let c = try g.constant(try Shape([3]))
        try g.setValue(c, from: Self.c, count: 3)
        let half = try g.constant(.scalar)
        try g.setValue(half, from: [0.5], count: 1)
        let loss = try g.add(try g.sum(try g.mul(c, p)), try g.mul(half, try g.sum(try g.square(p))))
        let optimizer = try Optimizer(algorithm, options: options)
        for _ in 0..<steps {
            g.zeroGradients()
            try g.forward(through: loss)
            try g.backward(from: loss)
            try optimizer.step(g)
        }
        var out = [Double](repeating: 0, count: 3)
        try g.value(p, into: &out, count: 3)
        return out
    }

    /// The same updates, one scalar at a time, written from the torch.optim documentation.
    func reference(_ algorithm: OptimizerAlgorithm, _ o: OptimizerOptions, steps: Int = 4) -> [Double] {
        (0..<3).map { i in
            var p = Self.start[i]
            var buf = 0.0, m = 0.0, v = 0.0, vmax = 0.0, sq = 0.0, avg = 0.0, sum = o.initialAccumulatorValue
            for t in 1...steps {
                let grad = Self.c[i] + p
                switch algorithm {
                case .sgd:
                    let g = grad + o.weightDecay * p
                    var d = g
                    if o.momentum != 0 {
                        buf = t == 1 ? g : o.momentum * buf + (1 - o.dampening) * g
                        d = o.nesterov ? g + o.momentum * buf : buf
                    }
                    p -= o.learningRate * d
                case .adam, .adamW:
                    var g = grad
                    if algorithm == .adamW { p *= 1 - o.learningRate * o.weightDecay } else { g += o.weightDecay * p }
                    m = o.beta1 * m + (1 - o.beta1) * g
                    v = o.beta2 * v + (1 - o.beta2) * g * g
                    vmax = max(vmax, v)
                    let mHat = m / (1 - pow(o.beta1, Double(t)))
                    let vHat = (o.amsgrad ? vmax : v) / (1 - pow(o.beta2, Double(t)))
                    p -= o.learningRate * mHat / (vHat.squareRoot() + o.eps)
                case .rmsprop:
                    let g = grad + o.weightDecay * p
                    sq = o.alpha * sq + (1 - o.alpha) * g * g
                    avg = o.alpha * avg + (1 - o.alpha) * g
                    let denominator = (o.centered ? (sq - avg * avg) : sq).squareRoot() + o.eps
                    if o.momentum > 0 {
                        buf = o.momentum * buf + g / denominator
                        p -= o.learningRate * buf
                    } else {
                        p -= o.learningRate * g / denominator
                    }
                case .adagrad:
                    let g = grad + o.weightDecay * p
                    let clr = o.learningRate / (1 + Double(t - 1) * o.learningRateDecay)
                    sum += g * g
                    p -= clr * g / (sum.squareRoot() + o.eps)
                }
            }
            return p
        }
    }

    static let cases: [(OptimizerAlgorithm, OptimizerOptions)] = {
        var list: [(OptimizerAlgorithm, OptimizerOptions)] = []
        var o = OptimizerOptions.defaults(for: .sgd)
        list.append((.sgd, o))
        o.momentum = 0.9; o.weightDecay = 0.01
        list.append((.sgd, o))
        o.dampening = 0.1
        list.append((.sgd, o))
        o.dampening = 0; o.nesterov = true
        list.append((.sgd, o))
        list.append((.adam, .defaults(for: .adam)))
        var a = OptimizerOptions.defaults(for: .adam); a.amsgrad = true; a.weightDecay = 0.1; a.learningRate = 0.05
        list.append((.adam, a))
        list.append((.adamW, .defaults(for: .adamW)))
        list.append((.rmsprop, .defaults(for: .rmsprop)))
        var r = OptimizerOptions.defaults(for: .rmsprop); r.centered = true; r.momentum = 0.5; r.weightDecay = 0.01
        list.append((.rmsprop, r))
        list.append((.adagrad, .defaults(for: .adagrad)))
        var d = OptimizerOptions.defaults(for: .adagrad); d.learningRateDecay = 0.1; d.initialAccumulatorValue = 0.2
        list.append((.adagrad, d))
        return list
    }()

    @Test(arguments: cases)
    func updatesFollowTorchOptimFormulas(algorithm: OptimizerAlgorithm, options: OptimizerOptions) throws {
        let got = try run(algorithm, options), want = reference(algorithm, options)
        for i in 0..<3 { #expect(abs(got[i] - want[i]) <= 1e-12 * max(1, abs(want[i])), "\(algorithm.name) element \(i)") }
        #expect(got != Self.start)
    }

    @Test func aNonFiniteGradientChangesNeitherWeightsNorState() throws {
        let g = Graph(dtype: .float32)
        let p = try g.parameter(try Shape([2]))
        try g.setValue(p, from: [Float(1), 2], count: 2)
        let loss = try g.sum(try g.log(p))
        let adam = try Optimizer(.adam)
        try g.forward(through: loss)
        try g.backward(from: loss)
        try adam.step(g)
        g.zeroGradients()
        try g.setValue(p, from: [Float(0), 2], count: 2)  // log(0): gradient +inf
        try g.forward(through: loss)
        try g.backward(from: loss)
        #expect(throws: BackpropError.self) { try adam.step(g) }
        #expect(adam.stepCount == 1)
        var after = [Float](repeating: 0, count: 2)
        try g.value(p, into: &after, count: 2)
        #expect(after == [0, 2])
    }

    @Test func badOptionsAreRefused() {
        var o = OptimizerOptions.defaults(for: .sgd)
        o.nesterov = true
        #expect(throws: BackpropError.self) { try Optimizer(.sgd, options: o) }
        var a = OptimizerOptions.defaults(for: .adam)
        a.beta1 = 1
        #expect(throws: BackpropError.self) { try Optimizer(.adam, options: a) }
        a = .defaults(for: .adam)
        a.learningRate = .nan
        #expect(throws: BackpropError.self) { try Optimizer(.adam, options: a) }
    }

    @Test func schedulesFollowTheirClosedForms() throws {
        var o = ScheduleOptions(rule: .step)
        o.stepSize = 2; o.gamma = 0.5
        let step = try Scheduler(o, baseRate: 1)
        #expect((0..<5).map { _ in step.step() } == [1, 0.5, 0.5, 0.25, 0.25])
        var c = ScheduleOptions(rule: .cosine)
        c.period = 4; c.minimumRate = 0.1
        let cosine = try Scheduler(c, baseRate: 1.1)
        let rates = (0..<6).map { _ in cosine.step() }
        #expect(abs(rates[1] - 0.6) < 1e-12 && abs(rates[3] - 0.1) < 1e-12 && abs(rates[5] - 0.1) < 1e-12)
        var w = ScheduleOptions(rule: .exponential)
        w.warmupEpochs = 2; w.warmupStartFactor = 0.5; w.gamma = 0.9
        let warm = try Scheduler(w, baseRate: 2)
        #expect(warm.rate == 1)
        #expect([warm.step(), warm.step(), warm.step()].map { ($0 * 1e9).rounded() / 1e9 } == [1.5, 2, 1.8])
    }

    @Test func reduceOnPlateauWaitsForPatienceThenCools() throws {
        var o = ScheduleOptions(rule: .reduceOnPlateau)
        o.patience = 1; o.factor = 0.5; o.cooldown = 1
        let s = try Scheduler(o, baseRate: 1)
        let rates = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9].map { s.step(metric: $0) }
        #expect(rates == [1, 1, 1, 0.5, 0.5, 0.5, 0.25])
    }

    @Test func clippingByNormAndByValue() throws {
        let g = Graph(dtype: .float64)
        let p = try g.parameter(try Shape([2]))
        let k = try g.constant(try Shape([2]))
        try g.setValue(k, from: [3.0, 4.0], count: 2)
        let loss = try g.sum(try g.mul(p, k))
        try g.forward(through: loss)
        try g.backward(from: loss)
        #expect(try GradientClipping.clipNorm(g, maxNorm: 1) == 5)
        var grads = [0.0, 0.0]
        try g.gradient(p, into: &grads, count: 2)
        #expect(abs(grads[0] - 0.6) < 1e-6 && abs(grads[1] - 0.8) < 1e-6)
        try GradientClipping.clipValue(g, value: 0.7)
        try g.gradient(p, into: &grads, count: 2)
        #expect(abs(grads[0] - 0.6) < 1e-6 && grads[1] == 0.7)
    }
}

@Suite struct FinitenessTests {
    @Test(arguments: [Float.nan, .infinity, -.infinity, .signalingNaN])
    func everyNonFiniteFloatIsFound(bad: Float) {
        var x = [Float](repeating: 1, count: 37)
        #expect(firstNonFinite(x, x.count) == nil)
        x[29] = bad
        #expect(firstNonFinite(x, x.count) == 29)
        x[3] = -.greatestFiniteMagnitude  // the largest finite values are not flagged
        #expect(firstNonFinite(x, x.count) == 29)
    }

    @Test(arguments: [Double.nan, .infinity, -.infinity])
    func everyNonFiniteDoubleIsFound(bad: Double) {
        var x = [Double](repeating: .greatestFiniteMagnitude, count: 9)
        #expect(firstNonFinite(x, x.count) == nil)
        x[0] = bad
        #expect(firstNonFinite(x, x.count) == 0)
    }
}
