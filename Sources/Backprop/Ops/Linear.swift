/// A dense layer's affine map in one node: y = x Wᵀ + b for x [batch, in], W [out, in] (as
/// PyTorch's nn.Linear stores it) and b [out]. Fusing the bias into the product saves a pass
/// over the outputs and a gradient buffer per layer:
///     forward:  y ← b in every row, then y += x Wᵀ (GEMM with beta = 1)
///     backward: dx += dy W,  dW += dyᵀ x,  db += the column sums of dy
public struct Linear: Op {
    public init() {}
    public var name: String { "linear" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = inputs[0], w = inputs[1], b = inputs[2]
        guard x.rank == 2, w.rank == 2, b.rank == 1, w[1] == x[1], b[0] == w[0] else {
            throw BackpropError.shape("linear: needs x [batch, in], weight [out, in] and bias [out], got \(x), \(w) and \(b)")
        }
        guard [x[0], x[1], w[0]].allSatisfy({ $0 <= Int(Int32.max) }) else {
            throw BackpropError.shape("linear: dimensions of \(x) and \(w) exceed what BLAS supports")
        }
        return try Shape([x[0], w[0]])
    }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        Linear.forward(x: f.input(0), weight: f.input(1), bias: f.input(2), into: f.output,
                       batch: f.inputShape(0)[0], inputs: f.inputShape(0)[1], outputs: f.inputShape(1)[0])
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        Linear.backward(x: f.input(0), weight: f.input(1), upstream: f.outputGradient,
                        xGradient: f.inputGradient(0), weightGradient: f.inputGradient(1),
                        biasGradient: f.inputGradient(2),
                        batch: f.inputShape(0)[0], inputs: f.inputShape(0)[1], outputs: f.inputShape(1)[0])
    }

    /// The forward kernel on raw buffers, shared with networks' planned training step.
    static func forward<T: Scalar>(x: UnsafePointer<T>, weight: UnsafePointer<T>, bias: UnsafePointer<T>,
                                   into y: UnsafeMutablePointer<T>, batch: Int, inputs: Int, outputs: Int) {
        for row in 0..<batch { (y + row * outputs).update(from: bias, count: outputs) }
        T.gemm(transA: false, transB: true, m: batch, n: outputs, k: inputs, alpha: 1,
               a: x, lda: inputs, b: weight, ldb: inputs, beta: 1, c: y, ldc: outputs)
    }

    /// The backward kernel on raw buffers: adds into each gradient that is not nil.
    static func backward<T: Scalar>(x: UnsafePointer<T>, weight: UnsafePointer<T>, upstream g: UnsafePointer<T>,
                                    xGradient: UnsafeMutablePointer<T>?, weightGradient: UnsafeMutablePointer<T>?,
                                    biasGradient: UnsafeMutablePointer<T>?, batch: Int, inputs: Int, outputs: Int) {
        if let gx = xGradient {
            T.gemm(transA: false, transB: false, m: batch, n: inputs, k: outputs, alpha: 1,
                   a: g, lda: outputs, b: weight, ldb: inputs, beta: 1, c: gx, ldc: inputs)
        }
        if let gw = weightGradient {
            T.gemm(transA: true, transB: false, m: outputs, n: inputs, k: batch, alpha: 1,
                   a: g, lda: outputs, b: x, ldb: inputs, beta: 1, c: gw, ldc: inputs)
        }
        if let gb = biasGradient {
            for row in 0..<batch {
                let r = g + row * outputs
                for j in 0..<outputs { gb[j] += r[j] }
            }
        }
    }
}

extension Graph {
    /// x Wᵀ + b, as one node (see `Linear`).
    public func linear(_ x: NodeID, weight: NodeID, bias: NodeID) throws -> NodeID {
        try apply(Linear(), [x, weight, bias])
    }
}
