/// Planning buffers, forward in topological order, and backward in reverse.
extension Graph {
    /// Computes op nodes from the leaves in creation (topological) order: every op node, or only
    /// those `root` depends on. Nodes already current are not recomputed.
    public func forward(through root: NodeID? = nil) throws {
        if let root { try check(root) }
        try planIfNeeded()
        if let root {
            for id in ancestors(of: root) { try evaluate(id) }
        } else {
            for id in nodes.indices { try evaluate(id) }
        }
    }

    /// Backpropagates from a scalar `root`: seeds its gradient with 1, then walks the nodes it
    /// depends on in reverse topological order, each op adding its inputs' share (+=).
    public func backward(from root: NodeID) throws {
        try check(root)
        guard nodes[root].shape.count == 1 else {
            throw BackpropError.shape("backward needs a scalar root, but node \(root) has shape \(nodes[root].shape)")
        }
        guard nodes[root].requiresGradient else {
            throw BackpropError.state("no gradient reaches node \(root): it depends on inputs and parameters only through ops that pass none (comparisons, detach), or on constants alone")
        }
        let order = needsPlan ? [] : ancestors(of: root)
        guard !order.isEmpty, order.allSatisfy({ isCurrent[$0] }) else {
            throw BackpropError.state("node \(root) has not been computed since the graph or a leaf value changed: run forward first")
        }
        try planGradientsIfNeeded()
        // Gradients of op nodes describe this backward only; leaves accumulate across calls.
        for id in order where !nodes[id].isLeaf { gradients[id]?.storage.zero() }
        addOne(to: gradients[root]!.pointer)
        for id in order.reversed() {
            guard nodes[id].requiresGradient, let binding = bindings[id] else { continue }
            switch dtype {
            case .float32: try binding.op.backward(float: Frame(binding: binding))
            case .float64: try binding.op.backward(double: Frame(binding: binding))
            }
        }
    }

    /// Gives op nodes their gradient buffers on the first backward after planning, so a graph
    /// used only for inference never allocates or touches them.
    func planGradientsIfNeeded() throws {
        guard !gradientsPlanned else { return }
        bufferGeneration += 1
        for id in nodes.indices where !nodes[id].isLeaf && nodes[id].requiresGradient {
            gradients[id] = try reuseOrAllocate(gradients[id], count: nodes[id].shape.count)
        }
        for id in nodes.indices {
            guard let binding = bindings[id] else { continue }
            binding.outputGradient = gradients[id]?.pointer
            binding.inputGradients = nodes[id].inputs.map { gradients[$0]?.pointer }
        }
        gradientsPlanned = true
    }

    private func evaluate(_ id: NodeID) throws {
        guard !isCurrent[id], let binding = bindings[id] else { return }
        switch dtype {
        case .float32: try binding.op.forward(float: Frame(binding: binding))
        case .float64: try binding.op.forward(double: Frame(binding: binding))
        }
        isCurrent[id] = true
    }

    private func addOne(to gradient: UnsafeMutableRawPointer) {
        switch dtype {
        case .float32: gradient.assumingMemoryBound(to: Float.self).pointee += 1
        case .float64: gradient.assumingMemoryBound(to: Double.self).pointee += 1
        }
    }

    /// The nodes `root` depends on, itself included, in creation order.
    func ancestors(of root: NodeID) -> [NodeID] {
        // A training step alternates between two roots (the outputs, then the loss): both stay
        // at hand, in place (swapping them would cost reference counting on every call).
        if root == lastAncestors.root { return lastAncestors.order }
        if root == previousAncestors.root { return previousAncestors.order }
        if let cached = ancestorCache[root] {
            previousAncestors = lastAncestors
            lastAncestors = (root, cached)
            return cached
        }
        var needed = [Bool](repeating: false, count: root + 1)
        needed[root] = true
        for id in stride(from: root, through: 0, by: -1) where needed[id] {
            for input in nodes[id].inputs { needed[input] = true }
        }
        let order = needed.indices.filter { needed[$0] }
        ancestorCache[root] = order
        return order
    }

    /// Replaces a leaf's shape (a new batch size, say). Its values and gradient start at zero, and
    /// the op nodes are re-planned before the next run.
    public func reshapeLeaf(_ node: NodeID, to shape: Shape) throws {
        try check(node)
        guard nodes[node].isLeaf, parameterOffsets[node] == nil else {
            throw BackpropError.invalidArgument("only inputs and constants can be reshaped, not node \(node)")
        }
        guard shape != nodes[node].shape else { return }
        let value = try Storage(count: shape.count, dtype: dtype)
        let gradient = gradients[node] == nil ? nil : try Storage(count: shape.count, dtype: dtype)
        nodes[node].shape = shape
        values[node] = Slot(storage: value, offset: 0)
        gradients[node] = gradient.map { Slot(storage: $0, offset: 0) }
        invalidateDependents(of: node)
        needsPlan = true
    }

    /// Infers every op's shape and gives each op node the buffers its shape needs, reusing those
    /// whose size did not change. A node stays current only if its shape, its buffer and its
    /// inputs did, so adding nodes (a loss, say) keeps the values already computed: recomputing
    /// them would, among other things, draw a new dropout mask behind the caller's back.
    func planIfNeeded() throws {
        guard needsPlan else { return }
        bufferGeneration += 1
        for id in nodes.indices {
            guard case .op(let op) = nodes[id].kind else { continue }
            let inputs = nodes[id].inputs
            let inputShapes = inputs.map { nodes[$0].shape }
            let shape = try op.outputShape(inputShapes)
            let previous = values[id]
            let unchanged = shape == nodes[id].shape && inputs.allSatisfy { isCurrent[$0] }
            nodes[id].shape = shape
            values[id] = try reuseOrAllocate(values[id], count: shape.count)
            isCurrent[id] = isCurrent[id] && unchanged && previous?.storage === values[id]?.storage
            if let gradient = gradients[id], gradient.storage.count != shape.count { gradients[id] = nil }
            let scratchCount = op.scratchCount(inputShapes)
            if scratchCount > 0 {
                if scratch[id]?.count != scratchCount { scratch[id] = try Storage(count: scratchCount, dtype: dtype) }
            } else {
                scratch[id] = nil
            }
            bindings[id] = NodeBinding(
                op: op, context: context, inputShapes: inputShapes, outputShape: shape,
                inputValues: inputs.map { values[$0]!.pointer },
                inputGradients: inputs.map { gradients[$0]?.pointer },
                output: values[id]!.pointer, outputGradient: gradients[id]?.pointer,
                scratch: scratch[id]?.pointer)
        }
        needsPlan = false
        gradientsPlanned = false
    }

    private func reuseOrAllocate(_ slot: Slot?, count: Int) throws -> Slot {
        if let slot, slot.offset == 0, slot.storage.count == count { return slot }
        return Slot(storage: try Storage(count: count, dtype: dtype), offset: 0)
    }
}
