/// How a loss reduces its per-element (or per-sample) terms, as in PyTorch.
public enum Reduction: Int32, Sendable, CaseIterable {
    case mean = 0
    case sum = 1
    case none = 2
}

/// Mean squared error: (prediction - target)², reduced. Both operands get gradients.
public struct MSELoss: Op {
    public var reduction: Reduction
    public init(reduction: Reduction = .mean) { self.reduction = reduction }

    public var name: String { "mse_loss" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard inputs[0] == inputs[1] else {
            throw BackpropError.shape("mse_loss: prediction \(inputs[0]) and target \(inputs[1]) differ in shape")
        }
        return reduction == .none ? inputs[0] : .scalar
    }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let p = f.input(0), t = f.input(1), n = f.inputShape(0).count
        if reduction == .none {
            for i in 0..<n { f.output[i] = (p[i] - t[i]) * (p[i] - t[i]) }
            return
        }
        var total: T = 0
        for i in 0..<n { total += (p[i] - t[i]) * (p[i] - t[i]) }
        f.output[0] = reduction == .mean ? total / T(n) : total
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        let p = f.input(0), t = f.input(1), g = f.outputGradient, n = f.inputShape(0).count
        let gp = f.inputGradient(0), gt = f.inputGradient(1)
        let scale: T = reduction == .mean ? 2 / T(n) : 2
        for i in 0..<n {
            let upstream = reduction == .none ? g[i] : g[0]
            let d = upstream * scale * (p[i] - t[i])
            gp?[i] += d
            gt?[i] -= d
        }
    }
}

/// Softmax cross-entropy from logits [batch, classes] and class-index labels [batch], fused for
/// stability: loss_i = logsumexp(x_i) - x_i[label_i], with the max subtracted before exp. The
/// softmax is kept in scratch memory, so backward is (softmax - onehot) times the upstream
/// gradient. Labels get no gradient.
public struct CrossEntropyLoss: Op {
    public var reduction: Reduction
    public init(reduction: Reduction = .mean) { self.reduction = reduction }

    public var name: String { "cross_entropy" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        let logits = inputs[0], labels = inputs[1]
        guard logits.rank == 2 else {
            throw BackpropError.shape("cross_entropy: logits must be [batch, classes], got \(logits)")
        }
        guard labels.rank == 1, labels[0] == logits[0] else {
            throw BackpropError.shape("cross_entropy: labels must be [\(logits[0])] for logits \(logits), got \(labels)")
        }
        return reduction == .none ? try Shape([logits[0]]) : .scalar
    }

    public func scratchCount(_ inputs: [Shape]) -> Int { inputs[0].count }

    public func forward<T: Scalar>(_ f: Frame<T>) throws {
        let x = f.input(0), labels = f.input(1), probabilities = f.scratch
        let batch = f.inputShape(0)[0], classes = f.inputShape(0)[1]
        // Validate every label first, so a bad one leaves no half-computed output behind.
        for row in 0..<batch {
            let label = labels[row]
            guard label >= 0, label < T(classes), label == label.rounded(.towardZero) else {
                throw BackpropError.invalidArgument("cross_entropy: label \(label) at row \(row) is not a class index in [0, \(classes))")
            }
        }
        var total: T = 0
        for row in 0..<batch {
            let logits = x + row * classes, p = probabilities + row * classes
            var largest = logits[0]
            for j in 1..<max(classes, 1) where logits[j] > largest { largest = logits[j] }
            var sum: T = 0
            for j in 0..<classes {
                p[j] = T.exp(logits[j] - largest)
                sum += p[j]
            }
            for j in 0..<classes { p[j] /= sum }
            // Subtract the shift before adding the log, so huge logits lose no precision.
            let loss = T.log(sum) - (logits[Int(labels[row])] - largest)
            if reduction == .none { f.output[row] = loss } else { total += loss }
        }
        if reduction != .none { f.output[0] = reduction == .mean ? total / T(batch) : total }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gx = f.inputGradient(0) else { return }
        let labels = f.input(1), probabilities = f.scratch, g = f.outputGradient
        let batch = f.inputShape(0)[0], classes = f.inputShape(0)[1]
        for row in 0..<batch {
            let upstream = switch reduction {
            case .none: g[row]
            case .sum: g[0]
            case .mean: g[0] / T(batch)
            }
            let p = probabilities + row * classes, gr = gx + row * classes
            for j in 0..<classes { gr[j] += upstream * p[j] }
            gr[Int(labels[row])] -= upstream
        }
    }
}

extension Graph {
    public func mseLoss(_ prediction: NodeID, _ target: NodeID, reduction: Reduction = .mean) throws -> NodeID {
        try apply(MSELoss(reduction: reduction), [prediction, target])
    }
    public func crossEntropy(_ logits: NodeID, _ labels: NodeID, reduction: Reduction = .mean) throws -> NodeID {
        try apply(CrossEntropyLoss(reduction: reduction), [logits, labels])
    }
}
