/// Losses, each reduced as PyTorch does: `mean` over elements (elementwise losses) or over the
/// batch (cross-entropy, NLL), `sum`, or `none`.
public enum Reduction: Int32, Sendable, CaseIterable {
    case mean = 0
    case sum = 1
    case none = 2
}

/// A summed loss as the output's element type: the mean or the sum. The sum runs in Double, so
/// the loss of a large batch in float32 does not drift (adding millions of float values loses
/// several percent).
func reduced<T: Scalar>(_ total: Double, count: Int, _ reduction: Reduction) -> T {
    T(reduction == .mean ? total / Double(count) : total)
}

/// A loss computed element by element from prediction p and target t of the same shape. Each
/// states its value and partials; reduction and backward are shared below. Both operands get
/// gradients (targets are usually constants, which simply take none).
public protocol ElementwiseLoss: Op {
    var reduction: Reduction { get }
    func value<T: Scalar>(_ p: T, _ t: T) -> T
    /// (∂loss/∂p, ∂loss/∂t) for one element.
    func partials<T: Scalar>(_ p: T, _ t: T) -> (T, T)
}

extension ElementwiseLoss {
    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard inputs[0] == inputs[1] else {
            throw BackpropError.shape("\(name): prediction \(inputs[0]) and target \(inputs[1]) differ in shape")
        }
        return reduction == .none ? inputs[0] : .scalar
    }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let p = f.input(0), t = f.input(1), n = f.inputShape(0).count
        if reduction == .none {
            for i in 0..<n { f.output[i] = value(p[i], t[i]) }
            return
        }
        f.output[0] = reduced(total(p, t, count: n), count: n, reduction)
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        addGradients(p: f.input(0), t: f.input(1), upstream: f.outputGradient, count: f.inputShape(0).count,
                     into: f.inputGradient(0), f.inputGradient(1))
    }

    /// The kernels on raw buffers, shared with networks' planned training step: the sum of
    /// the elements' losses (in Double: see `reduced`), and backward, adding into each
    /// gradient that is not nil.
    func total<T: Scalar>(_ p: UnsafePointer<T>, _ t: UnsafePointer<T>, count n: Int) -> Double {
        var total = 0.0
        for i in 0..<n { total += Double(value(p[i], t[i])) }
        return total
    }

    func addGradients<T: Scalar>(p: UnsafePointer<T>, t: UnsafePointer<T>, upstream g: UnsafePointer<T>, count n: Int,
                                 into gp: UnsafeMutablePointer<T>?, _ gt: UnsafeMutablePointer<T>?) {
        let scale: T = reduction == .mean ? 1 / T(n) : 1
        for i in 0..<n {
            let upstream = (reduction == .none ? g[i] : g[0]) * scale
            let (dp, dt) = partials(p[i], t[i])
            gp?[i] += upstream * dp
            gt?[i] += upstream * dt
        }
    }
}

/// (p - t)².
public struct MSELoss: ElementwiseLoss {
    public var reduction: Reduction
    public init(reduction: Reduction = .mean) { self.reduction = reduction }
    public var name: String { "mse_loss" }
    public func value<T: Scalar>(_ p: T, _ t: T) -> T { (p - t) * (p - t) }
    public func partials<T: Scalar>(_ p: T, _ t: T) -> (T, T) { (2 * (p - t), -2 * (p - t)) }
}

/// |p - t|, with derivative 0 where p == t (as PyTorch).
public struct L1Loss: ElementwiseLoss {
    public var reduction: Reduction
    public init(reduction: Reduction = .mean) { self.reduction = reduction }
    public var name: String { "l1_loss" }
    public func value<T: Scalar>(_ p: T, _ t: T) -> T { abs(p - t) }
    public func partials<T: Scalar>(_ p: T, _ t: T) -> (T, T) {
        let s: T = p > t ? 1 : p < t ? -1 : 0
        return (s, -s)
    }
}

/// ½(p - t)² where |p - t| < delta, else delta · (|p - t| - ½ delta) (PyTorch's HuberLoss).
public struct HuberLoss: ElementwiseLoss {
    public var reduction: Reduction
    public var delta: Double
    public init(reduction: Reduction = .mean, delta: Double = 1) {
        self.reduction = reduction
        self.delta = delta
    }
    public var name: String { "huber_loss" }
    public func value<T: Scalar>(_ p: T, _ t: T) -> T {
        let d = abs(p - t), delta = T(self.delta)
        return d < delta ? d * d / 2 : delta * (d - delta / 2)
    }
    public func partials<T: Scalar>(_ p: T, _ t: T) -> (T, T) {
        let d = p - t, delta = T(self.delta)
        let dp: T = abs(d) < delta ? d : d > 0 ? delta : -delta
        return (dp, -dp)
    }
}

/// Binary cross-entropy of probabilities p against targets t in [0, 1]:
/// -(t · log p + (1 - t) · log(1 - p)), with each log clamped at -100 and the gradient's
/// denominator p(1 - p) kept at least 1e-12, as PyTorch's BCELoss does.
public struct BCELoss: ElementwiseLoss {
    public var reduction: Reduction
    public init(reduction: Reduction = .mean) { self.reduction = reduction }
    public var name: String { "binary_cross_entropy" }
    private func clampedLog<T: Scalar>(_ x: T) -> T { max(T.log(x), -100) }
    public func value<T: Scalar>(_ p: T, _ t: T) -> T {
        -(t * clampedLog(p) + (1 - t) * clampedLog(1 - p))
    }
    public func partials<T: Scalar>(_ p: T, _ t: T) -> (T, T) {
        ((p - t) / max(p * (1 - p), T(1e-12)), clampedLog(1 - p) - clampedLog(p))
    }
}

/// Binary cross-entropy from logits x, fused and stable for any x:
/// max(x, 0) - x · t + log(1 + e^-|x|); gradient σ(x) - t.
public struct BCEWithLogitsLoss: ElementwiseLoss {
    public var reduction: Reduction
    public init(reduction: Reduction = .mean) { self.reduction = reduction }
    public var name: String { "binary_cross_entropy_with_logits" }
    public func value<T: Scalar>(_ x: T, _ t: T) -> T { max(x, 0) - x * t + T.log1p(T.exp(-abs(x))) }
    public func partials<T: Scalar>(_ x: T, _ t: T) -> (T, T) { (Sigmoid().value(x) - t, -x) }
}

/// Softmax cross-entropy from logits [batch, classes], fused for stability (log-sum-exp with the
/// maximum subtracted). Targets are either class indices [batch] (whole numbers in
/// [0, classes); they get no gradient) or probabilities [batch, classes] (gradient -log softmax).
/// The softmax is kept in scratch memory: backward is (softmax · Σt - t) times the upstream.
public struct CrossEntropyLoss: Op {
    public var reduction: Reduction
    public init(reduction: Reduction = .mean) { self.reduction = reduction }
    public var name: String { "cross_entropy" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        let logits = inputs[0], targets = inputs[1]
        guard logits.rank == 2 else {
            throw BackpropError.shape("cross_entropy: logits must be [batch, classes], got \(logits)")
        }
        guard targets.dims == [logits[0]] || targets == logits else {
            throw BackpropError.shape("cross_entropy: targets must be class indices [\(logits[0])] or probabilities \(logits), got \(targets)")
        }
        return reduction == .none ? try Shape([logits[0]]) : .scalar
    }

    public func scratchCount(_ inputs: [Shape]) -> Int { inputs[0].count }

    public func forward<T: Scalar>(_ f: Frame<T>) throws {
        let batch = f.inputShape(0)[0], classes = f.inputShape(0)[1]
        let indexed = f.inputShape(1).rank == 1
        if indexed { try validateClassIndices(f.input(1), batch: batch, classes: classes, op: name) }
        var total = 0.0
        CrossEntropyLoss.rows(logits: f.input(0), targets: f.input(1), indexed: indexed,
                              probabilities: f.scratch, batch: batch, classes: classes) { row, loss in
            if reduction == .none { f.output[row] = loss } else { total += Double(loss) }
        }
        if reduction != .none { f.output[0] = reduced(total, count: batch, reduction) }
    }

    /// The forward kernel on raw buffers, shared with networks' planned training step: the
    /// softmax of every row of logits into `probabilities`, and each row's loss against the
    /// targets (class indices when `indexed`, already checked, else probabilities), given to
    /// `take` with its row.
    @inline(__always)
    static func rows<T: Scalar>(logits x: UnsafePointer<T>, targets: UnsafePointer<T>, indexed: Bool,
                                probabilities: UnsafeMutablePointer<T>, batch: Int, classes: Int,
                                _ take: (Int, T) -> Void) {
        for row in 0..<batch {
            let logits = x + row * classes, p = probabilities + row * classes
            var largest = logits[0]
            for j in 0..<classes where logits[j] > largest { largest = logits[j] }
            var sum: T = 0
            for j in 0..<classes {
                p[j] = T.exp(logits[j] - largest)
                sum += p[j]
            }
            let logSum = T.log(sum)
            for j in 0..<classes { p[j] /= sum }
            // -log softmax_j = logSum - (x_j - largest): the shift is removed before the log is
            // added, so huge logits lose no precision.
            var loss: T = 0
            if indexed {
                loss = logSum - (logits[targets[row].truncatedInt] - largest)
            } else {
                let t = targets + row * classes
                for j in 0..<classes where t[j] != 0 { loss += t[j] * (logSum - (logits[j] - largest)) }
            }
            take(row, loss)
        }
    }

    /// The backward kernel for class indices on raw buffers: adds (softmax - one-hot) times each
    /// row's upstream gradient into `gradient`.
    @inline(__always)
    static func addIndexedGradient<T: Scalar>(probabilities: UnsafePointer<T>, labels: UnsafePointer<T>,
                                              into gradient: UnsafeMutablePointer<T>, batch: Int, classes: Int,
                                              upstream: (Int) -> T) {
        for row in 0..<batch {
            let share = upstream(row), p = probabilities + row * classes, gr = gradient + row * classes
            for j in 0..<classes { gr[j] += share * p[j] }
            gr[labels[row].truncatedInt] -= share
        }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        let x = f.input(0), targets = f.input(1), probabilities = f.scratch, g = f.outputGradient
        let batch = f.inputShape(0)[0], classes = f.inputShape(0)[1]
        let indexed = f.inputShape(1).rank == 1
        let gx = f.inputGradient(0), gt = indexed ? nil : f.inputGradient(1)
        if indexed {
            guard let gx else { return }
            CrossEntropyLoss.addIndexedGradient(probabilities: probabilities, labels: targets, into: gx,
                                                batch: batch, classes: classes) { row in
                batchUpstream(g, row: row, batch: batch, reduction: reduction)
            }
            return
        }
        for row in 0..<batch {
            let upstream = batchUpstream(g, row: row, batch: batch, reduction: reduction)
            let p = probabilities + row * classes
            let t = targets + row * classes
            var mass: T = 0
            for j in 0..<classes { mass += t[j] }
            if let gx {
                for j in 0..<classes { gx[row * classes + j] += upstream * (p[j] * mass - t[j]) }
            }
            if let gt {
                // -log softmax, recomputed from the kept probabilities' source logits.
                let logits = x + row * classes
                var largest = logits[0]
                for j in 0..<classes where logits[j] > largest { largest = logits[j] }
                var sum: T = 0
                for j in 0..<classes { sum += T.exp(logits[j] - largest) }
                let logSum = T.log(sum)
                for j in 0..<classes { gt[row * classes + j] += upstream * (logSum - (logits[j] - largest)) }
            }
        }
    }
}

/// Negative log-likelihood from log-probabilities [batch, classes] and class indices [batch]:
/// -logp[label], reduced over the batch. Use after log_softmax; indices get no gradient.
public struct NLLLoss: Op {
    public var reduction: Reduction
    public init(reduction: Reduction = .mean) { self.reduction = reduction }
    public var name: String { "nll_loss" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard inputs[0].rank == 2, inputs[1].dims == [inputs[0][0]] else {
            throw BackpropError.shape("nll_loss: needs log-probabilities [batch, classes] and indices [batch], got \(inputs[0]) and \(inputs[1])")
        }
        return reduction == .none ? try Shape([inputs[0][0]]) : .scalar
    }

    public func forward<T: Scalar>(_ f: Frame<T>) throws {
        let logp = f.input(0), labels = f.input(1)
        let batch = f.inputShape(0)[0], classes = f.inputShape(0)[1]
        try validateClassIndices(labels, batch: batch, classes: classes, op: name)
        var total = 0.0
        for row in 0..<batch {
            let loss = -logp[row * classes + labels[row].truncatedInt]
            if reduction == .none { f.output[row] = loss } else { total += Double(loss) }
        }
        if reduction != .none { f.output[0] = reduced(total, count: batch, reduction) }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gx = f.inputGradient(0) else { return }
        let labels = f.input(1), g = f.outputGradient
        let batch = f.inputShape(0)[0], classes = f.inputShape(0)[1]
        for row in 0..<batch {
            gx[row * classes + labels[row].truncatedInt] -= batchUpstream(g, row: row, batch: batch, reduction: reduction)
        }
    }
}

/// The upstream gradient reaching one sample of a per-sample loss.
@inline(__always)
func batchUpstream<T: Scalar>(_ g: UnsafeMutablePointer<T>, row: Int, batch: Int, reduction: Reduction) -> T {
    switch reduction {
    case .none: g[row]
    case .sum: g[0]
    case .mean: g[0] / T(batch)
    }
}

/// Checks every label is a whole number in [0, classes) before anything is computed, so a bad
/// one leaves no half-written output.
func validateClassIndices<T: Scalar>(_ labels: UnsafeMutablePointer<T>, batch: Int, classes: Int, op: String) throws {
    for row in 0..<batch {
        let label = labels[row]
        guard label >= 0, label < T(classes), label == label.rounded(.towardZero) else {
            throw BackpropError.invalidArgument("\(op): label \(label) at row \(row) is not a class index in [0, \(classes))")
        }
    }
}

extension Graph {
    public func mseLoss(_ prediction: NodeID, _ target: NodeID, reduction: Reduction = .mean) throws -> NodeID {
        try apply(MSELoss(reduction: reduction), [prediction, target])
    }
    public func l1Loss(_ prediction: NodeID, _ target: NodeID, reduction: Reduction = .mean) throws -> NodeID {
        try apply(L1Loss(reduction: reduction), [prediction, target])
    }
    public func huberLoss(_ prediction: NodeID, _ target: NodeID, delta: Double = 1, reduction: Reduction = .mean) throws -> NodeID {
        guard delta > 0, delta.isFinite else { throw BackpropError.invalidArgument("huber_loss: delta must be positive, got \(delta)") }
        return try apply(HuberLoss(reduction: reduction, delta: delta), [prediction, target])
    }
    public func bceLoss(_ probabilities: NodeID, _ target: NodeID, reduction: Reduction = .mean) throws -> NodeID {
        try apply(BCELoss(reduction: reduction), [probabilities, target])
    }
    public func bceWithLogitsLoss(_ logits: NodeID, _ target: NodeID, reduction: Reduction = .mean) throws -> NodeID {
        try apply(BCEWithLogitsLoss(reduction: reduction), [logits, target])
    }
    public func crossEntropy(_ logits: NodeID, _ targets: NodeID, reduction: Reduction = .mean) throws -> NodeID {
        try apply(CrossEntropyLoss(reduction: reduction), [logits, targets])
    }
    public func nllLoss(_ logProbabilities: NodeID, _ labels: NodeID, reduction: Reduction = .mean) throws -> NodeID {
        try apply(NLLLoss(reduction: reduction), [logProbabilities, labels])
    }
}
