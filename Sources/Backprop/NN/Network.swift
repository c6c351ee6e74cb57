/// A feed-forward network: a graph built for you, layer by layer.
///
/// The graph holds an input [batch, inputWidth]; each dense layer adds a weight [units, in] and a
/// bias [units] (PyTorch's `nn.Linear` layout), `x Wᵀ + b` and an activation; dropout and layer
/// normalization layers add their ops. The loss and its target node are added on first use.
/// Training is three separate steps, as in PyTorch: `forward` (training mode, keeps
/// activations), `backward` (loss and batch-averaged gradients), then an update.
public final class Network {
    public let graph: Graph
    public let inputWidth: Int
    public let seed: UInt64
    @exclusivity(unchecked) public private(set) var loss: LossKind = .mse
    @exclusivity(unchecked) public private(set) var layers: [Layer] = []

    /// What a layer is, as a checkpoint records it.
    /// What a loss is measured against: float targets [samples, outputWidth] (MSE) or class
    /// labels [samples] (cross-entropy).
    public enum Targets {
        case values(UnsafeBufferPointer<Float>)
        case labels(UnsafeBufferPointer<Int32>)
    }

    public enum LayerKind: Sendable, Equatable {
        case dense(units: Int, activation: Activation)
        case dropout(probability: Double)
        case layerNorm(eps: Double)
    }

    public struct Layer: Sendable {
        public let kind: LayerKind
        /// Dense: [units, in]; layer norm: [width]. Nil for dropout.
        public let weight: NodeID?
        public let bias: NodeID?
        public let output: NodeID
        public let outputWidth: Int
        /// Where this layer's first module sits in the equivalent torch `nn.Sequential`, where an
        /// activation is a module of its own: the prefix of its tensor names ("2.weight").
        public let moduleIndex: Int
    }

    @exclusivity(unchecked) private var generator: Generator
    private let input: NodeID
    @exclusivity(unchecked) private var batch = 1
    @exclusivity(unchecked) private var lossNodes: (target: NodeID, loss: NodeID)?
    /// Whether the activations come from `forward` (not `predict`) and are still current.
    @exclusivity(unchecked) private var hasTrainingForward = false
    /// Reused buffers, sized by the batch: labels as the graph's element type, and outputs
    /// during `trainStep`.
    @exclusivity(unchecked) private var labelValues: CheckedArray<Double>?
    @exclusivity(unchecked) private var outputScratch: CheckedArray<Float>?
    /// The planned one-call training step, while the graph's buffers stay where it found them.
    @exclusivity(unchecked) private var densePlan: DenseTrainingPlan?

    public init(inputWidth: Int, seed: UInt64, dtype: DType = .float32) throws {
        guard inputWidth >= 1 else {
            throw BackpropError.invalidArgument("input width must be at least 1, got \(inputWidth)")
        }
        graph = Graph(dtype: dtype, seed: seed)
        // Like a tensor in PyTorch, the input needs no gradient: training never reads it, and
        // it would cost the first layer's largest product in every backward.
        input = try graph.input(try Shape([1, inputWidth]), gradient: false)
        self.inputWidth = inputWidth
        self.seed = seed
        generator = Generator(seed: seed)
    }

    /// The width of the outputs: the last layer's, or the input width with no layers.
    public var outputWidth: Int { layers.last?.outputWidth ?? inputWidth }

    var output: NodeID { layers.last?.output ?? input }

    /// The graph nodes of the input [batch, inputWidth], of the outputs [batch, outputWidth], and
    /// of the loss (nil until the first backward builds it), for use with the graph's own calls.
    public var nodes: (input: NodeID, output: NodeID, loss: NodeID?) { (input, output, lossNodes?.loss) }

    public var parameterCount: Int { graph.parameterCount }

    /// The next free module index in the equivalent torch `nn.Sequential`.
    private var nextModuleIndex: Int {
        guard let last = layers.last else { return 0 }
        if case .dense(_, let activation) = last.kind, activation != .none { return last.moduleIndex + 2 }
        return last.moduleIndex + 1
    }

    /// Appends a dense layer y = activation(x Wᵀ + b) with parameters from `initializer`.
    public func addDense(units: Int, activation: Activation, initializer: Initializer = .linearDefault) throws {
        guard units >= 1 else {
            throw BackpropError.invalidArgument("a dense layer needs at least 1 unit, got \(units)")
        }
        switch graph.dtype {
        case .float32: try addDense(units: units, activation: activation, initializer: initializer, drawing: Float.self)
        case .float64: try addDense(units: units, activation: activation, initializer: initializer, drawing: Double.self)
        }
    }

    /// addDense, with the initial values drawn in the graph's element type: no wider copy of
    /// what may be the largest block of the network, at the moment its memory peaks.
    private func addDense<T: Scalar>(units: Int, activation: Activation, initializer: Initializer,
                                     drawing _: T.Type) throws {
        let fanIn = outputWidth
        let weightShape = try Shape([units, fanIn])
        let biasShape = try Shape([units])
        // The initial values are drawn before anything changes, into memory whose allocation
        // may fail (units come from the caller or a file).
        let weightValues = try CheckedArray<T>(zeros: weightShape.count)
        let biasValues = try CheckedArray<T>(zeros: units)
        var trial = generator
        initializer.fill(weight: weightValues.buffer, bias: biasValues.buffer, fanIn: fanIn, fanOut: units, using: &trial)

        try dropLossNodes()
        let added = try graph.addParameters([weightShape, biasShape])
        let weight = added[0], bias = added[1]
        try graph.setLeafValue(weight, from: weightValues.pointer, count: weightShape.count)
        try graph.setLeafValue(bias, from: biasValues.pointer, count: units)
        let out = try activation.apply(to: try graph.linear(output, weight: weight, bias: bias), in: graph)
        layers.append(Layer(kind: .dense(units: units, activation: activation), weight: weight, bias: bias,
                            output: out, outputWidth: units, moduleIndex: nextModuleIndex))
        generator = trial
    }

    /// Appends dropout: in training (`forward`, `trainStep`) each value is zeroed with
    /// `probability` and the rest scaled by 1/(1-p); in `predict` it passes values through.
    public func addDropout(probability: Double) throws {
        try dropLossNodes()
        let out = try graph.dropout(output, probability: probability)
        layers.append(Layer(kind: .dropout(probability: probability), weight: nil, bias: nil, output: out,
                            outputWidth: outputWidth, moduleIndex: nextModuleIndex))
    }

    /// Appends layer normalization over the features, with a weight (ones) and a bias (zeros).
    public func addLayerNorm(eps: Double = 1e-5) throws {
        guard eps > 0, eps.isFinite else {
            throw BackpropError.invalidArgument("layer norm eps must be positive and finite, got \(eps)")
        }
        let width = outputWidth
        let ones = try CheckedArray<Float>(zeros: width)
        ones.buffer.update(repeating: 1)
        try dropLossNodes()
        let added = try graph.addParameters([try Shape([width]), try Shape([width])])
        let weight = added[0], bias = added[1]
        try graph.setValue(weight, from: ones.pointer, count: width)
        let out = try graph.layerNorm(output, weight: weight, bias: bias, eps: eps)
        layers.append(Layer(kind: .layerNorm(eps: eps), weight: weight, bias: bias, output: out,
                            outputWidth: width, moduleIndex: nextModuleIndex))
    }

    public func setLoss(_ kind: LossKind) throws {
        guard kind != loss else { return }
        try dropLossNodes()
        loss = kind
    }

    // MARK: - Training steps
    //
    // Every step checks all of its arguments before it changes anything, so a call that fails
    // leaves weights, gradients and the pending forward exactly as they were.

    /// Forward pass on a minibatch: `inputs` holds `batch * inputWidth` values, `outputs` receives
    /// `batch * outputWidth`. Keeps the activations for `backward`.
    public func forward(_ inputs: UnsafeBufferPointer<Float>, batch: Int, into outputs: UnsafeMutableBufferPointer<Float>) throws {
        try checkInputs(inputs, batch: batch, outputs: outputs.count)
        graph.isTraining = true
        try run(inputs, batch: batch, into: outputs)
        hasTrainingForward = true
    }

    /// Inference: the same computation, but a following `backward` is refused until the next
    /// `forward` (inference and training passes may differ once layers like dropout exist).
    public func predict(_ inputs: UnsafeBufferPointer<Float>, batch: Int, into outputs: UnsafeMutableBufferPointer<Float>) throws {
        try checkInputs(inputs, batch: batch, outputs: outputs.count)
        hasTrainingForward = false
        graph.isTraining = false
        try run(inputs, batch: batch, into: outputs)
    }

    /// Backward pass against float targets (`batch * outputWidth`) for the MSE loss. Returns the
    /// loss and adds the gradient of the batch-averaged loss into the parameter gradients.
    /// A non-finite loss is refused before any gradient changes.
    public func backward(targets: UnsafeBufferPointer<Float>) throws -> Double {
        try checkTrainingForward()
        try checkTargets(targets, batch: batch)
        return try backpropagate(.values(targets))
    }

    /// Backward pass against class labels in [0, outputWidth), one per sample, for cross-entropy.
    public func backward(labels: UnsafeBufferPointer<Int32>) throws -> Double {
        try checkTrainingForward()
        try checkLabels(labels, batch: batch)
        return try backpropagate(.labels(labels))
    }

    /// Gradient descent on every parameter; see `GradientDescent.step`.
    public func update(learningRate: Double) throws {
        try GradientDescent.step(graph, learningRate: learningRate)
    }

    public func zeroGradients() { graph.zeroGradients() }

    /// Checks targets of either kind against `batch` samples and the loss.
    func checkTargets(_ targets: Targets, batch: Int) throws {
        switch targets {
        case .values(let values): try checkTargets(values, batch: batch)
        case .labels(let labels): try checkLabels(labels, batch: batch)
        }
    }

    /// zeroGradients, forward, backward and update in one call; returns the loss before the
    /// update. Arguments are checked first; a non-finite loss or gradient found on the way leaves
    /// the weights unchanged (the gradients then hold this step's, as after a failed backward).
    /// The update is gradient descent with `learningRate`.
    public func trainStep(_ inputs: UnsafeBufferPointer<Float>, batch: Int, targets: UnsafeBufferPointer<Float>,
                          learningRate: Double) throws -> Double {
        try GradientDescent.checkLearningRate(learningRate)
        return try trainStep(inputs, batch: batch, targets: .values(targets)) { checked in
            try GradientDescent.step(graph, learningRate: learningRate, gradientsKnownFinite: checked)
        }
    }

    public func trainStep(_ inputs: UnsafeBufferPointer<Float>, batch: Int, labels: UnsafeBufferPointer<Int32>,
                          learningRate: Double) throws -> Double {
        try GradientDescent.checkLearningRate(learningRate)
        return try trainStep(inputs, batch: batch, targets: .labels(labels)) { checked in
            try GradientDescent.step(graph, learningRate: learningRate, gradientsKnownFinite: checked)
        }
    }

    /// trainStep with `optimizer`'s update rule: one call for what `zeroGradients`, `forward`,
    /// `backward` and `optimizer.step(graph)` do, with the same guarantees.
    public func trainStep(_ inputs: UnsafeBufferPointer<Float>, batch: Int, targets: Targets,
                          optimizer: Optimizer) throws -> Double {
        try optimizer.checkState(for: graph)
        return try trainStep(inputs, batch: batch, targets: targets) { checked in
            try optimizer.step(graph, gradientsKnownFinite: checked)
        }
    }

    /// `update` is told whether the gradients are known to be finite (see `forwardBackward`).
    private func trainStep(_ inputs: UnsafeBufferPointer<Float>, batch: Int, targets: Targets,
                           update: (_ gradientsKnownFinite: Bool) throws -> Void) throws -> Double {
        try checkTargets(targets, batch: batch)
        let (outputCount, overflow) = batch.multipliedReportingOverflow(by: outputWidth)
        try checkInputs(inputs, batch: batch, outputs: overflow ? -1 : outputCount)
        let step = try forwardBackward(inputs, batch: batch, targets: targets, outputs: nil)
        try update(step.gradientsKnownFinite)
        return step.loss
    }

    /// zeroGradients, forward (writing the outputs when asked) and backward on checked
    /// arguments, as a training step does before its update. Returns the loss, and whether every
    /// parameter gradient is known to be finite (checked as it was computed), so that the update
    /// need not check again. A network of dense layers goes through its planned step, which
    /// computes the same.
    func forwardBackward(_ inputs: UnsafeBufferPointer<Float>, batch: Int, targets: Targets,
                         outputs: UnsafeMutableBufferPointer<Float>?) throws
        -> (loss: Double, gradientsKnownFinite: Bool) {
        if let plan = try plannedStep(batch: batch) {
            graph.isTraining = true
            hasTrainingForward = true
            defer { if let outputs { plan.copyOutputs(into: outputs) } }
            return try plan.run(graph, inputs: inputs, targets: targets)
        }
        let outputs = try outputs ?? CheckedArray.resize(&outputScratch, to: batch * outputWidth).buffer
        zeroGradients()
        graph.isTraining = true
        try run(inputs, batch: batch, into: outputs)
        hasTrainingForward = true
        return (try backpropagate(targets), false)
    }

    /// The planned step for this batch size (see `DenseTrainingPlan`), or nil when the network
    /// is not made of dense layers alone. Plans the graph's buffers first.
    private func plannedStep(batch: Int) throws -> DenseTrainingPlan? {
        // The common case, a step like the last one: nothing has moved since the plan was made.
        if lossNodes != nil, let plan = densePlan, plan.fits(graph, batch: batch) { return plan }
        guard !layers.isEmpty,
              layers.allSatisfy({ if case .dense = $0.kind { true } else { false } }) else { return nil }
        try setBatch(batch)
        // The outputs' shape follows the batch once planned; the loss nodes are made from it.
        try graph.planIfNeeded()
        let nodes = try lossNodesForCurrentBatch()
        try graph.planIfNeeded()
        try graph.planGradientsIfNeeded()
        if let plan = densePlan, plan.fits(graph, batch: batch) { return plan }
        densePlan = DenseTrainingPlan(self, graph: graph, input: input, target: nodes.target, loss: nodes.loss,
                                      batch: batch)
        return densePlan
    }

    // MARK: - Argument checks

    func checkHasLayers() throws {
        guard !layers.isEmpty else {
            throw BackpropError.state("the network has no layers: add a dense layer first")
        }
    }

    func checkInputs(_ inputs: UnsafeBufferPointer<Float>, batch: Int, outputs: Int) throws {
        try checkHasLayers()
        guard batch >= 1 else {
            throw BackpropError.invalidArgument("batch must be at least 1, got \(batch)")
        }
        let inputCount = try Shape.count(batch, inputWidth)
        let outputCount = try Shape.count(batch, outputWidth)
        guard inputs.count == inputCount else {
            throw BackpropError.invalidArgument("expected \(inputCount) inputs (batch \(batch) × \(inputWidth) features), got \(inputs.count)")
        }
        guard outputs == outputCount else {
            throw BackpropError.invalidArgument("expected room for \(outputCount) outputs (batch \(batch) × \(outputWidth)), got \(outputs)")
        }
        if let bad = firstNonFinite(inputs.baseAddress!, inputs.count) {
            throw BackpropError.nonFinite("input \(bad) (row \(bad / inputWidth), column \(bad % inputWidth)) is \(inputs[bad])")
        }
    }

    func checkTargets(_ targets: UnsafeBufferPointer<Float>, batch: Int) throws {
        guard loss == .mse else {
            throw BackpropError.invalidArgument("the network's loss is cross-entropy: pass class labels, not float targets")
        }
        let (expected, overflow) = batch.multipliedReportingOverflow(by: outputWidth)
        guard !overflow, targets.count == expected else {
            throw BackpropError.invalidArgument("expected \(batch) × \(outputWidth) targets, got \(targets.count)")
        }
        if let bad = firstNonFinite(targets.baseAddress!, targets.count) {
            throw BackpropError.nonFinite("target \(bad) is \(targets[bad])")
        }
    }

    func checkLabels(_ labels: UnsafeBufferPointer<Int32>, batch: Int) throws {
        guard loss == .crossEntropy else {
            throw BackpropError.invalidArgument("the network's loss is MSE: pass float targets, not class labels")
        }
        guard labels.count == batch else {
            throw BackpropError.invalidArgument("expected \(batch) labels (one per sample), got \(labels.count)")
        }
        for (i, label) in labels.enumerated() where label < 0 || Int(label) >= outputWidth {
            throw BackpropError.invalidArgument("label \(label) at row \(i) is not a class index in [0, \(outputWidth))")
        }
    }

    private func checkTrainingForward() throws {
        guard hasTrainingForward, graph.isComputed(output) else {
            throw BackpropError.state("no forward pass since the last update, prediction or change: call forward first")
        }
    }

    // MARK: - Internals

    func run(_ inputs: UnsafeBufferPointer<Float>, batch: Int, into outputs: UnsafeMutableBufferPointer<Float>) throws {
        try setBatch(batch)
        try graph.setValue(input, from: inputs.baseAddress!, count: inputs.count)
        try graph.forward(through: output)
        try graph.value(output, into: outputs.baseAddress!, count: outputs.count)
    }

    private func setBatch(_ newBatch: Int) throws {
        guard newBatch != batch else { return }
        hasTrainingForward = false
        try graph.reshapeLeaf(input, to: try Shape([newBatch, inputWidth]))
        if let lossNodes {
            try graph.reshapeLeaf(lossNodes.target, to: try targetShape(batch: newBatch))
        }
        batch = newBatch
    }

    private func targetShape(batch: Int) throws -> Shape {
        loss == .mse ? try Shape([batch, outputWidth]) : try Shape([batch])
    }

    private func lossNodesForCurrentBatch() throws -> (target: NodeID, loss: NodeID) {
        if let lossNodes { return lossNodes }
        let target = try graph.constant(try targetShape(batch: batch))
        let lossNode = switch loss {
        case .mse: try graph.mseLoss(output, target)
        case .crossEntropy: try graph.crossEntropy(output, target)
        }
        lossNodes = (target, lossNode)
        return (target, lossNode)
    }

    /// Removes the loss nodes before the network changes shape; they are rebuilt on next use.
    /// If someone added nodes after them through the graph, they stay (unused by the network).
    private func dropLossNodes() throws {
        guard let nodes = lossNodes else { return }
        if nodes.loss == graph.nodeCount - 1 && nodes.target == graph.nodeCount - 2 {
            try graph.removeNodes(from: nodes.target)
        }
        lossNodes = nil
        hasTrainingForward = false
    }

    /// The loss of the latest forward against `targets` (already checked), refusing a
    /// non-finite one, then backpropagates from it.
    private func backpropagate(_ targets: Targets) throws -> Double {
        let value = try lossValue(targets)
        guard value.isFinite else {
            throw BackpropError.nonFinite("the loss is \(value); no gradient was changed")
        }
        // A network without parameters (dropout alone, say) has nothing to backpropagate into.
        let loss = try lossNodesForCurrentBatch().loss
        if graph.hasGradient(loss) { try graph.backward(from: loss) }
        return value
    }

    /// The batch-averaged loss of the latest forward or prediction against checked targets.
    func lossValue(_ targets: Targets) throws -> Double {
        let nodes = try lossNodesForCurrentBatch()
        switch targets {
        case .values(let values):
            try graph.setValue(nodes.target, from: values.baseAddress!, count: values.count)
        case .labels(let labels):
            let values = try CheckedArray.resize(&labelValues, to: labels.count)
            for i in labels.indices { values[i] = Double(labels[i]) }
            try graph.setValue(nodes.target, from: values.pointer, count: values.count)
        }
        try graph.forward(through: nodes.loss)
        var value = 0.0
        try graph.value(nodes.loss, into: &value, count: 1)
        return value
    }
}
