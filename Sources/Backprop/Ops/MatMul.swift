/// Matrix product C = op(A) · op(B) of rank-2 operands, where op transposes an operand stored
/// transposed. Runs on CBLAS GEMM; backward is two more GEMMs that accumulate (beta = 1):
///     d op(A) = dC · op(B)ᵀ        d op(B) = op(A)ᵀ · dC
public struct MatMul: Op {
    public var transposeA = false
    public var transposeB = false

    public init(transposeA: Bool = false, transposeB: Bool = false) {
        self.transposeA = transposeA
        self.transposeB = transposeB
    }

    public var name: String { "matmul" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        let a = inputs[0], b = inputs[1]
        guard a.rank == 2, b.rank == 2 else {
            throw BackpropError.shape("matmul: operands must have rank 2, got \(a) and \(b)")
        }
        let (m, k) = transposeA ? (a[1], a[0]) : (a[0], a[1])
        let (kb, n) = transposeB ? (b[1], b[0]) : (b[0], b[1])
        guard k == kb else {
            throw BackpropError.shape("matmul: inner dimensions differ: \(a)\(transposeA ? "ᵀ" : "") · \(b)\(transposeB ? "ᵀ" : "")")
        }
        // CBLAS takes 32-bit dimensions.
        guard [m, n, k].allSatisfy({ $0 <= Int(Int32.max) }) else {
            throw BackpropError.shape("matmul: dimensions of \(a) and \(b) exceed what BLAS supports")
        }
        return try Shape([m, n])
    }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let (m, n) = (f.outputShape[0], f.outputShape[1])
        let k = transposeA ? f.inputShape(0)[0] : f.inputShape(0)[1]
        T.gemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: 1,
               a: f.input(0), lda: f.inputShape(0)[1], b: f.input(1), ldb: f.inputShape(1)[1],
               beta: 0, c: f.output, ldc: n)
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        let (m, n) = (f.outputShape[0], f.outputShape[1])
        let k = transposeA ? f.inputShape(0)[0] : f.inputShape(0)[1]
        let a = f.input(0), b = f.input(1), g = f.outputGradient
        let lda = f.inputShape(0)[1], ldb = f.inputShape(1)[1]
        if let ga = f.inputGradient(0) {
            if transposeA {  // A is k×m: dA = op(B) · dCᵀ
                T.gemm(transA: transposeB, transB: true, m: k, n: m, k: n, alpha: 1,
                       a: b, lda: ldb, b: g, ldb: n, beta: 1, c: ga, ldc: lda)
            } else {  // A is m×k: dA = dC · op(B)ᵀ
                T.gemm(transA: false, transB: !transposeB, m: m, n: k, k: n, alpha: 1,
                       a: g, lda: n, b: b, ldb: ldb, beta: 1, c: ga, ldc: lda)
            }
        }
        if let gb = f.inputGradient(1) {
            if transposeB {  // B is n×k: dB = dCᵀ · op(A)
                T.gemm(transA: true, transB: transposeA, m: n, n: k, k: m, alpha: 1,
                       a: g, lda: n, b: a, ldb: lda, beta: 1, c: gb, ldc: ldb)
            } else {  // B is k×n: dB = op(A)ᵀ · dC
                T.gemm(transA: !transposeA, transB: false, m: k, n: n, k: m, alpha: 1,
                       a: a, lda: lda, b: g, ldb: n, beta: 1, c: gb, ldc: ldb)
            }
        }
    }
}

extension Graph {
    public func matmul(_ a: NodeID, _ b: NodeID, transposeA: Bool = false, transposeB: Bool = false) throws -> NodeID {
        try apply(MatMul(transposeA: transposeA, transposeB: transposeB), [a, b])
    }
}
