/// An operation in the graph: a shape rule, a forward and a local backward, side by side.
///
/// `forward` computes `frame.output` from the inputs. `backward` reads `frame.outputGradient`
/// (the upstream gradient) and ADDS its contribution into every input gradient that exists
/// (`frame.inputGradient(i)` is nil for inputs that need none, such as constants). It never
/// overwrites, so a node used by several consumers receives the sum.
///
/// Ops are written once, generically over the element type; `AnyOp` below is the face the graph
/// calls, with one entry point per element type, so that the kernels are compiled for each.
public protocol Op: AnyOp {
    func forward<T: Scalar>(_ frame: Frame<T>) throws
    func backward<T: Scalar>(_ frame: Frame<T>) throws
}

/// The type-erased face of `Op`. Do not conform to it directly: conform to `Op`.
public protocol AnyOp: Sendable {
    /// A short name used in messages, such as "add" or "matmul".
    var name: String { get }
    /// The output's shape for the given input shapes; throws `BackpropError.shape` with a message
    /// that names the op and the shapes when they do not fit.
    func outputShape(_ inputs: [Shape]) throws -> Shape
    /// Elements of per-node scratch memory the op needs between forward and backward (such as
    /// softmax probabilities). Zero by default.
    func scratchCount(_ inputs: [Shape]) -> Int
    /// False for ops whose output carries no gradient (comparisons, detach): nodes computed
    /// only from such outputs need none either. True by default.
    var propagatesGradient: Bool { get }

    func forward(float frame: Frame<Float>) throws
    func forward(double frame: Frame<Double>) throws
    func backward(float frame: Frame<Float>) throws
    func backward(double frame: Frame<Double>) throws
}

extension Op {
    public func scratchCount(_ inputs: [Shape]) -> Int { 0 }
    public var propagatesGradient: Bool { true }
    public func forward(float frame: Frame<Float>) throws { try forward(frame) }
    public func forward(double frame: Frame<Double>) throws { try forward(frame) }
    public func backward(float frame: Frame<Float>) throws { try backward(frame) }
    public func backward(double frame: Frame<Double>) throws { try backward(frame) }
}

/// What ops may read or draw from the graph as a whole while they run.
final class RunContext {
    /// Training mode (dropout active) or evaluation mode (dropout is the identity).
    @exclusivity(unchecked) var isTraining = true
    @exclusivity(unchecked) var generator: Generator

    init(seed: UInt64) { generator = Generator(seed: seed) }
}

/// The memory an op node reads and writes, resolved when the graph plans its buffers.
final class NodeBinding {
    let op: any AnyOp
    @exclusivity(unchecked) var context: RunContext
    @exclusivity(unchecked) var inputShapes: [Shape]
    @exclusivity(unchecked) var outputShape: Shape
    @exclusivity(unchecked) var inputValues: [UnsafeMutableRawPointer]
    @exclusivity(unchecked) var inputGradients: [UnsafeMutableRawPointer?]
    @exclusivity(unchecked) var output: UnsafeMutableRawPointer
    @exclusivity(unchecked) var outputGradient: UnsafeMutableRawPointer?
    @exclusivity(unchecked) var scratch: UnsafeMutableRawPointer?

    init(op: any AnyOp, context: RunContext, inputShapes: [Shape], outputShape: Shape, inputValues: [UnsafeMutableRawPointer],
         inputGradients: [UnsafeMutableRawPointer?], output: UnsafeMutableRawPointer,
         outputGradient: UnsafeMutableRawPointer?, scratch: UnsafeMutableRawPointer?) {
        self.op = op
        self.context = context
        self.inputShapes = inputShapes
        self.outputShape = outputShape
        self.inputValues = inputValues
        self.inputGradients = inputGradients
        self.output = output
        self.outputGradient = outputGradient
        self.scratch = scratch
    }
}

/// An op's typed view of its node's memory during forward or backward.
public struct Frame<T: Scalar> {
    let binding: NodeBinding

    /// The values of input `i`, `inputShape(i).count` elements.
    public func input(_ i: Int) -> UnsafeMutablePointer<T> {
        binding.inputValues[i].assumingMemoryBound(to: T.self)
    }
    /// Where input `i`'s gradient accumulates, or nil if that input needs no gradient.
    public func inputGradient(_ i: Int) -> UnsafeMutablePointer<T>? {
        binding.inputGradients[i]?.assumingMemoryBound(to: T.self)
    }
    public func inputShape(_ i: Int) -> Shape { binding.inputShapes[i] }

    public var output: UnsafeMutablePointer<T> { binding.output.assumingMemoryBound(to: T.self) }
    public var outputShape: Shape { binding.outputShape }
    public var count: Int { binding.outputShape.count }

    /// The upstream gradient (valid during backward only).
    public var outputGradient: UnsafeMutablePointer<T> {
        binding.outputGradient!.assumingMemoryBound(to: T.self)
    }
    /// The node's scratch memory, `scratchCount` elements (nil when the op asked for none).
    public var scratch: UnsafeMutablePointer<T> { binding.scratch!.assumingMemoryBound(to: T.self) }

    /// Whether the graph is in training mode.
    public var isTraining: Bool { binding.context.isTraining }
    /// A uniform number in [0, 1) from the graph's seeded generator.
    public func randomUnit() -> Double { binding.context.generator.nextUnit() }
}
