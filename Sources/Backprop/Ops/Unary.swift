/// Elementwise unary ops. Each states its value and its derivative, given the input x and the
/// output y (whichever is cheaper); forward and backward are shared below.
public protocol ElementwiseUnaryOp: Op {
    static func value<T: Scalar>(_ x: T) -> T
    /// dy/dx at x, where y = value(x).
    static func derivative<T: Scalar>(_ x: T, _ y: T) -> T
}

extension ElementwiseUnaryOp {
    public func outputShape(_ inputs: [Shape]) throws -> Shape { inputs[0] }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let x = f.input(0), y = f.output
        for i in 0..<f.count { y[i] = Self.value(x[i]) }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gx = f.inputGradient(0) else { return }
        let x = f.input(0), y = f.output, g = f.outputGradient
        for i in 0..<f.count { gx[i] += g[i] * Self.derivative(x[i], y[i]) }
    }
}

public struct Negate: ElementwiseUnaryOp {
    public var name: String { "neg" }
    public static func value<T: Scalar>(_ x: T) -> T { -x }
    public static func derivative<T: Scalar>(_ x: T, _ y: T) -> T { -1 }
}

public struct Exp: ElementwiseUnaryOp {
    public var name: String { "exp" }
    public static func value<T: Scalar>(_ x: T) -> T { T.exp(x) }
    public static func derivative<T: Scalar>(_ x: T, _ y: T) -> T { y }
}

public struct Log: ElementwiseUnaryOp {
    public var name: String { "log" }
    public static func value<T: Scalar>(_ x: T) -> T { T.log(x) }
    public static func derivative<T: Scalar>(_ x: T, _ y: T) -> T { 1 / x }
}

/// max(x, 0), with derivative 0 at x == 0 (as PyTorch).
public struct ReLU: ElementwiseUnaryOp {
    public var name: String { "relu" }
    public static func value<T: Scalar>(_ x: T) -> T { x > 0 ? x : 0 }
    public static func derivative<T: Scalar>(_ x: T, _ y: T) -> T { x > 0 ? 1 : 0 }
}

/// 1 / (1 + e^-x), evaluated so that neither branch overflows.
public struct Sigmoid: ElementwiseUnaryOp {
    public var name: String { "sigmoid" }
    public static func value<T: Scalar>(_ x: T) -> T {
        if x >= 0 { return 1 / (1 + T.exp(-x)) }
        let e = T.exp(x)
        return e / (1 + e)
    }
    public static func derivative<T: Scalar>(_ x: T, _ y: T) -> T { y * (1 - y) }
}

public struct Tanh: ElementwiseUnaryOp {
    public var name: String { "tanh" }
    public static func value<T: Scalar>(_ x: T) -> T { T.tanh(x) }
    public static func derivative<T: Scalar>(_ x: T, _ y: T) -> T { 1 - y * y }
}

extension Graph {
    public func neg(_ x: NodeID) throws -> NodeID { try apply(Negate(), [x]) }
    public func exp(_ x: NodeID) throws -> NodeID { try apply(Exp(), [x]) }
    public func log(_ x: NodeID) throws -> NodeID { try apply(Log(), [x]) }
    public func relu(_ x: NodeID) throws -> NodeID { try apply(ReLU(), [x]) }
    public func sigmoid(_ x: NodeID) throws -> NodeID { try apply(Sigmoid(), [x]) }
    public func tanh(_ x: NodeID) throws -> NodeID { try apply(Tanh(), [x]) }
}
