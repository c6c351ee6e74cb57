/// A tensor as a custom op sees it: the graph's element type in raw memory, and its shape.
/// `data` is nil for an input gradient that is not needed.
public struct RawTensor {
    public let data: UnsafeMutableRawPointer?
    public let shape: Shape

    public init(data: UnsafeMutableRawPointer?, shape: Shape) {
        self.data = data
        self.shape = shape
    }
}

/// An op defined by the caller with closures, so code outside the core (C function pointers,
/// Python callables) can add gates to any graph. The contract is the one every op follows:
/// `forward` writes the output from the inputs; `backward` reads the upstream gradient and ADDS
/// (+=) into each input gradient that is present. Closures throw to report a failure, which
/// fails the forward or backward call that ran them.
public struct CustomOp: Op, @unchecked Sendable {
    public typealias ShapeRule = ([Shape]) throws -> Shape
    public typealias Forward = (_ inputs: [RawTensor], _ output: RawTensor) throws -> Void
    public typealias Backward = (_ inputs: [RawTensor], _ output: RawTensor, _ outputGradient: RawTensor,
                                 _ inputGradients: [RawTensor]) throws -> Void

    public let name: String
    let shapeRule: ShapeRule
    let forwardBody: Forward
    let backwardBody: Backward

    public init(name: String, shape: @escaping ShapeRule, forward: @escaping Forward, backward: @escaping Backward) {
        self.name = name
        self.shapeRule = shape
        self.forwardBody = forward
        self.backwardBody = backward
    }

    public func outputShape(_ inputs: [Shape]) throws -> Shape { try shapeRule(inputs) }

    public func forward<T: Scalar>(_ f: Frame<T>) throws {
        try forwardBody(inputs(f), RawTensor(data: f.binding.output, shape: f.outputShape))
    }

    public func backward<T: Scalar>(_ f: Frame<T>) throws {
        let gradients = f.binding.inputShapes.indices.map {
            RawTensor(data: f.binding.inputGradients[$0], shape: f.inputShape($0))
        }
        try backwardBody(inputs(f), RawTensor(data: f.binding.output, shape: f.outputShape),
                         RawTensor(data: f.binding.outputGradient, shape: f.outputShape), gradients)
    }

    private func inputs<T: Scalar>(_ f: Frame<T>) -> [RawTensor] {
        f.binding.inputShapes.indices.map { RawTensor(data: f.binding.inputValues[$0], shape: f.inputShape($0)) }
    }
}
