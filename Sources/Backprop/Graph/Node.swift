/// Identifies a node within the graph that made it: its position in creation order.
public typealias NodeID = Int

/// What a node is: a leaf whose values the caller sets, or an op computed from other nodes.
public enum NodeKind: Sendable {
    /// Values set by the caller; has a gradient.
    case input
    /// Values set by the caller or an optimizer; has a gradient; lives in the flat parameter block.
    case parameter
    /// Values set by the caller; no gradient.
    case constant
    case op(any AnyOp)

    public var isLeaf: Bool {
        if case .op = self { return false }
        return true
    }
}

struct Node {
    let kind: NodeKind
    /// `kind.isLeaf` and whether it is a parameter, stored: hot loops test them without
    /// copying the op out of `kind`.
    let isLeaf: Bool
    let isParameter: Bool
    let inputs: [NodeID]
    var shape: Shape
    /// True when a gradient flows to this node: it is an input or parameter, or depends on one.
    let requiresGradient: Bool

    init(kind: NodeKind, inputs: [NodeID], shape: Shape, requiresGradient: Bool) {
        self.kind = kind
        self.isLeaf = kind.isLeaf
        if case .parameter = kind { isParameter = true } else { isParameter = false }
        self.inputs = inputs
        self.shape = shape
        self.requiresGradient = requiresGradient
    }
}
