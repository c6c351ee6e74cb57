import Glibc

/// Activation functions, elementwise. Derivatives at kinks follow PyTorch.

/// max(x, 0), with derivative 0 at x == 0.
public struct ReLU: ElementwiseUnaryOp {
    public var name: String { "relu" }
    public func value<T: Scalar>(_ x: T) -> T { x > 0 ? x : 0 }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { x > 0 ? 1 : 0 }
}

/// x for x > 0, slope · x otherwise; derivative slope at x == 0.
public struct LeakyReLU: ElementwiseUnaryOp {
    public var slope: Double
    public init(slope: Double = 0.01) { self.slope = slope }
    public var name: String { "leaky_relu" }
    public func value<T: Scalar>(_ x: T) -> T { x > 0 ? x : T(slope) * x }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { x > 0 ? 1 : T(slope) }
}

/// x for x > 0, alpha · (e^x - 1) otherwise.
public struct ELU: ElementwiseUnaryOp {
    public var alpha: Double
    public init(alpha: Double = 1) { self.alpha = alpha }
    public var name: String { "elu" }
    public func value<T: Scalar>(_ x: T) -> T { x > 0 ? x : T(alpha) * T.expm1(x) }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { x > 0 ? 1 : y + T(alpha) }
}

/// x · Φ(x), exactly (with erf) or with PyTorch's tanh approximation.
public struct GELU: ElementwiseUnaryOp {
    public var tanhApproximation: Bool
    public init(tanhApproximation: Bool = false) { self.tanhApproximation = tanhApproximation }
    public var name: String { tanhApproximation ? "gelu_tanh" : "gelu" }

    private static var sqrtTwoOverPi: Double { (2 / Double.pi).squareRoot() }

    public func value<T: Scalar>(_ x: T) -> T {
        if tanhApproximation {
            let inner = T(Self.sqrtTwoOverPi) * (x + T(0.044715) * x * x * x)
            return x * (1 + T.tanh(inner)) / 2
        }
        return x * (1 + T.erf(x / T(2.0.squareRoot()))) / 2
    }

    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T {
        if tanhApproximation {
            let k = T(Self.sqrtTwoOverPi)
            let t = T.tanh(k * (x + T(0.044715) * x * x * x))
            return (1 + t) / 2 + x * (1 - t * t) * k * (1 + 3 * T(0.044715) * x * x) / 2
        }
        let cdf = (1 + T.erf(x / T(2.0.squareRoot()))) / 2
        let pdf = T.exp(-x * x / 2) / T((2 * Double.pi).squareRoot())
        return cdf + x * pdf
    }
}

/// x · σ(x), also called swish.
public struct SiLU: ElementwiseUnaryOp {
    public var name: String { "silu" }
    public func value<T: Scalar>(_ x: T) -> T { x * Sigmoid().value(x) }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T {
        let s = Sigmoid().value(x)
        return s * (1 + x * (1 - s))
    }
}

/// ln(1 + e^x), computed without overflow; like PyTorch (beta 1, threshold 20) it is x itself
/// above 20. The derivative is σ(x).
public struct Softplus: ElementwiseUnaryOp {
    public var name: String { "softplus" }
    public func value<T: Scalar>(_ x: T) -> T {
        x > 20 ? x : max(x, 0) + T.log1p(T.exp(-abs(x)))
    }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { x > 20 ? 1 : Sigmoid().value(x) }
}

/// 1 / (1 + e^-x), evaluated so that neither branch overflows.
public struct Sigmoid: ElementwiseUnaryOp {
    public var name: String { "sigmoid" }
    public func value<T: Scalar>(_ x: T) -> T {
        if x >= 0 { return 1 / (1 + T.exp(-x)) }
        let e = T.exp(x)
        return e / (1 + e)
    }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { y * (1 - y) }
}

public struct Tanh: ElementwiseUnaryOp {
    public var name: String { "tanh" }
    public func value<T: Scalar>(_ x: T) -> T { T.tanh(x) }
    public func derivative<T: Scalar>(_ x: T, _ y: T) -> T { 1 - y * y }
}

extension Graph {
    public func relu(_ x: NodeID) throws -> NodeID { try apply(ReLU(), [x]) }
    public func leakyReLU(_ x: NodeID, slope: Double = 0.01) throws -> NodeID {
        guard slope.isFinite else { throw BackpropError.invalidArgument("leaky_relu: slope must be finite") }
        return try apply(LeakyReLU(slope: slope), [x])
    }
    public func elu(_ x: NodeID, alpha: Double = 1) throws -> NodeID {
        guard alpha.isFinite else { throw BackpropError.invalidArgument("elu: alpha must be finite") }
        return try apply(ELU(alpha: alpha), [x])
    }
    public func gelu(_ x: NodeID, tanhApproximation: Bool = false) throws -> NodeID {
        try apply(GELU(tanhApproximation: tanhApproximation), [x])
    }
    public func silu(_ x: NodeID) throws -> NodeID { try apply(SiLU(), [x]) }
    public func softplus(_ x: NodeID) throws -> NodeID { try apply(Softplus(), [x]) }
    public func sigmoid(_ x: NodeID) throws -> NodeID { try apply(Sigmoid(), [x]) }
    public func tanh(_ x: NodeID) throws -> NodeID { try apply(Tanh(), [x]) }
}
