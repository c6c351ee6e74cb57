import Backprop

// The bp_optimizer_* functions, learning-rate schedules and gradient clipping.

/// `bp_optimizer_options` from backprop.h, field for field (size_t, double and int members in
/// the same order, so the layouts agree).
struct COptimizerOptions {
    var size: UInt
    var learningRate: Double
    var weightDecay: Double
    var momentum: Double
    var dampening: Double
    var nesterov: Int32
    var beta1: Double
    var beta2: Double
    var amsgrad: Int32
    var eps: Double
    var alpha: Double
    var centered: Int32
    var learningRateDecay: Double
    var initialAccumulatorValue: Double

    init(_ o: OptimizerOptions) {
        size = UInt(MemoryLayout<COptimizerOptions>.size)
        learningRate = o.learningRate
        weightDecay = o.weightDecay
        momentum = o.momentum
        dampening = o.dampening
        nesterov = o.nesterov ? 1 : 0
        beta1 = o.beta1
        beta2 = o.beta2
        amsgrad = o.amsgrad ? 1 : 0
        eps = o.eps
        alpha = o.alpha
        centered = o.centered ? 1 : 0
        learningRateDecay = o.learningRateDecay
        initialAccumulatorValue = o.initialAccumulatorValue
    }

    var options: OptimizerOptions {
        var o = OptimizerOptions(learningRate: learningRate)
        o.weightDecay = weightDecay
        o.momentum = momentum
        o.dampening = dampening
        o.nesterov = nesterov != 0
        o.beta1 = beta1
        o.beta2 = beta2
        o.amsgrad = amsgrad != 0
        o.eps = eps
        o.alpha = alpha
        o.centered = centered != 0
        o.learningRateDecay = learningRateDecay
        o.initialAccumulatorValue = initialAccumulatorValue
        return o
    }
}

/// `bp_schedule_options` from backprop.h.
struct CScheduleOptions {
    var size: UInt
    var rule: Int32
    var stepSize: UInt
    var gamma: Double
    var period: UInt
    var minimumRate: Double
    var warmupEpochs: UInt
    var warmupStartFactor: Double
    var factor: Double
    var patience: UInt
    var threshold: Double
    var cooldown: UInt

    init(_ o: ScheduleOptions) {
        size = UInt(MemoryLayout<CScheduleOptions>.size)
        rule = o.rule.rawValue
        stepSize = UInt(o.stepSize)
        gamma = o.gamma
        period = UInt(o.period)
        minimumRate = o.minimumRate
        warmupEpochs = UInt(o.warmupEpochs)
        warmupStartFactor = o.warmupStartFactor
        factor = o.factor
        patience = UInt(o.patience)
        threshold = o.threshold
        cooldown = UInt(o.cooldown)
    }

    func options() throws -> ScheduleOptions {
        var o = ScheduleOptions(rule: try enumValue(rule, "schedule rule"))
        func int(_ value: UInt, _ name: String) throws -> Int {
            guard let v = Int(exactly: value), v <= Int(Int32.max) else {
                throw BoundaryError.invalidArgument("schedule: \(name) \(value) is too large")
            }
            return v
        }
        o.stepSize = try int(stepSize, "step_size")
        o.gamma = gamma
        o.period = try int(period, "period")
        o.minimumRate = minimumRate
        o.warmupEpochs = try int(warmupEpochs, "warmup_epochs")
        o.warmupStartFactor = warmupStartFactor
        o.factor = factor
        o.patience = try int(patience, "patience")
        o.threshold = threshold
        o.cooldown = try int(cooldown, "cooldown")
        return o
    }
}

/// Reads a size-prefixed options struct: the caller's size must cover the fields we know.
private func load<T>(_ pointer: UnsafeRawPointer?, as type: T.Type, _ name: String) throws -> T {
    guard let pointer else { throw BoundaryError.invalidArgument("\(name) is NULL") }
    let declared = pointer.load(as: UInt.self)
    guard declared >= UInt(MemoryLayout<T>.size) else {
        throw BoundaryError.invalidArgument("\(name)->size is \(declared): fill the struct with its _default function first")
    }
    return pointer.load(as: T.self)
}

@_cdecl("bp_optimizer_options_default")
public func bp_optimizer_options_default(_ kind: Int32, _ out: UnsafeMutableRawPointer?) -> Int32 {
    guarded(#function) {
        let algorithm: OptimizerAlgorithm = try enumValue(kind, "optimizer kind")
        guard let out else { throw BoundaryError.invalidArgument("out is NULL") }
        out.storeBytes(of: COptimizerOptions(.defaults(for: algorithm)), as: COptimizerOptions.self)
    }
}

@_cdecl("bp_optimizer_create")
public func bp_optimizer_create(_ kind: Int32, _ options: UnsafeRawPointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded(#function) {
        let out = try required(out, "out")
        let algorithm: OptimizerAlgorithm = try enumValue(kind, "optimizer kind")
        let settings = options == nil ? nil : try load(options, as: COptimizerOptions.self, "options").options
        let handle = Handle(optimizer: OptimizerHandle(try Optimizer(algorithm, options: settings)))
        out.pointee = OpaquePointer(Registry.register(handle))
    }
}

@_cdecl("bp_optimizer_free")
public func bp_optimizer_free(_ optimizer: OpaquePointer?) -> Int32 {
    freeHandle(optimizer, "bp_optimizer", #function, \.optimizer)
}

@_cdecl("bp_optimizer_step")
public func bp_optimizer_step(_ optimizer: OpaquePointer?, _ net: OpaquePointer?) -> Int32 {
    guarded(#function) {
        try locked(optimizer, "bp_optimizer", \.optimizer) { o in
            try locked(net, "bp_net", \.network) { try o.optimizer.step($0.graph) }
        }
    }
}

@_cdecl("bp_optimizer_train_step")
public func bp_optimizer_train_step(_ optimizer: OpaquePointer?, _ net: OpaquePointer?, _ batch: UInt,
                                    _ inputs: UnsafePointer<Float>?, _ inputCount: UInt,
                                    _ targets: UnsafePointer<Float>?, _ targetCount: UInt,
                                    _ loss: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded(#function) {
        try trainStep(optimizer, net, batch, inputs, inputCount, loss) {
            .values(try buffer(targets, targetCount, "targets"))
        }
    }
}

@_cdecl("bp_optimizer_train_step_labels")
public func bp_optimizer_train_step_labels(_ optimizer: OpaquePointer?, _ net: OpaquePointer?, _ batch: UInt,
                                           _ inputs: UnsafePointer<Float>?, _ inputCount: UInt,
                                           _ labels: UnsafePointer<Int32>?, _ labelCount: UInt,
                                           _ loss: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded(#function) {
        try trainStep(optimizer, net, batch, inputs, inputCount, loss) {
            .labels(try buffer(labels, labelCount, "labels"))
        }
    }
}

/// The two bp_optimizer_train_step forms, which differ only in their targets.
private func trainStep(_ optimizer: OpaquePointer?, _ net: OpaquePointer?, _ batch: UInt,
                       _ inputs: UnsafePointer<Float>?, _ inputCount: UInt, _ loss: UnsafeMutablePointer<Float>?,
                       _ targets: () throws -> Network.Targets) throws {
    try locked(optimizer, "bp_optimizer", \.optimizer) { o in
        try locked(net, "bp_net", \.network) { network in
            let value = try network.trainStep(buffer(inputs, inputCount, "inputs"), batch: size(batch, "batch"),
                                              targets: targets(), optimizer: o.optimizer)
            loss?.pointee = Float(value)
        }
    }
}

@_cdecl("bp_optimizer_step_graph")
public func bp_optimizer_step_graph(_ optimizer: OpaquePointer?, _ graph: OpaquePointer?) -> Int32 {
    guarded(#function) {
        try locked(optimizer, "bp_optimizer", \.optimizer) { o in
            try locked(graph, "bp_graph", \.graph) { try o.optimizer.step($0) }
        }
    }
}

@_cdecl("bp_optimizer_learning_rate")
public func bp_optimizer_learning_rate(_ optimizer: OpaquePointer?, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    withOptimizer(optimizer) { try required(out, "out").pointee = $0.optimizer.learningRate }
}

@_cdecl("bp_optimizer_set_learning_rate")
public func bp_optimizer_set_learning_rate(_ optimizer: OpaquePointer?, _ rate: Double) -> Int32 {
    withOptimizer(optimizer) { try $0.optimizer.setLearningRate(rate) }
}

@_cdecl("bp_optimizer_reset")
public func bp_optimizer_reset(_ optimizer: OpaquePointer?) -> Int32 {
    withOptimizer(optimizer) { $0.optimizer.reset() }
}

@_cdecl("bp_schedule_options_default")
public func bp_schedule_options_default(_ rule: Int32, _ out: UnsafeMutableRawPointer?) -> Int32 {
    guarded(#function) {
        let rule: ScheduleOptions.Rule = try enumValue(rule, "schedule rule")
        guard let out else { throw BoundaryError.invalidArgument("out is NULL") }
        out.storeBytes(of: CScheduleOptions(ScheduleOptions(rule: rule)), as: CScheduleOptions.self)
    }
}

@_cdecl("bp_optimizer_set_schedule")
public func bp_optimizer_set_schedule(_ optimizer: OpaquePointer?, _ options: UnsafeRawPointer?) -> Int32 {
    withOptimizer(optimizer) { o in
        let settings = try load(options, as: CScheduleOptions.self, "options").options()
        let scheduler = try Scheduler(settings, baseRate: o.optimizer.learningRate)
        try o.optimizer.setLearningRate(scheduler.rate)
        o.scheduler = scheduler
    }
}

@_cdecl("bp_optimizer_schedule_step")
public func bp_optimizer_schedule_step(_ optimizer: OpaquePointer?, _ metric: Double, _ rate: UnsafeMutablePointer<Double>?) -> Int32 {
    withOptimizer(optimizer) { o in
        guard let scheduler = o.scheduler else {
            throw BackpropError.state("no schedule is set: call bp_optimizer_set_schedule first")
        }
        let next = scheduler.step(metric: metric)
        try o.optimizer.setLearningRate(next)
        rate?.pointee = next
    }
}

@_cdecl("bp_net_clip_grad_norm")
public func bp_net_clip_grad_norm(_ net: OpaquePointer?, _ maxNorm: Double, _ totalNorm: UnsafeMutablePointer<Double>?) -> Int32 {
    withNetwork(net) {
        let norm = try GradientClipping.clipNorm($0.graph, maxNorm: maxNorm)
        totalNorm?.pointee = norm
    }
}

@_cdecl("bp_net_clip_grad_value")
public func bp_net_clip_grad_value(_ net: OpaquePointer?, _ value: Double) -> Int32 {
    withNetwork(net) { try GradientClipping.clipValue($0.graph, value: value) }
}
