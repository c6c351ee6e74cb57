/// A computational graph with reverse-mode automatic differentiation.
///
/// Define, then run: nodes are added once (each from earlier nodes, so creation order is a
/// topological order), then `forward` and `backward` run many times over buffers that are
/// planned once per set of shapes. Values and gradients share one element type, `dtype`.
///
/// Gradient semantics follow PyTorch: backward adds into the gradients of the leaves, which
/// accumulate across calls until `zeroGradients`; gradients of op nodes hold the latest backward.
///
/// A graph is not thread-safe: use it from one thread at a time (the C API enforces this with
/// BP_ERR_BUSY). Its hot stored properties therefore skip Swift's dynamic exclusivity checks,
/// which cost more than the arithmetic on small networks.
public final class Graph {
    public let dtype: DType
    @exclusivity(unchecked) var nodes: [Node] = []

    /// Values and gradients per node. Parameters point into `parameterValues` and
    /// `parameterGradients`, flat blocks an optimizer can update in one sweep.
    @exclusivity(unchecked) var values: [Slot?] = []  // nil for op nodes until the buffers are planned
    @exclusivity(unchecked) var gradients: [Slot?] = []
    @exclusivity(unchecked) var scratch: [Storage?] = []
    @exclusivity(unchecked) var bindings: [NodeBinding?] = []
    @exclusivity(unchecked) var parameterValues: Storage
    @exclusivity(unchecked) var parameterGradients: Storage
    /// Parameter nodes in creation order, with their offsets in the flat blocks.
    @exclusivity(unchecked) public private(set) var parameters: [NodeID] = []
    @exclusivity(unchecked) var parameterOffsets: [NodeID: Int] = [:]

    /// Whether each node's value reflects the current leaf values (leaves always do).
    @exclusivity(unchecked) var isCurrent: [Bool] = []
    /// Buffers must be (re)planned before the next run: nodes were added or a leaf was reshaped.
    @exclusivity(unchecked) var needsPlan = true
    /// Op nodes have gradient buffers matching the current plan (see `planGradientsIfNeeded`).
    @exclusivity(unchecked) var gradientsPlanned = false
    /// Changes whenever a node's buffer may have moved (planning, removing nodes), so that
    /// whoever keeps pointers into them (a network's planned step) knows when to look again.
    @exclusivity(unchecked) var bufferGeneration = 0
    /// The nodes each recent root depends on, cached for forward and backward.
    @exclusivity(unchecked) var ancestorCache: [NodeID: [NodeID]] = [:] {
        didSet { lastAncestors = (-1, []); previousAncestors = (-1, []) }
    }
    /// The two most recent lookups, which training steps repeat: no hashing on the hot path.
    @exclusivity(unchecked) var lastAncestors: (root: NodeID, order: [NodeID]) = (-1, [])
    @exclusivity(unchecked) var previousAncestors: (root: NodeID, order: [NodeID]) = (-1, [])

    /// Training mode and the seeded generator that ops such as dropout draw from.
    let context: RunContext

    public init(dtype: DType, seed: UInt64 = 0) {
        self.dtype = dtype
        context = RunContext(seed: seed)
        // Both blocks start empty and grow as parameters are added.
        parameterValues = try! Storage(count: 0, dtype: dtype)
        parameterGradients = try! Storage(count: 0, dtype: dtype)
    }

    public var nodeCount: Int { nodes.count }

    /// Restarts the generator that random ops (dropout) draw from.
    public func seed(_ seed: UInt64) {
        context.generator = Generator(seed: seed)
        for id in nodes.indices where !nodes[id].isLeaf { isCurrent[id] = false }
    }

    /// Training mode (the default) or evaluation mode, in which dropout passes values through.
    /// Changing it makes every op node out of date.
    public var isTraining: Bool {
        get { context.isTraining }
        set {
            guard newValue != context.isTraining else { return }
            context.isTraining = newValue
            for id in nodes.indices where !nodes[id].isLeaf { isCurrent[id] = false }
        }
    }

    /// The total number of parameter elements, the length of the flat blocks.
    public var parameterCount: Int { parameterValues.count }

    public func shape(of node: NodeID) throws -> Shape {
        try check(node)
        return nodes[node].shape
    }

    public func kind(of node: NodeID) throws -> NodeKind {
        try check(node)
        return nodes[node].kind
    }

    func check(_ node: NodeID) throws {
        guard node >= 0 && node < nodes.count else {
            throw BackpropError.invalidArgument("node \(node) is not in this graph (it has \(nodes.count) nodes)")
        }
    }

    // MARK: - Leaves

    /// An input: values set by the caller. With `gradient` (the default) backward also computes
    /// the gradient with respect to it; without, the ops that consume it skip that work (a dense
    /// layer's largest product, for a network's input).
    public func input(_ shape: Shape, gradient: Bool = true) throws -> NodeID {
        try addLeaf(.input, shape, hasGradient: gradient)
    }
    public func constant(_ shape: Shape) throws -> NodeID { try addLeaf(.constant, shape, hasGradient: false) }

    public func parameter(_ shape: Shape) throws -> NodeID { try addParameters([shape])[0] }

    /// Adds parameters together: the flat blocks grow (are allocated anew and copied) once for
    /// all of them, which keeps a large layer's weight and bias from copying the whole network's
    /// parameters twice, and memory from peaking twice.
    public func addParameters(_ shapes: [Shape]) throws -> [NodeID] {
        let offset = parameterValues.count
        var total = offset
        for shape in shapes {
            let (sum, overflow) = total.addingReportingOverflow(shape.count)
            guard !overflow else { throw BackpropError.outOfMemory("parameters of \(shapes) do not fit in memory") }
            total = sum
        }
        let newValues = try Storage(count: total, dtype: dtype)
        let newGradients = try Storage(count: total, dtype: dtype)
        newValues.pointer.copyMemory(from: parameterValues.pointer, byteCount: offset * dtype.size)
        newGradients.pointer.copyMemory(from: parameterGradients.pointer, byteCount: offset * dtype.size)
        parameterValues = newValues
        parameterGradients = newGradients
        var added: [NodeID] = []
        var next = offset
        for shape in shapes {
            let id = nodes.count
            nodes.append(Node(kind: .parameter, inputs: [], shape: shape, requiresGradient: true))
            values.append(nil)
            gradients.append(nil)
            parameters.append(id)
            parameterOffsets[id] = next
            next += shape.count
            appendBookkeeping()
            added.append(id)
        }
        // Every parameter's slots move to the new blocks.
        for p in parameters {
            values[p] = Slot(storage: newValues, offset: parameterOffsets[p]!)
            gradients[p] = Slot(storage: newGradients, offset: parameterOffsets[p]!)
        }
        return added
    }

    private func addLeaf(_ kind: NodeKind, _ shape: Shape, hasGradient: Bool) throws -> NodeID {
        let value = try Storage(count: shape.count, dtype: dtype)
        let gradient = hasGradient ? try Storage(count: shape.count, dtype: dtype) : nil
        nodes.append(Node(kind: kind, inputs: [], shape: shape, requiresGradient: hasGradient))
        values.append(Slot(storage: value, offset: 0))
        gradients.append(gradient.map { Slot(storage: $0, offset: 0) })
        appendBookkeeping()
        return nodes.count - 1
    }

    private func appendBookkeeping() {
        scratch.append(nil)
        bindings.append(nil)
        isCurrent.append(nodes.last!.isLeaf)
        needsPlan = true
        // The cached ancestor lists stay right: a new node is no existing node's ancestor. (Keeping
        // them spares the training step after the loss nodes are added an allocation.)
    }

    // MARK: - Ops

    /// Adds an op node. The shape rule runs now, so a mismatch is reported here (naming the op
    /// and the shapes) and the graph is left unchanged.
    public func apply(_ op: any AnyOp, _ inputs: [NodeID]) throws -> NodeID {
        for i in inputs { try check(i) }
        let shape = try op.outputShape(inputs.map { nodes[$0].shape })
        let requiresGradient = op.propagatesGradient && inputs.contains { nodes[$0].requiresGradient }
        // Op memory is allocated when the graph plans its buffers (see `plan`).
        nodes.append(Node(kind: .op(op), inputs: inputs, shape: shape, requiresGradient: requiresGradient))
        values.append(nil)
        gradients.append(nil)
        appendBookkeeping()
        return nodes.count - 1
    }

    /// Removes every node from `node` on (the newest ones). Nodes only refer to older nodes, so
    /// what remains is a complete graph. Parameters cannot be removed.
    func removeNodes(from node: NodeID) throws {
        guard node >= 0 && node <= nodes.count else { return }
        guard !parameters.contains(where: { $0 >= node }) else {
            throw BackpropError.state("cannot remove parameter nodes")
        }
        bufferGeneration += 1
        nodes.removeSubrange(node...)
        values.removeSubrange(node...)
        gradients.removeSubrange(node...)
        scratch.removeSubrange(node...)
        bindings.removeSubrange(node...)
        isCurrent.removeSubrange(node...)
        // Only the removed nodes' lists go: the others never include newer nodes.
        ancestorCache = ancestorCache.filter { $0.key < node }
    }
}

extension Graph {
    /// Whether backward computes a gradient for `node`: false for constants, inputs made without
    /// one, and nodes that depend only on those.
    public func hasGradient(_ node: NodeID) -> Bool {
        node >= 0 && node < nodes.count && nodes[node].requiresGradient
    }

    /// Whether a node's value reflects the current leaf values.
    public func isComputed(_ node: NodeID) -> Bool {
        node >= 0 && node < nodes.count && isCurrent[node]
    }
}
