/// The training loop: minibatches, shuffling, validation, early stopping and per-epoch reports.
extension Network {
    /// Trains on `samples` rows of `inputs` against `targets`, with `optimizer` (and, when given,
    /// `scheduler`, stepped each epoch with the monitored loss). `onEpoch` sees every epoch's
    /// report and returns false to stop. Arguments are checked before anything changes; a
    /// non-finite loss or gradient stops training with `BackpropError.nonFinite`, leaving the
    /// weights and optimizer state of the last good step.
    public func fit(inputs: UnsafeBufferPointer<Float>, targets: Targets, samples: Int, optimizer: Optimizer,
                    scheduler: Scheduler? = nil, options: FitOptions = FitOptions(),
                    validation: (inputs: UnsafeBufferPointer<Float>, targets: Targets, samples: Int)? = nil,
                    onEpoch: (EpochReport) -> Bool = { _ in true }) throws -> FitResult {
        try checkHasLayers()
        try options.validate(samples: samples)
        try checkDataset(inputs, targets, samples: samples)
        if let validation { try checkDataset(validation.inputs, validation.targets, samples: validation.samples) }

        // Hold out the last samples when asked to split.
        var trainSamples = samples
        var heldOut = validation
        if heldOut == nil && options.validationSplit > 0 {
            let count = Int(Double(samples) * options.validationSplit)
            guard count >= 1, count < samples else {
                throw BackpropError.invalidArgument("fit: a validation split of \(options.validationSplit) leaves no validation or no training samples out of \(samples)")
            }
            trainSamples = samples - count
            heldOut = (UnsafeBufferPointer(rebasing: inputs[(trainSamples * inputWidth)...]),
                       targets.rows(trainSamples..<samples, width: outputWidth), count)
        }

        // Every buffer the epochs use is allocated now, so that running out of memory stops the
        // fit before its first step changes anything.
        let batches = try MinibatchSampler(samples: trainSamples, batchSize: options.batchSize, inputWidth: inputWidth,
                                           outputWidth: outputWidth, seed: seed &+ 0x5EED_5EED)
        let healthBuffers = try LayerHealth.Buffers(parameterCount: parameterCount)
        let keepsBest = options.patience > 0 && options.restoreBestWeights
        let bestWeights = keepsBest ? try CheckedArray<Float>(zeros: parameterCount) : nil
        var hasBestWeights = false
        let validationOutputs = try heldOut.map { try CheckedArray<Float>(zeros: min(options.batchSize, $0.samples) * outputWidth) }
        var result = FitResult()
        var epochsWithoutImprovement = 0
        for epoch in 1...options.epochs {
            let rate = optimizer.learningRate
            if options.shuffle { batches.shuffle() }
            var lossSum = 0.0, correct = 0
            var health = LayerHealth()
            for b in 0..<batches.count {
                let batch = batches.gather(b, inputs: inputs, targets: targets)
                let (loss, hits, measured) = try step(batch, optimizer: optimizer, options: options,
                                                      health: b == batches.count - 1 ? healthBuffers : nil)
                lossSum += loss * Double(batch.samples)
                correct += hits
                if let measured { health = measured }
            }
            var report = EpochReport(
                epoch: epoch, trainLoss: lossSum / Double(trainSamples),
                trainAccuracy: Double(correct) / Double(trainSamples), validationLoss: .nan, validationAccuracy: .nan,
                learningRate: rate, gradientNorms: health.gradientNorms, updateRatios: health.updateRatios,
                vanishing: health.gradientNorms.contains { $0 < options.vanishingThreshold },
                exploding: health.gradientNorms.contains { $0 > options.explodingThreshold })
            if let heldOut, let validationOutputs {
                (report.validationLoss, report.validationAccuracy) = try evaluate(
                    inputs: heldOut.inputs, targets: heldOut.targets, samples: heldOut.samples, batchSize: options.batchSize,
                    outputs: validationOutputs)
            }
            result.history.append(report)

            let monitored = heldOut == nil ? report.trainLoss : report.validationLoss
            if monitored < result.bestLoss - options.minDelta {
                result.bestLoss = monitored
                result.bestEpoch = epoch
                epochsWithoutImprovement = 0
                if let bestWeights {
                    try graph.copyParameters(into: bestWeights.buffer)
                    hasBestWeights = true
                }
            } else {
                epochsWithoutImprovement += 1
            }
            if let scheduler { try optimizer.setLearningRate(scheduler.step(metric: monitored)) }
            if !onEpoch(report) {
                result.stoppedByCallback = true
                break
            }
            if options.patience > 0 && epochsWithoutImprovement >= options.patience {
                result.stoppedEarly = true
                if let bestWeights, hasBestWeights {
                    try graph.setParameters(from: UnsafeBufferPointer(bestWeights.buffer))
                }
                break
            }
        }
        return result
    }

    /// The mean loss and the accuracy over `samples` rows, in inference mode, `batchSize` rows at
    /// a time. Accuracy: the argmax of the outputs against the label (cross-entropy) or against
    /// the argmax of the target (MSE with several outputs), or output > 0.5 against target > 0.5
    /// (MSE with one output).
    public func evaluate(inputs: UnsafeBufferPointer<Float>, targets: Targets, samples: Int,
                         batchSize: Int = 256) throws -> (loss: Double, accuracy: Double) {
        guard batchSize >= 1 else { throw BackpropError.invalidArgument("evaluate: batch size must be at least 1") }
        try checkDataset(inputs, targets, samples: samples)
        let outputs = try CheckedArray<Float>(zeros: min(batchSize, samples) * outputWidth)
        return try evaluate(inputs: inputs, targets: targets, samples: samples, batchSize: batchSize, outputs: outputs)
    }

    /// `evaluate` on checked data, with room for `batchSize` rows of outputs.
    private func evaluate(inputs: UnsafeBufferPointer<Float>, targets: Targets, samples: Int, batchSize: Int,
                          outputs: CheckedArray<Float>) throws -> (loss: Double, accuracy: Double) {
        var lossSum = 0.0, correct = 0
        var start = 0
        while start < samples {
            let count = min(batchSize, samples - start)
            let rows = start..<(start + count)
            let batchInputs = UnsafeBufferPointer(rebasing: inputs[(start * inputWidth)..<((start + count) * inputWidth)])
            let batchTargets = targets.rows(rows, width: outputWidth)
            let out = UnsafeMutableBufferPointer(rebasing: outputs.buffer[0..<(count * outputWidth)])
            try predict(batchInputs, batch: count, into: out)
            lossSum += try lossValue(batchTargets) * Double(count)
            correct += hits(UnsafeBufferPointer(out), batchTargets, samples: count)
            start += count
        }
        return (lossSum / Double(samples), Double(correct) / Double(samples))
    }

    // MARK: - One step

    /// One optimizer step on `batch`; with `health`, also measures the layers' gradient health.
    private func step(_ batch: Minibatch, optimizer: Optimizer, options: FitOptions,
                      health: LayerHealth.Buffers?) throws -> (loss: Double, hits: Int, health: LayerHealth?) {
        // The data set was checked as a whole before the first step.
        let (loss, gradientsKnownFinite) = try forwardBackward(batch.inputs, batch: batch.samples,
                                                               targets: batch.targets, outputs: batch.outputs)
        let hitCount = hits(UnsafeBufferPointer(batch.outputs), batch.targets, samples: batch.samples)
        if options.clipValue > 0 { try GradientClipping.clipValue(graph, value: options.clipValue) }
        if options.clipNorm > 0 { try GradientClipping.clipNorm(graph, maxNorm: options.clipNorm) }
        if let health { try graph.copyParameters(into: health.before.buffer) }
        // Clipping keeps finite gradients finite.
        try optimizer.step(graph, gradientsKnownFinite: gradientsKnownFinite)
        return (loss, hitCount, try health.map { try LayerHealth(self, $0) })
    }

    private func checkDataset(_ inputs: UnsafeBufferPointer<Float>, _ targets: Targets, samples: Int) throws {
        guard samples >= 1 else { throw BackpropError.invalidArgument("the data set has no samples") }
        let (expected, overflow) = samples.multipliedReportingOverflow(by: inputWidth)
        guard !overflow, inputs.count == expected else {
            throw BackpropError.invalidArgument("expected \(samples) × \(inputWidth) inputs, got \(inputs.count)")
        }
        if let bad = firstNonFinite(inputs.baseAddress!, inputs.count) {
            throw BackpropError.nonFinite("input \(bad) (row \(bad / inputWidth)) is \(inputs[bad])")
        }
        try checkTargets(targets, batch: samples)
    }

    /// How many rows the outputs get right (see `evaluate`).
    private func hits(_ outputs: UnsafeBufferPointer<Float>, _ targets: Targets, samples: Int) -> Int {
        let width = outputWidth
        func argmax(_ row: UnsafeBufferPointer<Float>.SubSequence) -> Int {
            var best = row.startIndex
            for i in row.indices where row[i] > row[best] { best = i }
            return best - row.startIndex
        }
        var count = 0
        for r in 0..<samples {
            let row = outputs[(r * width)..<((r + 1) * width)]
            switch targets {
            case .labels(let labels):
                if argmax(row) == Int(labels[r]) { count += 1 }
            case .values(let values):
                let target = values[(r * width)..<((r + 1) * width)]
                if width == 1 {
                    if (row.first! > 0.5) == (target.first! > 0.5) { count += 1 }
                } else if argmax(row) == argmax(target) {
                    count += 1
                }
            }
        }
        return count
    }
}

extension Network.Targets {
    func rows(_ range: Range<Int>, width outputWidth: Int) -> Network.Targets {
        switch self {
        case .values(let v):
            .values(UnsafeBufferPointer(rebasing: v[(range.lowerBound * outputWidth)..<(range.upperBound * outputWidth)]))
        case .labels(let l):
            .labels(UnsafeBufferPointer(rebasing: l[range]))
        }
    }
}
