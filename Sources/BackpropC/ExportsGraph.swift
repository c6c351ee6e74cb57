import Backprop

// The bp_graph_* functions: argument checks, then one call into the core.

@_cdecl("bp_graph_create")
public func bp_graph_create(_ dtype: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded(#function) {
        let out = try required(out, "out")
        let dtype: DType = try enumValue(dtype, "dtype")
        let handle = Handle(graph: Graph(dtype: dtype))
        out.pointee = OpaquePointer(Registry.register(handle))
    }
}

@_cdecl("bp_graph_free")
public func bp_graph_free(_ graph: OpaquePointer?) -> Int32 {
    freeHandle(graph, "bp_graph", #function, \.graph)
}

@_cdecl("bp_graph_dtype")
public func bp_graph_dtype(_ graph: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    withGraph(graph) { graph in try required(out, "out").pointee = graph.dtype.rawValue }
}

// MARK: Leaves

@_cdecl("bp_graph_input")
public func bp_graph_input(_ graph: OpaquePointer?, _ dims: UnsafePointer<UInt>?, _ rank: UInt,
                           _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(graph, out) { graph in try graph.input(try shape(dims, rank)) }
}

@_cdecl("bp_graph_parameter")
public func bp_graph_parameter(_ graph: OpaquePointer?, _ dims: UnsafePointer<UInt>?, _ rank: UInt,
                               _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(graph, out) { graph in try graph.parameter(try shape(dims, rank)) }
}

@_cdecl("bp_graph_constant")
public func bp_graph_constant(_ graph: OpaquePointer?, _ dims: UnsafePointer<UInt>?, _ rank: UInt,
                              _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(graph, out) { graph in try graph.constant(try shape(dims, rank)) }
}

// MARK: Values, forward, backward

@_cdecl("bp_graph_set_value")
public func bp_graph_set_value(_ g: OpaquePointer?, _ n: Int32, _ values: UnsafePointer<Float>?, _ count: UInt) -> Int32 {
    withGraph(g) { try $0.setValue(node(n, $0), from: required(values, "values"), count: elementCount(count, "count")) }
}

@_cdecl("bp_graph_set_value_f64")
public func bp_graph_set_value_f64(_ g: OpaquePointer?, _ n: Int32, _ values: UnsafePointer<Double>?, _ count: UInt) -> Int32 {
    withGraph(g) { try $0.setValue(node(n, $0), from: required(values, "values"), count: elementCount(count, "count")) }
}

@_cdecl("bp_graph_forward")
public func bp_graph_forward(_ g: OpaquePointer?) -> Int32 {
    withGraph(g) { try $0.forward() }
}

@_cdecl("bp_graph_backward")
public func bp_graph_backward(_ g: OpaquePointer?, _ root: Int32) -> Int32 {
    withGraph(g) { try $0.backward(from: node(root, $0)) }
}

@_cdecl("bp_graph_zero_grad")
public func bp_graph_zero_grad(_ g: OpaquePointer?) -> Int32 {
    withGraph(g) { $0.zeroGradients() }
}

@_cdecl("bp_graph_value")
public func bp_graph_value(_ g: OpaquePointer?, _ n: Int32, _ out: UnsafeMutablePointer<Float>?, _ count: UInt) -> Int32 {
    withGraph(g) { try $0.value(node(n, $0), into: required(out, "out"), count: elementCount(count, "count")) }
}

@_cdecl("bp_graph_value_f64")
public func bp_graph_value_f64(_ g: OpaquePointer?, _ n: Int32, _ out: UnsafeMutablePointer<Double>?, _ count: UInt) -> Int32 {
    withGraph(g) { try $0.value(node(n, $0), into: required(out, "out"), count: elementCount(count, "count")) }
}

@_cdecl("bp_graph_grad")
public func bp_graph_grad(_ g: OpaquePointer?, _ n: Int32, _ out: UnsafeMutablePointer<Float>?, _ count: UInt) -> Int32 {
    withGraph(g) { try $0.gradient(node(n, $0), into: required(out, "out"), count: elementCount(count, "count")) }
}

@_cdecl("bp_graph_grad_f64")
public func bp_graph_grad_f64(_ g: OpaquePointer?, _ n: Int32, _ out: UnsafeMutablePointer<Double>?, _ count: UInt) -> Int32 {
    withGraph(g) { try $0.gradient(node(n, $0), into: required(out, "out"), count: elementCount(count, "count")) }
}

// MARK: Queries

@_cdecl("bp_graph_shape")
public func bp_graph_shape(_ g: OpaquePointer?, _ n: Int32, _ dims: UnsafeMutablePointer<UInt>?, _ capacity: UInt,
                           _ rank: UnsafeMutablePointer<UInt>?) -> Int32 {
    withGraph(g) { graph in
        let rank = try required(rank, "rank")
        let shape = try graph.shape(of: node(n, graph))
        // NULL with capacity 0 asks for the rank only.
        if shape.rank > 0 && !(dims == nil && capacity == 0) {
            guard capacity >= UInt(shape.rank) else {
                throw BoundaryError.invalidArgument("capacity \(capacity) is smaller than the rank \(shape.rank)")
            }
            let dims = try required(dims, "shape")
            for (i, d) in shape.dims.enumerated() { dims[i] = UInt(d) }
        }
        rank.pointee = UInt(shape.rank)
    }
}

@_cdecl("bp_graph_size")
public func bp_graph_size(_ g: OpaquePointer?, _ n: Int32, _ out: UnsafeMutablePointer<UInt>?) -> Int32 {
    withGraph(g) { graph in
        let out = try required(out, "out")
        out.pointee = UInt(try graph.shape(of: node(n, graph)).count)
    }
}

@_cdecl("bp_graph_node_count")
public func bp_graph_node_count(_ g: OpaquePointer?, _ out: UnsafeMutablePointer<UInt>?) -> Int32 {
    withGraph(g) { try required(out, "out").pointee = UInt($0.nodeCount) }
}

@_cdecl("bp_graph_check_gradients")
public func bp_graph_check_gradients(_ g: OpaquePointer?, _ root: Int32, _ eps: Double, _ atol: Double, _ rtol: Double,
                                     _ passed: UnsafeMutablePointer<Int32>?, _ maxAbsError: UnsafeMutablePointer<Double>?) -> Int32 {
    withGraph(g) { graph in
        let result = try graph.checkGradients(of: node(root, graph), eps: eps, atol: atol, rtol: rtol)
        passed?.pointee = result.passed ? 1 : 0
        maxAbsError?.pointee = result.maxAbsoluteError
    }
}

// MARK: Helpers

/// Adds a node with `body` and writes its id; the out-pointer is checked before the graph changes.
func addNode(_ g: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?, _ function: StaticString = #function,
                     _ body: (Graph) throws -> NodeID) -> Int32 {
    withGraph(g, function) { graph in
        let out = try required(out, "out")
        guard graph.nodeCount < Int(Int32.max) else {
            throw BoundaryError.invalidArgument("the graph has the maximum number of nodes")
        }
        out.pointee = Int32(try body(graph))
    }
}

/// A node id from C, checked against the graph.
func node(_ id: Int32, _ graph: Graph) throws -> NodeID {
    guard id >= 0 && Int(id) < graph.nodeCount else {
        throw BoundaryError.invalidHandle("node \(id) is not in this graph (it has \(graph.nodeCount) nodes)")
    }
    return Int(id)
}


// MARK: Modes

@_cdecl("bp_graph_set_training")
public func bp_graph_set_training(_ g: OpaquePointer?, _ training: Int32) -> Int32 {
    withGraph(g) { $0.isTraining = training != 0 }
}

@_cdecl("bp_graph_seed")
public func bp_graph_seed(_ g: OpaquePointer?, _ seed: UInt64) -> Int32 {
    withGraph(g) { $0.seed(seed) }
}
