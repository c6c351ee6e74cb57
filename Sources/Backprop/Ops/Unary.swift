/// Elementwise unary ops. Each states its value and its derivative, given the input x and the
/// output y (whichever is cheaper); forward and backward are shared below.
public protocol ElementwiseUnaryOp: Op {
    func value<T: Scalar>(_ x: T) -> T
    /// dy/dx at x, where y = value(x).
    func derivative<T: Scalar>(_ x: T, _ y: T) -> T
}

extension ElementwiseUnaryOp {
    public func outputShape(_ inputs: [Shape]) throws -> Shape { inputs[0] }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        forward(f.input(0), into: f.output, count: f.count)
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gx = f.inputGradient(0) else { return }
        backward(x: f.input(0), y: f.output, upstream: f.outputGradient, into: gx, count: f.count)
    }

    /// The kernels on raw buffers, shared with networks' planned training step.
    func forward<T: Scalar>(_ x: UnsafePointer<T>, into y: UnsafeMutablePointer<T>, count: Int) {
        for i in 0..<count { y[i] = value(x[i]) }
    }

    func backward<T: Scalar>(x: UnsafePointer<T>, y: UnsafePointer<T>, upstream g: UnsafePointer<T>,
                             into gx: UnsafeMutablePointer<T>, count: Int) {
        // A zero upstream contributes exactly zero, even where the derivative is infinite, so
        // an unselected branch of `where` (log at 0, say) cannot leak NaN into the gradient.
        // A select rather than a branch: the loop vectorizes, and ReLU's random signs cost no
        // mispredictions.
        for i in 0..<count {
            let share = g[i] * derivative(x[i], y[i])
            gx[i] += g[i] == 0 ? 0 : share
        }
    }
}

public struct Negate: ElementwiseUnaryOp {
    public var name: String { "neg" }
    public func value<T: Scalar>(_ x: T) -> T { -x }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { -1 }
}

/// |x|, with derivative sign(x) and 0 at x == 0 (as PyTorch).
public struct Abs: ElementwiseUnaryOp {
    public var name: String { "abs" }
    public func value<T: Scalar>(_ x: T) -> T { abs(x) }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { x > 0 ? 1 : x < 0 ? -1 : 0 }
}

public struct Exp: ElementwiseUnaryOp {
    public var name: String { "exp" }
    public func value<T: Scalar>(_ x: T) -> T { T.exp(x) }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { y }
}

/// ln x. At 0 the value is -inf and the derivative +inf, as in float64 math and PyTorch.
public struct Log: ElementwiseUnaryOp {
    public var name: String { "log" }
    public func value<T: Scalar>(_ x: T) -> T { T.log(x) }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { 1 / x }
}

/// √x. At 0 the derivative is +inf, as in float64 math and PyTorch.
public struct Sqrt: ElementwiseUnaryOp {
    public var name: String { "sqrt" }
    public func value<T: Scalar>(_ x: T) -> T { T.sqrt(x) }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { 1 / (2 * y) }
}

public struct Square: ElementwiseUnaryOp {
    public var name: String { "square" }
    public func value<T: Scalar>(_ x: T) -> T { x * x }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { 2 * x }
}

public struct Reciprocal: ElementwiseUnaryOp {
    public var name: String { "reciprocal" }
    public func value<T: Scalar>(_ x: T) -> T { 1 / x }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { -y * y }
}

/// x^p for a fixed exponent p; the derivative p·x^(p-1) is 0 when p == 0 (as PyTorch).
public struct PowScalar: ElementwiseUnaryOp {
    public var exponent: Double
    public init(exponent: Double) { self.exponent = exponent }
    public var name: String { "pow" }
    public func value<T: Scalar>(_ x: T) -> T { T.pow(x, T(exponent)) }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T {
        exponent == 0 ? 0 : T(exponent) * T.pow(x, T(exponent - 1))
    }
}

extension Graph {
    public func neg(_ x: NodeID) throws -> NodeID { try apply(Negate(), [x]) }
    public func abs(_ x: NodeID) throws -> NodeID { try apply(Abs(), [x]) }
    public func exp(_ x: NodeID) throws -> NodeID { try apply(Exp(), [x]) }
    public func log(_ x: NodeID) throws -> NodeID { try apply(Log(), [x]) }
    public func sqrt(_ x: NodeID) throws -> NodeID { try apply(Sqrt(), [x]) }
    public func square(_ x: NodeID) throws -> NodeID { try apply(Square(), [x]) }
    public func reciprocal(_ x: NodeID) throws -> NodeID { try apply(Reciprocal(), [x]) }
    public func pow(_ x: NodeID, _ exponent: Double) throws -> NodeID {
        guard exponent.isFinite else { throw BackpropError.invalidArgument("pow: exponent must be finite, got \(exponent)") }
        return try apply(PowScalar(exponent: exponent), [x])
    }
}
