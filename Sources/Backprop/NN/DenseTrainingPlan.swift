import BackpropKernels

/// The training step of a network made only of dense layers, planned once: the same kernels
/// the graph's ops run (`Linear`, the activations, `CrossEntropyLoss` or `MSELoss`), in the
/// order the graph's walk runs them, on buffers looked up once.
///
/// A walk over the graph pays, for every node, the bookkeeping that makes graphs general
/// (which nodes are current, which need a gradient, the op behind a protocol, its frame); on a
/// small network that is most of a step. The plan writes what the walk writes (every node's
/// value and gradient, the loss and its target), so the graph reads the same afterwards, and
/// the results are identical to the last bit. It is rebuilt when the graph's buffers move.
///
/// Differences in how, each giving the same bits:
/// - float32 weight gradients go through the library's own product
///   (BackpropKernels/packed_gemm.c), which stores them whole rather than adding them to zeros
///   (it adds its sums to +0), and checks them for NaN and infinity as it stores them. That
///   saves the step two passes over its largest gradients: zeroing them first, and the
///   update's check.
/// - float32 input gradients, where that product takes them, are stored whole too, unzeroed.
/// - float32 forward products, where that product takes them, start from the bias and store
///   ReLU of their sums as they store them (bpk_sgemm_packed_layer): no pass copies the bias
///   into the outputs first, nor computes ReLU after.
/// - ReLU's backward in float32 stores its gradient and sums the bias gradient in the same
///   pass (bpk_relu_backward), where the walk zeroes, adds, and sums in a pass of its own.
/// - Behind ReLU, a float32 weight gradient whose inputs are known to be finite skips the
///   upstream gradient's zeros (bpk_sgemm_sparse_at, one thread), which leaves every sum as the
///   product computes it.
final class DenseTrainingPlan {
    struct Layer {
        let input: UnsafeMutableRawPointer
        /// The gradient of the layer's input: nil for the network's input, which needs none.
        let inputGradient: UnsafeMutableRawPointer?
        let weight, weightGradient, bias, biasGradient: UnsafeMutableRawPointer
        /// Where the weight gradient lies in the flat parameter block, when the library's own
        /// product may store it whole: float32, and a product too large for the small loops.
        let storedWeightGradient: Range<Int>?
        /// Whether the library's own product may store the input gradient whole (as the weight
        /// gradient), so that it is not zeroed first.
        let storesInputGradient: Bool
        /// Whether the library's own product runs the forward pass (float32, and a product it
        /// takes), the bias and ReLU in its stores.
        let fusedForward: Bool
        /// Whether ReLU's backward and the bias gradient run as one pass that stores the linear
        /// gradient (float32), so that it is not zeroed first.
        let fusedReLU: Bool
        /// x Wᵀ + b, and the activation of it (the same node without an activation).
        let linear, linearGradient: UnsafeMutableRawPointer
        let activated, activatedGradient: UnsafeMutableRawPointer
        let activation: Activation
        let inputWidth, outputWidth: Int
    }

    private let generation: Int
    private let batch: Int
    private let dtype: DType
    private let lossKind: LossKind
    private let layers: [Layer]
    /// The layers' `storedWeightGradient` ranges, in ascending order.
    private let storedWeightGradients: [Range<Int>]
    /// Whether the layers' weights and biases are all of the graph's parameters.
    private let coversAllParameters: Bool
    private let inputNode, targetNode: NodeID
    private let input, target, loss, lossGradient: UnsafeMutableRawPointer
    /// Where cross-entropy keeps its softmax (nil for MSE).
    private let probabilities: UnsafeMutableRawPointer?
    /// The op nodes the step computes, marked current afterwards, and their gradients, which
    /// (as in the graph's backward) describe this step only and are cleared first.
    private let computed: [NodeID]
    private let opGradients: [(pointer: UnsafeMutableRawPointer, bytes: Int)]
    /// Whether each layer's input is known to be finite in the current step: the network's
    /// inputs are checked before a step, and a layer's outputs are finite when its forward
    /// product found its sums finite as it stored them. Written in place, so a step allocates
    /// nothing.
    private var inputKnownFinite: [Bool]

    /// The plan for `network`'s graph as planned now, or nil when a layer is not dense.
    init?(_ network: Network, graph: Graph, input inputNode: NodeID, target targetNode: NodeID,
          loss lossNode: NodeID, batch: Int) {
        lossKind = network.loss
        dtype = graph.dtype
        var layers: [Layer] = []
        var computed: [NodeID] = []
        var previous = inputNode
        var inputWidth = network.inputWidth
        var parameterCount = 0
        for layer in network.layers {
            guard case .dense(let units, let activation) = layer.kind, let weight = layer.weight,
                  let bias = layer.bias, let weightOffset = graph.parameterOffsets[weight] else { return nil }
            // Dense layers are built as linear(previous) and, with an activation, its output.
            let linear = activation == .none ? layer.output : layer.output - 1
            let weightCount = units * inputWidth
            // Exactly the weight-gradient products `Float.gemm` gives the library's own kernel,
            // so that the graph's walk computes the same bits.
            let float32 = graph.dtype == .float32
            let stored = float32 && ownKernelTakes(transA: true, m: units, n: inputWidth, k: batch)
            let inputGradient = graph.gradients[previous]?.pointer
            parameterCount += weightCount + units
            layers.append(Layer(
                input: graph.values[previous]!.pointer, inputGradient: inputGradient,
                weight: graph.values[weight]!.pointer, weightGradient: graph.gradients[weight]!.pointer,
                bias: graph.values[bias]!.pointer, biasGradient: graph.gradients[bias]!.pointer,
                storedWeightGradient: stored ? weightOffset..<weightOffset + weightCount : nil,
                storesInputGradient: float32 && inputGradient != nil
                    && ownKernelTakes(transA: false, m: batch, n: inputWidth, k: units),
                fusedForward: float32 && ownKernelTakes(transA: false, m: batch, n: units, k: inputWidth),
                fusedReLU: float32 && activation == .relu,
                linear: graph.values[linear]!.pointer, linearGradient: graph.gradients[linear]!.pointer,
                activated: graph.values[layer.output]!.pointer,
                activatedGradient: graph.gradients[layer.output]!.pointer,
                activation: activation, inputWidth: inputWidth, outputWidth: units))
            computed += activation == .none ? [linear] : [linear, layer.output]
            previous = layer.output
            inputWidth = units
        }
        computed.append(lossNode)
        generation = graph.bufferGeneration
        self.batch = batch
        self.layers = layers
        // Layers add their parameters in order: the ranges ascend.
        storedWeightGradients = layers.compactMap(\.storedWeightGradient)
        coversAllParameters = parameterCount == graph.parameterCount
        self.inputNode = inputNode
        self.targetNode = targetNode
        input = graph.values[inputNode]!.pointer
        target = graph.values[targetNode]!.pointer
        loss = graph.values[lossNode]!.pointer
        lossGradient = graph.gradients[lossNode]!.pointer
        probabilities = graph.scratch[lossNode]?.pointer
        self.computed = computed
        inputKnownFinite = layers.indices.map { $0 == 0 }
        // Those that the step stores whole are not zeroed first.
        let stored = layers.filter(\.fusedReLU).map(\.linearGradient)
            + layers.filter(\.storesInputGradient).compactMap(\.inputGradient)
        opGradients = computed.map { (graph.gradients[$0]!.pointer, graph.gradients[$0]!.storage.count * graph.dtype.size) }
            .filter { gradient in !stored.contains(gradient.pointer) }
    }

    /// Whether the plan's pointers still hold for `graph` planned for `batch`: nothing was
    /// planned or removed since it was made, and nothing is waiting to be planned.
    func fits(_ graph: Graph, batch: Int) -> Bool {
        batch == self.batch && generation == graph.bufferGeneration && !graph.needsPlan && graph.gradientsPlanned
    }

    /// The network's outputs of the latest run, as float32.
    func copyOutputs(into outputs: UnsafeMutableBufferPointer<Float>) {
        let values = layers.last!.activated
        switch dtype {
        case .float32: convertElements(UnsafePointer(values.assumingMemoryBound(to: Float.self)), outputs.baseAddress!, outputs.count)
        case .float64: convertElements(UnsafePointer(values.assumingMemoryBound(to: Double.self)), outputs.baseAddress!, outputs.count)
        }
    }

    /// zeroGradients, forward and backward for checked inputs and targets (labels for
    /// cross-entropy, values for MSE). Returns the loss, and whether every parameter gradient
    /// was checked finite as it was computed. A loss that is not finite is refused before any
    /// gradient is computed (they are left zero).
    func run(_ graph: Graph, inputs: UnsafeBufferPointer<Float>, targets: Network.Targets) throws
        -> (loss: Double, gradientsKnownFinite: Bool) {
        switch dtype {
        case .float32: try run(Float.self, graph, inputs, targets)
        case .float64: try run(Double.self, graph, inputs, targets)
        }
    }

    private func run<T: Scalar>(_: T.Type, _ graph: Graph, _ inputs: UnsafeBufferPointer<Float>,
                                _ answers: Network.Targets) throws -> (loss: Double, gradientsKnownFinite: Bool) {
        let threads = Parallelism.threadCount
        let storing = !storedWeightGradients.isEmpty && bpk_sgemm_packed_available()
        graph.zeroGradients(except: storing ? storedWeightGradients : [])
        var backwardStarted = false
        defer {
            // A step refused before its backward leaves every gradient zero, as the walk does.
            if storing && !backwardStarted {
                for range in storedWeightGradients { graph.parameterGradients.zero(range) }
            }
        }
        let width = layers.last!.outputWidth
        convertElements(inputs.baseAddress!, input.assumingMemoryBound(to: T.self), inputs.count)
        let targets = target.assumingMemoryBound(to: T.self)
        switch answers {
        case .labels(let labels): for i in 0..<batch { targets[i] = T(labels[i]) }
        case .values(let values): convertElements(values.baseAddress!, targets, values.count)
        }
        graph.invalidateDependents(of: inputNode)
        graph.invalidateDependents(of: targetNode)

        for (index, layer) in layers.enumerated() {
            // The own product stores ReLU as well; other activations run after it.
            let sumsFinite = layer.fusedForward ? forwardInOwnProduct(layer, threads: threads) : nil
            let fused = sumsFinite != nil
            if index + 1 < layers.count { inputKnownFinite[index + 1] = sumsFinite == true }
            if !fused {
                Linear.forward(x: layer.input.assumingMemoryBound(to: T.self), weight: layer.weight.assumingMemoryBound(to: T.self),
                               bias: layer.bias.assumingMemoryBound(to: T.self), into: layer.linear.assumingMemoryBound(to: T.self),
                               batch: batch, inputs: layer.inputWidth, outputs: layer.outputWidth)
            }
            if !fused || layer.activation != .relu {
                layer.activation.forward(layer.linear.assumingMemoryBound(to: T.self),
                                         into: layer.activated.assumingMemoryBound(to: T.self), count: batch * layer.outputWidth)
            }
        }
        let outputs = layers.last!.activated.assumingMemoryBound(to: T.self)
        let p = probabilities?.assumingMemoryBound(to: T.self)
        let value: T
        switch lossKind {
        case .crossEntropy:
            // The labels were checked as integers. In T they stay exact (so in range) while
            // every class index is a whole number T represents; beyond that, check them again.
            if width > 1 << (T.significandBitCount + 1) {
                try validateClassIndices(targets, batch: batch, classes: width, op: CrossEntropyLoss().name)
            }
            var total = 0.0
            CrossEntropyLoss.rows(logits: outputs, targets: targets, indexed: true, probabilities: p!,
                                  batch: batch, classes: width) { _, loss in total += Double(loss) }
            value = reduced(total, count: batch, .mean)
        case .mse:
            value = reduced(MSELoss().total(outputs, targets, count: batch * width), count: batch * width, .mean)
        }
        loss.assumingMemoryBound(to: T.self).pointee = value
        for id in computed { graph.isCurrent[id] = true }
        guard value.isFinite else {
            throw BackpropError.nonFinite("the loss is \(value); no gradient was changed")
        }
        backwardStarted = true

        for (pointer, bytes) in opGradients { pointer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
        let seed = lossGradient.assumingMemoryBound(to: T.self)
        seed.pointee = 1
        let outputGradient = layers.last!.activatedGradient.assumingMemoryBound(to: T.self)
        switch lossKind {
        case .crossEntropy:
            CrossEntropyLoss.addIndexedGradient(probabilities: p!, labels: targets, into: outputGradient,
                                                batch: batch, classes: width) { _ in seed.pointee / T(batch) }
        case .mse:
            MSELoss().addGradients(p: outputs, t: targets, upstream: seed, count: batch * width,
                                   into: outputGradient, nil)
        }
        var storedFinite = storing
        for index in layers.indices.reversed() {
            let layer = layers[index]
            let linearGradient = layer.linearGradient.assumingMemoryBound(to: T.self)
            if layer.fusedReLU {
                bpk_relu_backward(layer.activated.assumingMemoryBound(to: Float.self),
                                  layer.activatedGradient.assumingMemoryBound(to: Float.self),
                                  layer.linearGradient.assumingMemoryBound(to: Float.self),
                                  layer.biasGradient.assumingMemoryBound(to: Float.self), batch, layer.outputWidth)
            } else {
                layer.activation.backward(x: layer.linear.assumingMemoryBound(to: T.self), y: layer.activated.assumingMemoryBound(to: T.self),
                                          upstream: layer.activatedGradient.assumingMemoryBound(to: T.self), into: linearGradient,
                                          count: batch * layer.outputWidth)
            }
            var weightGradient: UnsafeMutablePointer<T>? = layer.weightGradient.assumingMemoryBound(to: T.self)
            if storing, let range = layer.storedWeightGradient {
                if let finite = storeWeightGradient(layer, upstream: layer.linearGradient, threads: threads,
                                                    inputFinite: inputKnownFinite[index]) {
                    storedFinite = storedFinite && finite
                    weightGradient = nil
                } else {
                    graph.parameterGradients.zero(range) // no memory for its buffers: add to zeros
                    storedFinite = false
                }
            }
            var inputGradient = layer.inputGradient?.assumingMemoryBound(to: T.self)
            if layer.storesInputGradient, let pointer = layer.inputGradient {
                if storeInputGradient(layer, upstream: layer.linearGradient, threads: threads) != nil {
                    inputGradient = nil
                } else {
                    // No memory for its buffers: add to zeros, as the walk does.
                    pointer.initializeMemory(as: UInt8.self, repeating: 0, count: batch * layer.inputWidth * MemoryLayout<T>.size)
                }
            }
            Linear.backward(x: layer.input.assumingMemoryBound(to: T.self), weight: layer.weight.assumingMemoryBound(to: T.self),
                            upstream: linearGradient, xGradient: inputGradient, weightGradient: weightGradient,
                            biasGradient: layer.fusedReLU ? nil : layer.biasGradient.assumingMemoryBound(to: T.self),
                            batch: batch, inputs: layer.inputWidth, outputs: layer.outputWidth)
        }
        return (Double(value), storedFinite && coversAllParameters && otherGradientsAreFinite(T.self))
    }

    /// dW = upstreamᵀ x in float32 through the library's own product, stored whole and checked
    /// as it is stored: whether all of it is finite, or nil when that product cannot run. Behind
    /// ReLU, with x finite, on one thread, the product that skips the upstream's zeros may take
    /// it: the same bits.
    private func storeWeightGradient(_ layer: Layer, upstream: UnsafeMutableRawPointer, threads: Int,
                                     inputFinite: Bool) -> Bool? {
        if threads == 1 && inputFinite && layer.activation == .relu {
            var finite = false
            if bpk_sgemm_sparse_at(layer.outputWidth, layer.inputWidth, batch, upstream.assumingMemoryBound(to: Float.self),
                                   layer.outputWidth, layer.input.assumingMemoryBound(to: Float.self), layer.inputWidth,
                                   layer.weightGradient.assumingMemoryBound(to: Float.self), layer.inputWidth, &finite) {
                return finite
            }
        }
        return ownKernelProduct(transA: true, transB: false, m: layer.outputWidth, n: layer.inputWidth, k: batch, alpha: 1,
                                a: upstream.assumingMemoryBound(to: Float.self), lda: layer.outputWidth,
                                b: layer.input.assumingMemoryBound(to: Float.self), ldb: layer.inputWidth, beta: 0,
                                c: layer.weightGradient.assumingMemoryBound(to: Float.self), ldc: layer.inputWidth,
                                threads: threads)
    }

    /// x Wᵀ + b in float32 through the library's own product, with ReLU of it stored as well
    /// when that is the layer's activation: whether the sums are all finite, or nil when that
    /// product cannot run.
    private func forwardInOwnProduct(_ layer: Layer, threads: Int) -> Bool? {
        ownKernelProduct(transA: false, transB: true, m: batch, n: layer.outputWidth, k: layer.inputWidth, alpha: 1,
                         a: layer.input.assumingMemoryBound(to: Float.self), lda: layer.inputWidth,
                         b: layer.weight.assumingMemoryBound(to: Float.self), ldb: layer.inputWidth, beta: 1,
                         c: layer.linear.assumingMemoryBound(to: Float.self), ldc: layer.outputWidth, threads: threads,
                         bias: layer.bias.assumingMemoryBound(to: Float.self),
                         relu: layer.activation == .relu ? layer.activated.assumingMemoryBound(to: Float.self) : nil,
                         ldr: layer.outputWidth)
    }

    /// dx = upstream W in float32 through the library's own product, stored whole: whether it
    /// is all finite, or nil when that product cannot run.
    private func storeInputGradient(_ layer: Layer, upstream: UnsafeMutableRawPointer, threads: Int) -> Bool? {
        ownKernelProduct(transA: false, transB: false, m: batch, n: layer.inputWidth, k: layer.outputWidth, alpha: 1,
                         a: upstream.assumingMemoryBound(to: Float.self), lda: layer.outputWidth,
                         b: layer.weight.assumingMemoryBound(to: Float.self), ldb: layer.inputWidth, beta: 0,
                         c: layer.inputGradient!.assumingMemoryBound(to: Float.self), ldc: layer.inputWidth,
                         threads: threads)
    }

    /// Whether the gradients not stored by the library's own product (biases, and weights of
    /// products small enough for the small loops) are finite: a few values per unit.
    private func otherGradientsAreFinite<T: Scalar>(_: T.Type) -> Bool {
        layers.allSatisfy { layer in
            firstNonFinite(layer.biasGradient.assumingMemoryBound(to: T.self), layer.outputWidth) == nil
                && (layer.storedWeightGradient != nil
                    || firstNonFinite(layer.weightGradient.assumingMemoryBound(to: T.self), layer.outputWidth * layer.inputWidth) == nil)
        }
    }
}

extension Activation {
    /// The activation's op, applied on raw buffers (none: y is x, the same buffer).
    func forward<T: Scalar>(_ x: UnsafeMutablePointer<T>, into y: UnsafeMutablePointer<T>, count: Int) {
        switch self {
        case .none: break
        case .relu: ReLU().forward(x, into: y, count: count)
        case .sigmoid: Sigmoid().forward(x, into: y, count: count)
        case .tanh: Tanh().forward(x, into: y, count: count)
        }
    }

    func backward<T: Scalar>(x: UnsafeMutablePointer<T>, y: UnsafeMutablePointer<T>, upstream: UnsafeMutablePointer<T>,
                             into gx: UnsafeMutablePointer<T>, count: Int) {
        switch self {
        case .none: break
        case .relu: ReLU().backward(x: x, y: y, upstream: upstream, into: gx, count: count)
        case .sigmoid: Sigmoid().backward(x: x, y: y, upstream: upstream, into: gx, count: count)
        case .tanh: Tanh().backward(x: x, y: y, upstream: upstream, into: gx, count: count)
        }
    }
}
