import Backprop

// The bp_graph_* op constructors: each checks its arguments and adds one node.

// MARK: Elementwise binary

@_cdecl("bp_graph_add")
public func bp_graph_add(_ g: OpaquePointer?, _ a: Int32, _ b: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.add(node(a, $0), node(b, $0)) }
}

@_cdecl("bp_graph_sub")
public func bp_graph_sub(_ g: OpaquePointer?, _ a: Int32, _ b: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.sub(node(a, $0), node(b, $0)) }
}

@_cdecl("bp_graph_mul")
public func bp_graph_mul(_ g: OpaquePointer?, _ a: Int32, _ b: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.mul(node(a, $0), node(b, $0)) }
}

@_cdecl("bp_graph_div")
public func bp_graph_div(_ g: OpaquePointer?, _ a: Int32, _ b: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.div(node(a, $0), node(b, $0)) }
}

@_cdecl("bp_graph_pow")
public func bp_graph_pow(_ g: OpaquePointer?, _ a: Int32, _ b: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.pow(node(a, $0), node(b, $0)) }
}

@_cdecl("bp_graph_maximum")
public func bp_graph_maximum(_ g: OpaquePointer?, _ a: Int32, _ b: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.maximum(node(a, $0), node(b, $0)) }
}

@_cdecl("bp_graph_minimum")
public func bp_graph_minimum(_ g: OpaquePointer?, _ a: Int32, _ b: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.minimum(node(a, $0), node(b, $0)) }
}

@_cdecl("bp_graph_compare")
public func bp_graph_compare(_ g: OpaquePointer?, _ a: Int32, _ b: Int32, _ comparison: Int32,
                             _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.compare(node(a, $0), node(b, $0), enumValue(comparison, "comparison")) }
}

@_cdecl("bp_graph_where")
public func bp_graph_where(_ g: OpaquePointer?, _ condition: Int32, _ a: Int32, _ b: Int32,
                           _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.where(node(condition, $0), node(a, $0), node(b, $0)) }
}

// MARK: Elementwise unary

@_cdecl("bp_graph_neg")
public func bp_graph_neg(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.neg(node(x, $0)) }
}

@_cdecl("bp_graph_abs")
public func bp_graph_abs(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.abs(node(x, $0)) }
}

@_cdecl("bp_graph_exp")
public func bp_graph_exp(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.exp(node(x, $0)) }
}

@_cdecl("bp_graph_log")
public func bp_graph_log(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.log(node(x, $0)) }
}

@_cdecl("bp_graph_sqrt")
public func bp_graph_sqrt(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.sqrt(node(x, $0)) }
}

@_cdecl("bp_graph_square")
public func bp_graph_square(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.square(node(x, $0)) }
}

@_cdecl("bp_graph_reciprocal")
public func bp_graph_reciprocal(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.reciprocal(node(x, $0)) }
}

@_cdecl("bp_graph_pow_scalar")
public func bp_graph_pow_scalar(_ g: OpaquePointer?, _ x: Int32, _ exponent: Double, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.pow(node(x, $0), exponent) }
}

@_cdecl("bp_graph_relu")
public func bp_graph_relu(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.relu(node(x, $0)) }
}

@_cdecl("bp_graph_leaky_relu")
public func bp_graph_leaky_relu(_ g: OpaquePointer?, _ x: Int32, _ slope: Double, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.leakyReLU(node(x, $0), slope: slope) }
}

@_cdecl("bp_graph_elu")
public func bp_graph_elu(_ g: OpaquePointer?, _ x: Int32, _ alpha: Double, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.elu(node(x, $0), alpha: alpha) }
}

@_cdecl("bp_graph_gelu")
public func bp_graph_gelu(_ g: OpaquePointer?, _ x: Int32, _ approximation: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) {
        let approximation: GELUApproximation = try enumValue(approximation, "GELU approximation")
        return try $0.gelu(node(x, $0), tanhApproximation: approximation == .tanh)
    }
}

@_cdecl("bp_graph_silu")
public func bp_graph_silu(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.silu(node(x, $0)) }
}

@_cdecl("bp_graph_softplus")
public func bp_graph_softplus(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.softplus(node(x, $0)) }
}

@_cdecl("bp_graph_sigmoid")
public func bp_graph_sigmoid(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.sigmoid(node(x, $0)) }
}

@_cdecl("bp_graph_tanh")
public func bp_graph_tanh(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.tanh(node(x, $0)) }
}

@_cdecl("bp_graph_detach")
public func bp_graph_detach(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.detach(node(x, $0)) }
}

// MARK: Matrix products and reductions

@_cdecl("bp_graph_matmul")
public func bp_graph_matmul(_ g: OpaquePointer?, _ a: Int32, _ b: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.matmul(node(a, $0), node(b, $0)) }
}

@_cdecl("bp_graph_matmul_transposed")
public func bp_graph_matmul_transposed(_ g: OpaquePointer?, _ a: Int32, _ b: Int32, _ transposeA: Int32, _ transposeB: Int32,
                                       _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.matmul(node(a, $0), node(b, $0), transposeA: transposeA != 0, transposeB: transposeB != 0) }
}

@_cdecl("bp_graph_sum")
public func bp_graph_sum(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.sum(node(x, $0)) }
}

@_cdecl("bp_graph_mean")
public func bp_graph_mean(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.mean(node(x, $0)) }
}

@_cdecl("bp_graph_reduce")
public func bp_graph_reduce(_ g: OpaquePointer?, _ x: Int32, _ kind: Int32, _ axes: UnsafePointer<Int32>?, _ axisCount: UInt,
                            _ keepDimensions: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) {
        let kind: Reduce.Kind = try enumValue(kind, "reduction kind")
        return try $0.reduce(node(x, $0), kind, axes: axisList(axes, axisCount), keepDimensions: keepDimensions != 0)
    }
}

// MARK: Layout

@_cdecl("bp_graph_reshape")
public func bp_graph_reshape(_ g: OpaquePointer?, _ x: Int32, _ dims: UnsafePointer<UInt>?, _ rank: UInt,
                             _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.reshape(node(x, $0), shape(dims, rank).dims) }
}

@_cdecl("bp_graph_permute")
public func bp_graph_permute(_ g: OpaquePointer?, _ x: Int32, _ permutation: UnsafePointer<UInt>?, _ rank: UInt,
                             _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { graph in
        guard rank <= UInt(Shape.maxRank) else {
            throw BoundaryError.invalidArgument("rank \(rank) is larger than BP_MAX_RANK (\(Shape.maxRank))")
        }
        let axes = rank == 0 ? [] : try buffer(permutation, rank, "permutation").map { Int(exactly: $0) ?? -1 }
        return try graph.permute(node(x, graph), axes)
    }
}

@_cdecl("bp_graph_transpose")
public func bp_graph_transpose(_ g: OpaquePointer?, _ x: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.transpose(node(x, $0)) }
}

@_cdecl("bp_graph_concat")
public func bp_graph_concat(_ g: OpaquePointer?, _ inputs: UnsafePointer<Int32>?, _ inputCount: UInt, _ axis: Int32,
                            _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { graph in
        guard inputCount >= 1 else { throw BoundaryError.invalidArgument("concat needs at least one input") }
        let nodes = try buffer(inputs, inputCount, "inputs").map { try node($0, graph) }
        return try graph.concat(nodes, axis: Int(axis))
    }
}

@_cdecl("bp_graph_slice")
public func bp_graph_slice(_ g: OpaquePointer?, _ x: Int32, _ axis: Int32, _ start: UInt, _ end: UInt,
                           _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { graph in
        guard let first = Int(exactly: start), let last = Int(exactly: end) else {
            throw BoundaryError.invalidArgument("slice: range \(start)..<\(end) is beyond any axis")
        }
        return try graph.slice(node(x, graph), axis: Int(axis), start: first, end: last)
    }
}

@_cdecl("bp_graph_gather")
public func bp_graph_gather(_ g: OpaquePointer?, _ table: Int32, _ indices: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.gather(node(table, $0), node(indices, $0)) }
}

// MARK: Normalization

@_cdecl("bp_graph_softmax")
public func bp_graph_softmax(_ g: OpaquePointer?, _ x: Int32, _ axis: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.softmax(node(x, $0), axis: Int(axis)) }
}

@_cdecl("bp_graph_log_softmax")
public func bp_graph_log_softmax(_ g: OpaquePointer?, _ x: Int32, _ axis: Int32, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.logSoftmax(node(x, $0), axis: Int(axis)) }
}

@_cdecl("bp_graph_layer_norm")
public func bp_graph_layer_norm(_ g: OpaquePointer?, _ x: Int32, _ normalizedRank: UInt, _ weight: Int32, _ bias: Int32,
                                _ eps: Double, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { graph in
        let rank = Int(exactly: normalizedRank) ?? Int.max
        switch (weight, bias) {
        case (-1, -1):
            return try graph.layerNorm(node(x, graph), normalizedRank: rank, eps: eps)
        case (-1, _), (_, -1):
            throw BoundaryError.invalidArgument("pass both weight and bias, or neither (BP_NO_NODE)")
        default:
            let w = try node(weight, graph)
            guard try graph.shape(of: w).rank == rank else {
                throw BackpropError.shape("layer_norm: weight \(try graph.shape(of: w)) must have rank normalized_rank = \(normalizedRank)")
            }
            return try graph.layerNorm(node(x, graph), weight: w, bias: node(bias, graph), eps: eps)
        }
    }
}

@_cdecl("bp_graph_dropout")
public func bp_graph_dropout(_ g: OpaquePointer?, _ x: Int32, _ probability: Double, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.dropout(node(x, $0), probability: probability) }
}

// MARK: Losses

@_cdecl("bp_graph_mse_loss")
public func bp_graph_mse_loss(_ g: OpaquePointer?, _ prediction: Int32, _ target: Int32, _ reduction: Int32,
                              _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.mseLoss(node(prediction, $0), node(target, $0), reduction: enumValue(reduction, "reduction")) }
}

@_cdecl("bp_graph_l1_loss")
public func bp_graph_l1_loss(_ g: OpaquePointer?, _ prediction: Int32, _ target: Int32, _ reduction: Int32,
                             _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.l1Loss(node(prediction, $0), node(target, $0), reduction: enumValue(reduction, "reduction")) }
}

@_cdecl("bp_graph_huber_loss")
public func bp_graph_huber_loss(_ g: OpaquePointer?, _ prediction: Int32, _ target: Int32, _ delta: Double, _ reduction: Int32,
                                _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) {
        try $0.huberLoss(node(prediction, $0), node(target, $0), delta: delta, reduction: enumValue(reduction, "reduction"))
    }
}

@_cdecl("bp_graph_bce_loss")
public func bp_graph_bce_loss(_ g: OpaquePointer?, _ probabilities: Int32, _ target: Int32, _ reduction: Int32,
                              _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.bceLoss(node(probabilities, $0), node(target, $0), reduction: enumValue(reduction, "reduction")) }
}

@_cdecl("bp_graph_bce_with_logits_loss")
public func bp_graph_bce_with_logits_loss(_ g: OpaquePointer?, _ logits: Int32, _ target: Int32, _ reduction: Int32,
                                          _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.bceWithLogitsLoss(node(logits, $0), node(target, $0), reduction: enumValue(reduction, "reduction")) }
}

@_cdecl("bp_graph_cross_entropy")
public func bp_graph_cross_entropy(_ g: OpaquePointer?, _ logits: Int32, _ targets: Int32, _ reduction: Int32,
                                   _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.crossEntropy(node(logits, $0), node(targets, $0), reduction: enumValue(reduction, "reduction")) }
}

@_cdecl("bp_graph_nll_loss")
public func bp_graph_nll_loss(_ g: OpaquePointer?, _ logProbabilities: Int32, _ labels: Int32, _ reduction: Int32,
                              _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { try $0.nllLoss(node(logProbabilities, $0), node(labels, $0), reduction: enumValue(reduction, "reduction")) }
}

// MARK: Helpers

/// The GELU forms, as `bp_gelu_approximation`.
enum GELUApproximation: Int32, CaseIterable {
    case none = 0
    case tanh = 1
}

/// Axes from a C array (NULL allowed when the count is 0, meaning every axis).
private func axisList(_ axes: UnsafePointer<Int32>?, _ count: UInt) throws -> [Int] {
    guard count > 0 else { return [] }
    guard count <= UInt(Shape.maxRank) else {
        throw BoundaryError.invalidArgument("\(count) axes is more than BP_MAX_RANK (\(Shape.maxRank))")
    }
    return try buffer(axes, count, "axes").map { Int($0) }
}
