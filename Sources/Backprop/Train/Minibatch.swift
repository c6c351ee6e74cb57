/// A minibatch gathered into buffers the sampler owns and reuses.
struct Minibatch {
    let inputs: UnsafeBufferPointer<Float>
    let targets: Network.Targets
    let samples: Int
    /// Room for the network's outputs on this minibatch.
    let outputs: UnsafeMutableBufferPointer<Float>
}

/// Splits sample indices into minibatches, reshuffled on demand from a seeded generator (a
/// Fisher–Yates shuffle), and copies each minibatch's rows into buffers allocated once, so the
/// training loop allocates nothing per step. Their sizes come from the caller, so running out
/// of memory for them is an error (`BackpropError.outOfMemory`), found before training starts.
final class MinibatchSampler {
    private let order: CheckedArray<Int>
    private var generator: Generator
    let batchSize: Int
    private let inputWidth: Int
    private let outputWidth: Int
    private let inputBuffer: CheckedArray<Float>
    private let valueBuffer: CheckedArray<Float>
    private let labelBuffer: CheckedArray<Int32>
    private let outputBuffer: CheckedArray<Float>

    init(samples: Int, batchSize: Int, inputWidth: Int, outputWidth: Int, seed: UInt64) throws {
        order = try CheckedArray(zeros: samples)
        for i in 0..<samples { order[i] = i }
        generator = Generator(seed: seed)
        self.batchSize = min(batchSize, samples)
        self.inputWidth = inputWidth
        self.outputWidth = outputWidth
        inputBuffer = try CheckedArray(zeros: self.batchSize * inputWidth)
        valueBuffer = try CheckedArray(zeros: self.batchSize * outputWidth)
        labelBuffer = try CheckedArray(zeros: self.batchSize)
        outputBuffer = try CheckedArray(zeros: self.batchSize * outputWidth)
    }

    var count: Int { (order.count + batchSize - 1) / batchSize }

    func shuffle() {
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            let j = Int(generator.next() % UInt64(i + 1))
            order.buffer.swapAt(i, j)
        }
    }

    /// Minibatch `index`, its rows copied in the current order.
    func gather(_ index: Int, inputs: UnsafeBufferPointer<Float>, targets: Network.Targets) -> Minibatch {
        let rows = order.buffer[(index * batchSize)..<min((index + 1) * batchSize, order.count)]
        for (k, row) in rows.enumerated() {
            (inputBuffer.pointer + k * inputWidth).update(from: inputs.baseAddress! + row * inputWidth, count: inputWidth)
        }
        let gathered: Network.Targets
        switch targets {
        case .values(let values):
            for (k, row) in rows.enumerated() {
                (valueBuffer.pointer + k * outputWidth).update(from: values.baseAddress! + row * outputWidth, count: outputWidth)
            }
            gathered = .values(UnsafeBufferPointer(rebasing: valueBuffer.buffer[0..<(rows.count * outputWidth)]))
        case .labels(let labels):
            for (k, row) in rows.enumerated() { labelBuffer[k] = labels[row] }
            gathered = .labels(UnsafeBufferPointer(rebasing: labelBuffer.buffer[0..<rows.count]))
        }
        return Minibatch(inputs: UnsafeBufferPointer(rebasing: inputBuffer.buffer[0..<(rows.count * inputWidth)]),
                         targets: gathered, samples: rows.count,
                         outputs: UnsafeMutableBufferPointer(rebasing: outputBuffer.buffer[0..<(rows.count * outputWidth)]))
    }
}
