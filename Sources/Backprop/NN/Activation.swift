/// The activation applied after a dense layer.
public enum Activation: Int32, Sendable, CaseIterable {
    case none = 0
    case relu = 1
    case sigmoid = 2
    case tanh = 3

    /// Adds the activation's node after `x` (none adds nothing).
    func apply(to x: NodeID, in graph: Graph) throws -> NodeID {
        switch self {
        case .none: x
        case .relu: try graph.relu(x)
        case .sigmoid: try graph.sigmoid(x)
        case .tanh: try graph.tanh(x)
        }
    }
}

/// The loss a network trains against.
public enum LossKind: Int32, Sendable, CaseIterable {
    /// Mean squared error against float targets [batch, outputs], averaged over all elements.
    case mse = 0
    /// Softmax cross-entropy of the outputs (logits) against class labels [batch], averaged over
    /// the batch.
    case crossEntropy = 1
}
