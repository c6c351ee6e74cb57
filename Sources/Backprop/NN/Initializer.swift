import Glibc

/// How a dense layer's parameters start, with PyTorch's formulas (torch.nn.init).
public enum Initializer: Sendable, Equatable {
    /// `nn.Linear`'s default: weight and bias uniform in [-1/√fan_in, 1/√fan_in]
    /// (kaiming_uniform with a = √5 reduces to this bound).
    case linearDefault
    /// Glorot: uniform with bound √(6 / (fan_in + fan_out)), or normal with
    /// std √(2 / (fan_in + fan_out)). Bias zero.
    case xavierUniform
    case xavierNormal
    /// He, for ReLU (gain √2): uniform with bound √(6 / fan_in), or normal with std √(2 / fan_in).
    /// Bias zero.
    case kaimingUniform
    case kaimingNormal
    /// Every weight and bias zero, or every one `value`.
    case zeros
    case constant(Double)

    /// Fills a weight [fanOut, fanIn] and a bias [fanOut], drawing the weight first, row by row.
    /// Draws in Double and stores in `T`, so both element types get the same initial values.
    func fill<T: Scalar>(weight: UnsafeMutableBufferPointer<T>, bias: UnsafeMutableBufferPointer<T>, fanIn: Int, fanOut: Int,
                         using generator: inout Generator) {
        let fanSum = Double(fanIn + fanOut)
        switch self {
        case .linearDefault:
            let bound = 1 / Double(fanIn).squareRoot()
            for i in weight.indices { weight[i] = T(generator.uniform(-bound, bound)) }
            for i in bias.indices { bias[i] = T(generator.uniform(-bound, bound)) }
        case .xavierUniform:
            let bound = (6 / fanSum).squareRoot()
            for i in weight.indices { weight[i] = T(generator.uniform(-bound, bound)) }
        case .xavierNormal:
            let std = (2 / fanSum).squareRoot()
            for i in weight.indices { weight[i] = T(std * generator.normal()) }
        case .kaimingUniform:
            let bound = (6 / Double(fanIn)).squareRoot()
            for i in weight.indices { weight[i] = T(generator.uniform(-bound, bound)) }
        case .kaimingNormal:
            let std = (2 / Double(fanIn)).squareRoot()
            for i in weight.indices { weight[i] = T(std * generator.normal()) }
        case .zeros:
            break
        case .constant(let value):
            for i in weight.indices { weight[i] = T(value) }
            for i in bias.indices { bias[i] = T(value) }
        }
    }
}

extension Generator {
    /// A standard normal draw (Box–Muller on two uniforms; 1 - u keeps the log finite).
    mutating func normal() -> Double {
        let u = 1 - nextUnit(), v = nextUnit()
        return (-2 * Glibc.log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}
