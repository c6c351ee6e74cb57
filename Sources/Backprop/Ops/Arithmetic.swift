/// Elementwise binary ops with NumPy broadcasting. Each op states its value and its two local
/// partial derivatives; forward and backward (including summing the gradient of a broadcast
/// operand over the axes it was repeated along) are shared below.
public protocol ElementwiseBinaryOp: Op {
    static func value<T: Scalar>(_ a: T, _ b: T) -> T
    /// (∂out/∂a, ∂out/∂b) at a, b, where out = value(a, b).
    static func partials<T: Scalar>(_ a: T, _ b: T, _ out: T) -> (T, T)
}

extension ElementwiseBinaryOp {
    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard let shape = Shape.broadcast(inputs[0], inputs[1]) else {
            throw BackpropError.shape("\(name): shapes \(inputs[0]) and \(inputs[1]) do not broadcast")
        }
        return shape
    }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let a = f.input(0), b = f.input(1), out = f.output
        forEachBroadcast(f.outputShape, f.inputShape(0), f.inputShape(1)) { i, ia, ib in
            out[i] = Self.value(a[ia], b[ib])
        }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        let a = f.input(0), b = f.input(1), out = f.output, g = f.outputGradient
        let ga = f.inputGradient(0), gb = f.inputGradient(1)
        forEachBroadcast(f.outputShape, f.inputShape(0), f.inputShape(1)) { i, ia, ib in
            // As in unary ops: a zero upstream adds exactly zero, never 0 · inf.
            guard g[i] != 0 else { return }
            let (da, db) = Self.partials(a[ia], b[ib], out[i])
            ga?[ia] += g[i] * da
            gb?[ib] += g[i] * db
        }
    }
}

public struct Add: ElementwiseBinaryOp {
    public var name: String { "add" }
    public static func value<T: Scalar>(_ a: T, _ b: T) -> T { a + b }
    public static func partials<T: Scalar>(_ a: T, _ b: T, _ out: T) -> (T, T) { (1, 1) }
}

public struct Subtract: ElementwiseBinaryOp {
    public var name: String { "sub" }
    public static func value<T: Scalar>(_ a: T, _ b: T) -> T { a - b }
    public static func partials<T: Scalar>(_ a: T, _ b: T, _ out: T) -> (T, T) { (1, -1) }
}

public struct Multiply: ElementwiseBinaryOp {
    public var name: String { "mul" }
    public static func value<T: Scalar>(_ a: T, _ b: T) -> T { a * b }
    public static func partials<T: Scalar>(_ a: T, _ b: T, _ out: T) -> (T, T) { (b, a) }
}

public struct Divide: ElementwiseBinaryOp {
    public var name: String { "div" }
    public static func value<T: Scalar>(_ a: T, _ b: T) -> T { a / b }
    public static func partials<T: Scalar>(_ a: T, _ b: T, _ out: T) -> (T, T) { (1 / b, -a / (b * b)) }
}

/// The larger of a and b. The gradient goes to the chosen input; a tie splits it evenly (as
/// PyTorch's `maximum` does).
public struct Maximum: ElementwiseBinaryOp {
    public var name: String { "maximum" }
    public static func value<T: Scalar>(_ a: T, _ b: T) -> T { a >= b ? a : b }
    public static func partials<T: Scalar>(_ a: T, _ b: T, _ out: T) -> (T, T) {
        a > b ? (1, 0) : a < b ? (0, 1) : (0.5, 0.5)
    }
}

/// The smaller of a and b, with gradients routed as in `Maximum`.
public struct Minimum: ElementwiseBinaryOp {
    public var name: String { "minimum" }
    public static func value<T: Scalar>(_ a: T, _ b: T) -> T { a <= b ? a : b }
    public static func partials<T: Scalar>(_ a: T, _ b: T, _ out: T) -> (T, T) {
        a < b ? (1, 0) : a > b ? (0, 1) : (0.5, 0.5)
    }
}

/// a^b elementwise. ∂/∂b = a^b · ln a, taken as 0 where a == 0 and b >= 0 (as PyTorch), so
/// 0^b does not produce NaN gradients.
public struct Pow: ElementwiseBinaryOp {
    public var name: String { "pow" }
    public static func value<T: Scalar>(_ a: T, _ b: T) -> T { T.pow(a, b) }
    public static func partials<T: Scalar>(_ a: T, _ b: T, _ out: T) -> (T, T) {
        let da: T = b == 0 ? 0 : b * T.pow(a, b - 1)
        let db: T = a == 0 && b >= 0 ? 0 : out * T.log(a)
        return (da, db)
    }
}

extension Graph {
    public func pow(_ a: NodeID, _ b: NodeID) throws -> NodeID { try apply(Pow(), [a, b]) }
    public func add(_ a: NodeID, _ b: NodeID) throws -> NodeID { try apply(Add(), [a, b]) }
    public func sub(_ a: NodeID, _ b: NodeID) throws -> NodeID { try apply(Subtract(), [a, b]) }
    public func mul(_ a: NodeID, _ b: NodeID) throws -> NodeID { try apply(Multiply(), [a, b]) }
    public func div(_ a: NodeID, _ b: NodeID) throws -> NodeID { try apply(Divide(), [a, b]) }
    public func maximum(_ a: NodeID, _ b: NodeID) throws -> NodeID { try apply(Maximum(), [a, b]) }
    public func minimum(_ a: NodeID, _ b: NodeID) throws -> NodeID { try apply(Minimum(), [a, b]) }
}
