import Glibc

/// Learning-rate schedules stepped once per epoch, as torch.optim.lr_scheduler's: an optional
/// linear warm-up, then one rule applied to the epochs after it.
public struct ScheduleOptions: Sendable, Equatable {
    public enum Rule: Int32, Sendable, CaseIterable {
        /// The base rate throughout.
        case constant = 0
        /// × gamma every `stepSize` epochs (StepLR).
        case step
        /// × gamma every epoch (ExponentialLR).
        case exponential
        /// Half a cosine from the base rate down to `minimumRate` over `period` epochs
        /// (CosineAnnealingLR), then held there.
        case cosine
        /// × factor when the metric has not improved for `patience` epochs (ReduceLROnPlateau,
        /// mode min, relative threshold).
        case reduceOnPlateau
    }

    public var rule: Rule = .constant
    public var stepSize = 1
    public var gamma = 0.1
    public var period = 10
    public var minimumRate = 0.0
    /// Epochs of linear warm-up from `warmupStartFactor` × base to the base rate (LinearLR).
    public var warmupEpochs = 0
    public var warmupStartFactor = 1.0 / 3
    public var factor = 0.1
    public var patience = 10
    public var threshold = 1e-4
    public var cooldown = 0

    public init(rule: Rule = .constant) { self.rule = rule }

    func validate() throws {
        func require(_ ok: Bool, _ message: String) throws {
            if !ok { throw BackpropError.invalidArgument("schedule: \(message)") }
        }
        try require([gamma, minimumRate, warmupStartFactor, factor, threshold].allSatisfy(\.isFinite), "options must be finite")
        try require(stepSize >= 1, "step size must be at least 1")
        try require(period >= 1, "period must be at least 1")
        try require(gamma > 0, "gamma must be positive")
        try require(minimumRate >= 0, "minimum rate must not be negative")
        try require(warmupEpochs >= 0, "warm-up epochs must not be negative")
        try require(warmupStartFactor > 0 && warmupStartFactor <= 1, "warm-up start factor must be in (0, 1]")
        try require(factor > 0 && factor < 1, "plateau factor must be in (0, 1)")
        try require(patience >= 0 && cooldown >= 0 && threshold >= 0, "patience, cooldown and threshold must not be negative")
    }
}

/// Drives an optimizer's learning rate epoch by epoch.
public final class Scheduler {
    public let options: ScheduleOptions
    public let baseRate: Double
    public private(set) var epoch = 0
    public private(set) var rate: Double
    private var plateauRate: Double
    private var best = Double.infinity
    private var badEpochs = 0
    private var cooldownLeft = 0

    public init(_ options: ScheduleOptions, baseRate: Double) throws {
        try options.validate()
        guard baseRate.isFinite, baseRate >= 0 else {
            throw BackpropError.invalidArgument("schedule: base rate must be finite and not negative")
        }
        self.options = options
        self.baseRate = baseRate
        plateauRate = baseRate
        rate = baseRate
        rate = rate(at: 0)
    }

    /// Ends an epoch: advances the schedule (using `metric`, such as the validation loss, for
    /// reduce-on-plateau) and returns the rate for the next epoch.
    @discardableResult
    public func step(metric: Double = .nan) -> Double {
        epoch += 1
        if options.rule == .reduceOnPlateau { observe(metric) }
        rate = rate(at: epoch)
        return rate
    }

    private func rate(at epoch: Int) -> Double {
        let o = options
        if epoch < o.warmupEpochs {
            let progress = Double(epoch) / Double(o.warmupEpochs)
            return baseRate * (o.warmupStartFactor + (1 - o.warmupStartFactor) * progress)
        }
        let e = epoch - o.warmupEpochs
        switch o.rule {
        case .constant: return baseRate
        case .step: return baseRate * Glibc.pow(o.gamma, Double(e / o.stepSize))
        case .exponential: return baseRate * Glibc.pow(o.gamma, Double(e))
        case .cosine:
            let t = Double(min(e, o.period)) / Double(o.period)
            return o.minimumRate + (baseRate - o.minimumRate) * (1 + cos(Double.pi * t)) / 2
        case .reduceOnPlateau: return plateauRate
        }
    }

    private func observe(_ metric: Double) {
        guard metric.isFinite else { return }
        if metric < best * (1 - options.threshold) {
            best = metric
            badEpochs = 0
        } else {
            badEpochs += 1
        }
        if cooldownLeft > 0 {
            cooldownLeft -= 1
            badEpochs = 0
        }
        if badEpochs > options.patience {
            plateauRate = max(plateauRate * options.factor, options.minimumRate)
            cooldownLeft = options.cooldown
            badEpochs = 0
        }
    }
}
