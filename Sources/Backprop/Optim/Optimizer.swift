/// The update rules users know from torch.optim, with PyTorch's formulas and defaults.
public enum OptimizerAlgorithm: Int32, Sendable, CaseIterable {
    case sgd = 0, adam, adamW, rmsprop, adagrad

    public var name: String {
        switch self {
        case .sgd: "SGD"
        case .adam: "Adam"
        case .adamW: "AdamW"
        case .rmsprop: "RMSprop"
        case .adagrad: "Adagrad"
        }
    }
}

/// Hyperparameters, named as in torch.optim. Each algorithm reads the ones it defines.
public struct OptimizerOptions: Sendable, Equatable {
    public var learningRate: Double
    /// L2 penalty added to the gradient (decoupled, multiplying the weights, in AdamW).
    public var weightDecay = 0.0
    /// SGD and RMSprop.
    public var momentum = 0.0
    /// SGD.
    public var dampening = 0.0
    public var nesterov = false
    /// Adam and AdamW.
    public var beta1 = 0.9
    public var beta2 = 0.999
    public var amsgrad = false
    /// Adam, AdamW, RMSprop and Adagrad.
    public var eps = 1e-8
    /// RMSprop's smoothing constant, and whether to center by the mean gradient.
    public var alpha = 0.99
    public var centered = false
    /// Adagrad.
    public var learningRateDecay = 0.0
    public var initialAccumulatorValue = 0.0

    /// Options with this learning rate and every other value at its torch.optim default.
    public init(learningRate: Double, weightDecay: Double = 0, eps: Double = 1e-8) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.eps = eps
    }

    /// PyTorch's defaults for each algorithm (SGD has no default rate there; 0.01 here).
    public static func defaults(for algorithm: OptimizerAlgorithm) -> OptimizerOptions {
        switch algorithm {
        case .sgd: OptimizerOptions(learningRate: 0.01)
        case .adam: OptimizerOptions(learningRate: 1e-3)
        case .adamW: OptimizerOptions(learningRate: 1e-3, weightDecay: 1e-2)
        case .rmsprop: OptimizerOptions(learningRate: 1e-2)
        case .adagrad: OptimizerOptions(learningRate: 1e-2, eps: 1e-10)
        }
    }

    /// Checks every value the way torch.optim does, so a bad one is refused before any step.
    public func validate(for algorithm: OptimizerAlgorithm) throws {
        func require(_ ok: Bool, _ message: String) throws {
            if !ok { throw BackpropError.invalidArgument("\(algorithm.name): \(message)") }
        }
        let values = [learningRate, weightDecay, momentum, dampening, beta1, beta2, eps, alpha,
                      learningRateDecay, initialAccumulatorValue]
        try require(values.allSatisfy(\.isFinite), "every option must be finite")
        try require(learningRate >= 0, "learning rate must not be negative, got \(learningRate)")
        try require(weightDecay >= 0, "weight decay must not be negative, got \(weightDecay)")
        try require(momentum >= 0, "momentum must not be negative, got \(momentum)")
        try require(eps >= 0, "eps must not be negative, got \(eps)")
        switch algorithm {
        case .sgd:
            try require(!nesterov || (momentum > 0 && dampening == 0), "nesterov needs momentum > 0 and dampening 0")
        case .adam, .adamW:
            try require(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got \(beta1)")
            try require(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got \(beta2)")
        case .rmsprop:
            try require(alpha >= 0, "alpha must not be negative, got \(alpha)")
        case .adagrad:
            try require(learningRateDecay >= 0, "learning rate decay must not be negative")
            try require(initialAccumulatorValue >= 0, "initial accumulator value must not be negative")
        }
    }
}

/// An optimizer over a graph's flat parameter block. Its state (momentum buffers, moment
/// estimates) is sized on the first step and must then keep meeting the same parameter count.
/// A step whose gradients hold NaN or infinity is refused: weights and state stay as they were.
public final class Optimizer {
    public let algorithm: OptimizerAlgorithm
    @exclusivity(unchecked) public private(set) var options: OptimizerOptions
    /// Steps taken (PyTorch's `step` in the state, which bias corrections use).
    @exclusivity(unchecked) public private(set) var stepCount = 0
    /// Named state buffers, each one value per parameter element, in the graph's element type.
    @exclusivity(unchecked) private(set) var state: [(name: String, storage: Storage)] = [] {
        didSet { stateShape = state.first.map { ($0.storage.count, $0.storage.dtype) } }
    }
    /// The parameter count and type the state is sized for (nil without state): what every
    /// step checks, kept apart so that the check copies no buffer reference.
    @exclusivity(unchecked) private var stateShape: (count: Int, dtype: DType)?

    public init(_ algorithm: OptimizerAlgorithm, options: OptimizerOptions? = nil) throws {
        let options = options ?? .defaults(for: algorithm)
        try options.validate(for: algorithm)
        self.algorithm = algorithm
        self.options = options
    }

    public var learningRate: Double { options.learningRate }

    public func setLearningRate(_ rate: Double) throws {
        var changed = options
        changed.learningRate = rate
        try changed.validate(for: algorithm)
        options = changed
    }

    /// Forgets the state, as a freshly made optimizer.
    public func reset() {
        state = []
        stepCount = 0
    }

    /// Applies one update to every parameter of `graph` from its gradients.
    public func step(_ graph: Graph) throws { try step(graph, gradientsKnownFinite: false) }

    /// step, skipping the check for NaN and infinity when whoever computed the gradients has
    /// just checked them all (a network's planned step does, as it stores them).
    func step(_ graph: Graph, gradientsKnownFinite: Bool) throws {
        let n = graph.parameterCount
        try prepareState(count: n, dtype: graph.dtype)
        switch graph.dtype {
        case .float32: try step(Float.self, graph, gradientsKnownFinite)
        case .float64: try step(Double.self, graph, gradientsKnownFinite)
        }
        graph.parametersDidChange()
    }

    /// Refuses a graph whose parameters do not match the state of earlier steps, so that a
    /// caller can find out before it changes anything.
    public func checkState(for graph: Graph) throws {
        try checkState(count: graph.parameterCount, dtype: graph.dtype)
    }

    private func checkState(count: Int, dtype: DType) throws {
        guard let shape = stateShape else { return }
        guard shape.count == count, shape.dtype == dtype else {
            throw BackpropError.invalidArgument("\(algorithm.name): this optimizer has state for \(shape.count) \(shape.dtype.name) parameters, not \(count) \(dtype.name): use one optimizer per network, or reset it")
        }
    }

    private func prepareState(count: Int, dtype: DType) throws {
        try checkState(count: count, dtype: dtype)
        guard state.isEmpty else { return }
        state = try stateNames.map { (name: $0, storage: try Storage(count: count, dtype: dtype)) }
        if algorithm == .adagrad && options.initialAccumulatorValue != 0 {
            fill(state[0].storage, with: options.initialAccumulatorValue)
        }
    }

    /// The state buffers this algorithm keeps with these options, in order (torch.optim's names).
    var stateNames: [String] {
        switch algorithm {
        case .sgd: options.momentum != 0 ? ["momentum_buffer"] : []
        case .adam, .adamW: ["exp_avg", "exp_avg_sq"] + (options.amsgrad ? ["max_exp_avg_sq"] : [])
        case .rmsprop: ["square_avg"] + (options.momentum > 0 ? ["momentum_buffer"] : []) + (options.centered ? ["grad_avg"] : [])
        case .adagrad: ["sum"]
        }
    }

    /// Puts back a step count and state saved from an optimizer of the same algorithm and
    /// options (checkpoints): `state` holds every name of `stateNames`, in order, or is empty.
    func restore(stepCount: Int, state: [(name: String, storage: Storage)]) {
        self.stepCount = stepCount
        self.state = state
    }

    private func fill(_ storage: Storage, with value: Double) {
        switch storage.dtype {
        case .float32: storage.typed(Float.self).update(repeating: Float(value), count: storage.count)
        case .float64: storage.typed(Double.self).update(repeating: value, count: storage.count)
        }
    }

    private func buffer<T: Scalar>(_ name: String, _: T.Type) -> UnsafeMutablePointer<T> {
        // A loop rather than `first(where:)`, whose closure costs more than the search.
        for entry in state where entry.name == name { return entry.storage.typed(T.self) }
        preconditionFailure("\(algorithm.name) has no state named \(name)")
    }

    private func step<T: Scalar>(_: T.Type, _ graph: Graph, _ gradientsKnownFinite: Bool) throws {
        let n = graph.parameterCount
        let grad = graph.parameterGradients.typed(T.self)
        if !gradientsKnownFinite, let bad = firstNonFinite(grad, n) {
            throw BackpropError.nonFinite("gradient element \(bad) of the parameters is \(grad[bad]); no weight or optimizer state was changed")
        }
        let t = stepCount + 1
        var loop = UpdateLoop(algorithm: algorithm, options: options, step: t,
                              parameters: graph.parameterValues.typed(T.self), gradients: grad)
        let o = options
        switch algorithm {
        case .sgd:
            if o.momentum != 0 { loop.momentumBuffer = buffer("momentum_buffer", T.self) }
        case .adam, .adamW:
            loop.expAvg = buffer("exp_avg", T.self)
            loop.expAvgSq = buffer("exp_avg_sq", T.self)
            if o.amsgrad { loop.maxExpAvgSq = buffer("max_exp_avg_sq", T.self) }
        case .rmsprop:
            loop.squareAvg = buffer("square_avg", T.self)
            if o.momentum > 0 { loop.momentumBuffer = buffer("momentum_buffer", T.self) }
            if o.centered { loop.gradAvg = buffer("grad_avg", T.self) }
        case .adagrad:
            loop.sum = buffer("sum", T.self)
        }
        // Below 32k parameters a range each is not worth waking another thread.
        Parallelism.forEachRange(n, minimumPerRange: 1 << 15, loop)
        stepCount = t
    }
}
