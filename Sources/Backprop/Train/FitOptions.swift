/// How `Network.fit` trains, with the conveniences of Keras's fit and PyTorch training loops.
public struct FitOptions: Sendable, Equatable {
    public var batchSize = 32
    public var epochs = 10
    /// Reshuffle the training samples every epoch, from the network's seed.
    public var shuffle = true
    /// Fraction of the samples held out for validation when no validation set is given: the
    /// last ones, taken before any shuffling (as Keras does). In [0, 1).
    public var validationSplit = 0.0
    /// Stop after this many epochs without improvement of the monitored loss (validation loss
    /// when there is validation data, else training loss); 0 never stops early.
    public var patience = 0
    /// The smallest decrease that counts as an improvement.
    public var minDelta = 0.0
    /// When stopping early, put back the weights of the best epoch.
    public var restoreBestWeights = true
    /// Clip gradients by global norm or by value before each step; 0 leaves them alone.
    public var clipNorm = 0.0
    public var clipValue = 0.0
    /// A layer whose gradient norm is below / above these is flagged vanishing / exploding.
    public var vanishingThreshold = 1e-7
    public var explodingThreshold = 1e3

    public init() {}

    func validate(samples: Int) throws {
        func require(_ ok: Bool, _ message: String) throws {
            if !ok { throw BackpropError.invalidArgument("fit: \(message)") }
        }
        try require(batchSize >= 1, "batch size must be at least 1, got \(batchSize)")
        try require(epochs >= 1, "epochs must be at least 1, got \(epochs)")
        try require(validationSplit >= 0 && validationSplit < 1, "validation split must be in [0, 1), got \(validationSplit)")
        try require(patience >= 0, "patience must not be negative")
        try require([minDelta, clipNorm, clipValue, vanishingThreshold, explodingThreshold].allSatisfy { $0.isFinite && $0 >= 0 },
                    "min delta, clipping and thresholds must be finite and not negative")
        try require(samples >= 1, "there are no training samples")
    }
}

/// What `fit` reports at the end of every epoch.
public struct EpochReport: Sendable {
    /// 1-based.
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    /// NaN without validation data.
    public var validationLoss: Double
    public var validationAccuracy: Double
    /// The rate used during this epoch.
    public var learningRate: Double
    /// Per layer with parameters (in layer order): the L2 norm of its gradients on the epoch's
    /// last step, and the ratio ‖update‖ / ‖weights‖ of that step.
    public var gradientNorms: [Double]
    public var updateRatios: [Double]
    /// Some layer's gradient norm was below the vanishing threshold / above the exploding one.
    public var vanishing: Bool
    public var exploding: Bool
}

/// The outcome of `fit`.
public struct FitResult: Sendable {
    public var history: [EpochReport] = []
    /// The epoch whose monitored loss was lowest (1-based), and that loss.
    public var bestEpoch = 0
    public var bestLoss = Double.infinity
    public var stoppedEarly = false
    /// The callback asked to stop.
    public var stoppedByCallback = false
}
