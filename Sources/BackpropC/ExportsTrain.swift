import Backprop

// bp_net_fit and bp_net_evaluate: the training loop from C, with an epoch callback.

/// `bp_epoch_report` from backprop.h.
struct CEpochReport {
    var size: UInt
    var epoch: UInt
    var trainLoss: Double
    var trainAccuracy: Double
    var validationLoss: Double
    var validationAccuracy: Double
    var learningRate: Double
    var layerCount: UInt
    var gradientNorms: UnsafePointer<Double>?
    var updateRatios: UnsafePointer<Double>?
    var vanishing: Int32
    var exploding: Int32
}

typealias CEpochCallback = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?) -> Int32

/// `bp_fit_options` from backprop.h.
struct CFitOptions {
    var size: UInt
    var batchSize: UInt
    var epochs: UInt
    var shuffle: Int32
    var validationSplit: Double
    var patience: UInt
    var minDelta: Double
    var restoreBestWeights: Int32
    var clipNorm: Double
    var clipValue: Double
    var vanishingThreshold: Double
    var explodingThreshold: Double
    var validationSamples: UInt
    var validationInputs: UnsafePointer<Float>?
    var validationInputCount: UInt
    var validationTargets: UnsafePointer<Float>?
    var validationTargetCount: UInt
    var validationLabels: UnsafePointer<Int32>?
    var validationLabelCount: UInt
    var callback: CEpochCallback?
    var userdata: UnsafeMutableRawPointer?

    init(_ o: FitOptions) {
        size = UInt(MemoryLayout<CFitOptions>.size)
        batchSize = UInt(o.batchSize)
        epochs = UInt(o.epochs)
        shuffle = o.shuffle ? 1 : 0
        validationSplit = o.validationSplit
        patience = UInt(o.patience)
        minDelta = o.minDelta
        restoreBestWeights = o.restoreBestWeights ? 1 : 0
        clipNorm = o.clipNorm
        clipValue = o.clipValue
        vanishingThreshold = o.vanishingThreshold
        explodingThreshold = o.explodingThreshold
        validationSamples = 0
        validationInputCount = 0
        validationTargetCount = 0
        validationLabelCount = 0
    }

    func options() throws -> FitOptions {
        var o = FitOptions()
        func int(_ value: UInt, _ name: String) throws -> Int {
            guard let v = Int(exactly: value), v <= Int(Int32.max) else {
                throw BoundaryError.invalidArgument("fit: \(name) \(value) is too large")
            }
            return v
        }
        o.batchSize = try int(batchSize, "batch_size")
        o.epochs = try int(epochs, "epochs")
        o.shuffle = shuffle != 0
        o.validationSplit = validationSplit
        o.patience = try int(patience, "patience")
        o.minDelta = minDelta
        o.restoreBestWeights = restoreBestWeights != 0
        o.clipNorm = clipNorm
        o.clipValue = clipValue
        o.vanishingThreshold = vanishingThreshold
        o.explodingThreshold = explodingThreshold
        return o
    }
}

/// `bp_fit_result` from backprop.h.
struct CFitResult {
    var size: UInt
    var epochsRun: UInt
    var bestEpoch: UInt
    var bestLoss: Double
    var stoppedEarly: Int32
    var stoppedByCallback: Int32
    var finalTrainLoss: Double
    var finalValidationLoss: Double
}

@_cdecl("bp_fit_options_default")
public func bp_fit_options_default(_ out: UnsafeMutableRawPointer?) -> Int32 {
    guarded(#function) {
        guard let out else { throw BoundaryError.invalidArgument("out is NULL") }
        out.storeBytes(of: CFitOptions(FitOptions()), as: CFitOptions.self)
    }
}

@_cdecl("bp_net_fit")
public func bp_net_fit(_ net: OpaquePointer?, _ optimizer: OpaquePointer?, _ samples: UInt,
                       _ inputs: UnsafePointer<Float>?, _ inputCount: UInt, _ targets: UnsafePointer<Float>?,
                       _ targetCount: UInt, _ options: UnsafeRawPointer?, _ result: UnsafeMutableRawPointer?) -> Int32 {
    guarded(#function) {
        try fit(net, optimizer, samples, inputs, inputCount, options, result) {
            .values(try buffer(targets, targetCount, "targets"))
        }
    }
}

@_cdecl("bp_net_fit_labels")
public func bp_net_fit_labels(_ net: OpaquePointer?, _ optimizer: OpaquePointer?, _ samples: UInt,
                              _ inputs: UnsafePointer<Float>?, _ inputCount: UInt, _ labels: UnsafePointer<Int32>?,
                              _ labelCount: UInt, _ options: UnsafeRawPointer?, _ result: UnsafeMutableRawPointer?) -> Int32 {
    guarded(#function) {
        try fit(net, optimizer, samples, inputs, inputCount, options, result) {
            .labels(try buffer(labels, labelCount, "labels"))
        }
    }
}

@_cdecl("bp_net_evaluate")
public func bp_net_evaluate(_ net: OpaquePointer?, _ samples: UInt, _ inputs: UnsafePointer<Float>?, _ inputCount: UInt,
                            _ targets: UnsafePointer<Float>?, _ targetCount: UInt,
                            _ loss: UnsafeMutablePointer<Double>?, _ accuracy: UnsafeMutablePointer<Double>?) -> Int32 {
    withNetwork(net) { network in
        let (l, a) = try network.evaluate(inputs: buffer(inputs, inputCount, "inputs"),
                                          targets: .values(buffer(targets, targetCount, "targets")),
                                          samples: size(samples, "samples"))
        loss?.pointee = l
        accuracy?.pointee = a
    }
}

@_cdecl("bp_net_evaluate_labels")
public func bp_net_evaluate_labels(_ net: OpaquePointer?, _ samples: UInt, _ inputs: UnsafePointer<Float>?, _ inputCount: UInt,
                                   _ labels: UnsafePointer<Int32>?, _ labelCount: UInt,
                                   _ loss: UnsafeMutablePointer<Double>?, _ accuracy: UnsafeMutablePointer<Double>?) -> Int32 {
    withNetwork(net) { network in
        let (l, a) = try network.evaluate(inputs: buffer(inputs, inputCount, "inputs"),
                                          targets: .labels(buffer(labels, labelCount, "labels")),
                                          samples: size(samples, "samples"))
        loss?.pointee = l
        accuracy?.pointee = a
    }
}

/// The shared body of bp_net_fit and bp_net_fit_labels: every argument is read and checked
/// before the network and optimizer are locked and training starts.
private func fit(_ net: OpaquePointer?, _ optimizer: OpaquePointer?, _ samples: UInt, _ inputs: UnsafePointer<Float>?,
                 _ inputCount: UInt, _ options: UnsafeRawPointer?, _ result: UnsafeMutableRawPointer?,
                 _ targets: () throws -> Network.Targets) throws {
    let settings = try loadFitOptions(options)
    let fitOptions = try settings.options()
    let inputBuffer = try buffer(inputs, inputCount, "inputs")
    let targetBuffer = try targets()
    let sampleCount = try size(samples, "samples")
    if let result {
        let declared = result.load(as: UInt.self)
        guard declared >= UInt(MemoryLayout<CFitResult>.size) else {
            throw BoundaryError.invalidArgument("result->size is \(declared): set it to sizeof(bp_fit_result)")
        }
    }
    let validation = try validationSet(settings, targets: targetBuffer)
    try locked(net, "bp_net", \.network) { network in
        try locked(optimizer, "bp_optimizer", \.optimizer) { handle in
            let outcome = try network.fit(
                inputs: inputBuffer, targets: targetBuffer, samples: sampleCount, optimizer: handle.optimizer,
                scheduler: handle.scheduler, options: fitOptions, validation: validation) { report in
                    guard let callback = settings.callback else { return true }
                    return report.gradientNorms.withUnsafeBufferPointer { norms in
                        report.updateRatios.withUnsafeBufferPointer { ratios in
                            var c = CEpochReport(
                                size: UInt(MemoryLayout<CEpochReport>.size), epoch: UInt(report.epoch),
                                trainLoss: report.trainLoss, trainAccuracy: report.trainAccuracy,
                                validationLoss: report.validationLoss, validationAccuracy: report.validationAccuracy,
                                learningRate: report.learningRate, layerCount: UInt(norms.count),
                                gradientNorms: norms.baseAddress, updateRatios: ratios.baseAddress,
                                vanishing: report.vanishing ? 1 : 0, exploding: report.exploding ? 1 : 0)
                            return callback(&c, settings.userdata) == 0
                        }
                    }
                }
            if let result {
                let last = outcome.history.last
                result.storeBytes(of: CFitResult(
                    size: result.load(as: UInt.self), epochsRun: UInt(outcome.history.count), bestEpoch: UInt(outcome.bestEpoch),
                    bestLoss: outcome.bestLoss, stoppedEarly: outcome.stoppedEarly ? 1 : 0,
                    stoppedByCallback: outcome.stoppedByCallback ? 1 : 0, finalTrainLoss: last?.trainLoss ?? .nan,
                    finalValidationLoss: last?.validationLoss ?? .nan), as: CFitResult.self)
            }
        }
    }
}

private func loadFitOptions(_ pointer: UnsafeRawPointer?) throws -> CFitOptions {
    guard let pointer else { return CFitOptions(FitOptions()) }
    let declared = pointer.load(as: UInt.self)
    guard declared >= UInt(MemoryLayout<CFitOptions>.size) else {
        throw BoundaryError.invalidArgument("options->size is \(declared): fill the struct with bp_fit_options_default first")
    }
    return pointer.load(as: CFitOptions.self)
}

/// The explicit validation set, of the same kind as the training targets, if one is given.
private func validationSet(_ o: CFitOptions, targets: Network.Targets)
    throws -> (inputs: UnsafeBufferPointer<Float>, targets: Network.Targets, samples: Int)? {
    guard o.validationSamples > 0 else { return nil }
    let inputs = try buffer(o.validationInputs, o.validationInputCount, "validation_inputs")
    let checked: Network.Targets = switch targets {
    case .values: .values(try buffer(o.validationTargets, o.validationTargetCount, "validation_targets"))
    case .labels: .labels(try buffer(o.validationLabels, o.validationLabelCount, "validation_labels"))
    }
    return (inputs, checked, try size(o.validationSamples, "validation_samples"))
}
