/// How a dense layer's parameters start.
public enum Initializer: Sendable {
    /// PyTorch's `nn.Linear` default: weight and bias uniform in [-1/√fan_in, 1/√fan_in]
    /// (kaiming_uniform with a = √5 reduces to this bound).
    case linearDefault

    /// Fills a weight [fanOut, fanIn] and a bias [fanOut], drawing the weight first, row by row.
    func fill(weight: inout [Double], bias: inout [Double], fanIn: Int, using generator: inout Generator) {
        switch self {
        case .linearDefault:
            let bound = 1 / Double(fanIn).squareRoot()
            for i in weight.indices { weight[i] = generator.uniform(-bound, bound) }
            for i in bias.indices { bias[i] = generator.uniform(-bound, bound) }
        }
    }
}
