/// Reading and writing node values and gradients, with conversion between element types.
///
/// The public entry points are concrete per element type so that callers in other modules get
/// specialized copy loops rather than generic ones.
extension Graph {
    /// Copies `count` elements into a leaf's values. `count` must equal the node's element count.
    public func setValue(_ node: NodeID, from source: UnsafePointer<Float>, count: Int) throws {
        try setLeafValue(node, from: source, count: count)
    }
    public func setValue(_ node: NodeID, from source: UnsafePointer<Double>, count: Int) throws {
        try setLeafValue(node, from: source, count: count)
    }

    /// Copies a node's values out. Op values need a forward since the last change.
    public func value(_ node: NodeID, into destination: UnsafeMutablePointer<Float>, count: Int) throws {
        try readValue(node, into: destination, count: count)
    }
    public func value(_ node: NodeID, into destination: UnsafeMutablePointer<Double>, count: Int) throws {
        try readValue(node, into: destination, count: count)
    }

    /// Copies a node's gradient out (zeros for an op node no backward has reached yet).
    public func gradient(_ node: NodeID, into destination: UnsafeMutablePointer<Float>, count: Int) throws {
        try readGradient(node, into: destination, count: count)
    }
    public func gradient(_ node: NodeID, into destination: UnsafeMutablePointer<Double>, count: Int) throws {
        try readGradient(node, into: destination, count: count)
    }

    func setLeafValue<S: Scalar>(_ node: NodeID, from source: UnsafePointer<S>, count: Int) throws {
        try check(node)
        guard nodes[node].isLeaf else {
            throw BackpropError.invalidArgument("node \(node) is an op; only inputs, parameters and constants take values")
        }
        try checkCount(count, node)
        convert(from: source, to: values[node]!.pointer, count: count)
        invalidateDependents(of: node)
    }

    func readValue<D: Scalar>(_ node: NodeID, into destination: UnsafeMutablePointer<D>, count: Int) throws {
        try check(node)
        try checkCount(count, node)
        guard isCurrent[node], let slot = values[node] else {
            throw BackpropError.state("node \(node) has not been computed since the graph or a leaf value changed: run forward first")
        }
        convert(from: slot.pointer, to: destination, count: count)
    }

    func readGradient<D: Scalar>(_ node: NodeID, into destination: UnsafeMutablePointer<D>, count: Int) throws {
        try check(node)
        try checkCount(count, node)
        guard nodes[node].requiresGradient else {
            throw BackpropError.invalidArgument("node \(node) has no gradient: it is a constant, an input without one (such as a network's), or depends only on those")
        }
        guard let slot = gradients[node] else {
            destination.initialize(repeating: 0, count: count)
            return
        }
        convert(from: slot.pointer, to: destination, count: count)
    }

    /// Sets every gradient in the graph to zero: the flat parameter block once, and each other
    /// leaf's. Op nodes' gradients are zeroed by every backward anyway.
    public func zeroGradients() { zeroGradients(except: []) }

    /// zeroGradients, leaving alone the ranges of the flat parameter block in `overwritten`
    /// (ascending and disjoint), which the caller stores whole next.
    func zeroGradients(except overwritten: [Range<Int>]) {
        var start = 0
        for range in overwritten {
            parameterGradients.zero(start..<range.lowerBound)
            start = range.upperBound
        }
        parameterGradients.zero(start..<parameterCount)
        for id in nodes.indices where nodes[id].isLeaf && !nodes[id].isParameter {
            gradients[id]?.storage.zero()
        }
    }

    /// Marks everything computed from these leaves as out of date, keeping the invariant that
    /// a node that is not current has no current dependents.
    func invalidateDependents<Leaves: Collection<NodeID>>(of leaves: Leaves) {
        guard let first = leaves.min() else { return }
        // Through buffer pointers: every training step runs this a few times, and checking the
        // arrays' uniqueness on each write would cost more than the loop.
        nodes.withUnsafeBufferPointer { nodes in
            isCurrent.withUnsafeMutableBufferPointer { current in
                for leaf in leaves { current[leaf] = false }
                for id in (first + 1)..<max(first + 1, nodes.count) where current[id] {
                    for input in nodes[id].inputs where !current[input] {
                        current[id] = false
                        break
                    }
                }
                for leaf in leaves { current[leaf] = true }
            }
        }
    }

    /// The same for one leaf, without building an array on the hot path.
    func invalidateDependents(of leaf: NodeID) {
        invalidateDependents(of: CollectionOfOne(leaf))
    }

    /// Call after changing parameter values in the flat block directly (as optimizers do).
    public func parametersDidChange() {
        invalidateDependents(of: parameters)
    }

    private func checkCount(_ count: Int, _ node: NodeID) throws {
        let expected = nodes[node].shape.count
        guard count == expected else {
            throw BackpropError.invalidArgument("node \(node) has shape \(nodes[node].shape), \(expected) elements, but \(count) were given")
        }
    }

    func convert<S: Scalar>(from source: UnsafePointer<S>, to destination: UnsafeMutableRawPointer, count: Int) {
        switch dtype {
        case .float32: convertElements(source, destination.assumingMemoryBound(to: Float.self), count)
        case .float64: convertElements(source, destination.assumingMemoryBound(to: Double.self), count)
        }
    }

    func convert<D: Scalar>(from source: UnsafeMutableRawPointer, to destination: UnsafeMutablePointer<D>, count: Int) {
        switch dtype {
        case .float32: convertElements(UnsafePointer(source.assumingMemoryBound(to: Float.self)), destination, count)
        case .float64: convertElements(UnsafePointer(source.assumingMemoryBound(to: Double.self)), destination, count)
        }
    }
}

@inline(__always)
func convertElements<S: Scalar, D: Scalar>(_ source: UnsafePointer<S>, _ destination: UnsafeMutablePointer<D>, _ count: Int) {
    if S.self == D.self {
        UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * MemoryLayout<S>.size)
    } else {
        for i in 0..<count { destination[i] = D(source[i]) }
    }
}

/// The flat parameter block: every parameter's values (or gradients) end to end, in creation
/// order, as optimizers and data-parallel training see them.
extension Graph {
    public func copyParameters(into destination: UnsafeMutableBufferPointer<Float>) throws {
        try copyFlat(parameterValues, into: destination)
    }

    public func copyParameterGradients(into destination: UnsafeMutableBufferPointer<Float>) throws {
        try copyFlat(parameterGradients, into: destination)
    }

    /// Replaces every parameter value; the count must be `parameterCount`. Non-finite values are
    /// refused before anything changes.
    public func setParameters(from source: UnsafeBufferPointer<Float>) throws {
        try checkFlatCount(source.count)
        if let bad = firstNonFinite(source.baseAddress!, source.count) {
            throw BackpropError.nonFinite("parameter element \(bad) is \(source[bad])")
        }
        convert(from: source.baseAddress!, to: parameterValues.pointer, count: source.count)
        parametersDidChange()
    }

    private func copyFlat(_ storage: Storage, into destination: UnsafeMutableBufferPointer<Float>) throws {
        try checkFlatCount(destination.count)
        convert(from: storage.pointer, to: destination.baseAddress!, count: destination.count)
    }

    private func checkFlatCount(_ count: Int) throws {
        guard count == parameterCount, count > 0 else {
            throw BackpropError.invalidArgument("the parameters have \(parameterCount) elements, but \(count) were given")
        }
    }
}
