/// Matrix product C = op(A) · op(B), where op transposes an operand stored
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

    /// Operands of rank 2 or more: the last two axes are the matrices, the leading axes are a
    /// batch that broadcasts (NumPy's matmul rule), so [b, m, k] · [k, n] gives [b, m, n].
    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        let a = inputs[0], b = inputs[1]
        guard a.rank >= 2, b.rank >= 2 else {
            throw BackpropError.shape("matmul: operands must have rank 2 or more, got \(a) and \(b)")
        }
        let (m, k) = matrix(a, transposed: transposeA)
        let (kb, n) = matrix(b, transposed: transposeB)
        guard k == kb else {
            throw BackpropError.shape("matmul: inner dimensions differ: \(a)\(transposeA ? "ᵀ" : "") · \(b)\(transposeB ? "ᵀ" : "")")
        }
        guard let batch = Shape.broadcast(try batchShape(a), try batchShape(b)) else {
            throw BackpropError.shape("matmul: batch dimensions of \(a) and \(b) do not broadcast")
        }
        // CBLAS takes 32-bit dimensions.
        guard [m, n, k].allSatisfy({ $0 <= Int(Int32.max) }) else {
            throw BackpropError.shape("matmul: dimensions of \(a) and \(b) exceed what BLAS supports")
        }
        return try Shape(batch.dims + [m, n])
    }

    /// (rows, columns) of op(X) for the matrices in the last two axes.
    private func matrix(_ x: Shape, transposed: Bool) -> (Int, Int) {
        let (r, c) = (x[x.rank - 2], x[x.rank - 1])
        return transposed ? (c, r) : (r, c)
    }

    private func batchShape(_ x: Shape) throws -> Shape { try Shape(Array(x.dims.dropLast(2))) }

    /// Calls `body` once per matrix product with the offsets of that product's A, B and C.
    private func forEachProduct<T: Scalar>(_ f: Frame<T>, _ body: (Int, Int, Int) -> Void) {
        let a = f.inputShape(0), b = f.inputShape(1), out = f.outputShape
        if a.rank == 2 && b.rank == 2 { return body(0, 0, 0) }  // the common case, with no batch to walk
        guard let batchA = try? batchShape(a), let batchB = try? batchShape(b), let batchC = try? batchShape(out) else { return }
        let sizeA = a[a.rank - 2] * a[a.rank - 1], sizeB = b[b.rank - 2] * b[b.rank - 1]
        let sizeC = out[out.rank - 2] * out[out.rank - 1]
        forEachBroadcast(batchC, batchA, batchB) { i, ia, ib in body(ia * sizeA, ib * sizeB, i * sizeC) }
    }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let (m, k) = matrix(f.inputShape(0), transposed: transposeA)
        let n = f.outputShape[f.outputShape.rank - 1]
        let lda = f.inputShape(0)[f.inputShape(0).rank - 1], ldb = f.inputShape(1)[f.inputShape(1).rank - 1]
        forEachProduct(f) { oa, ob, oc in
            T.gemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: 1,
                   a: f.input(0) + oa, lda: lda, b: f.input(1) + ob, ldb: ldb, beta: 0, c: f.output + oc, ldc: n)
        }
    }

    /// Broadcast batch operands accumulate one product per batch entry, since beta = 1.
    public func backward<T: Scalar>(_ f: Frame<T>) {
        let (m, k) = matrix(f.inputShape(0), transposed: transposeA)
        let n = f.outputShape[f.outputShape.rank - 1]
        let lda = f.inputShape(0)[f.inputShape(0).rank - 1], ldb = f.inputShape(1)[f.inputShape(1).rank - 1]
        let ga = f.inputGradient(0), gb = f.inputGradient(1)
        forEachProduct(f) { oa, ob, oc in
            let a = f.input(0) + oa, b = f.input(1) + ob, g = f.outputGradient + oc
            if let ga {
                if transposeA {  // A is k×m: dA = op(B) · dCᵀ
                    T.gemm(transA: transposeB, transB: true, m: k, n: m, k: n, alpha: 1,
                           a: b, lda: ldb, b: g, ldb: n, beta: 1, c: ga + oa, ldc: lda)
                } else {  // A is m×k: dA = dC · op(B)ᵀ
                    T.gemm(transA: false, transB: !transposeB, m: m, n: k, k: n, alpha: 1,
                           a: g, lda: n, b: b, ldb: ldb, beta: 1, c: ga + oa, ldc: lda)
                }
            }
            if let gb {
                if transposeB {  // B is n×k: dB = dCᵀ · op(A)
                    T.gemm(transA: true, transB: transposeA, m: n, n: k, k: m, alpha: 1,
                           a: g, lda: n, b: a, ldb: lda, beta: 1, c: gb + ob, ldc: ldb)
                } else {  // B is k×n: dB = op(A)ᵀ · dC
                    T.gemm(transA: !transposeA, transB: false, m: k, n: n, k: m, alpha: 1,
                           a: a, lda: lda, b: g, ldb: n, beta: 1, c: gb + ob, ldc: ldb)
                }
            }
        }
    }
}

extension Graph {
    public func matmul(_ a: NodeID, _ b: NodeID, transposeA: Bool = false, transposeB: Bool = false) throws -> NodeID {
        try apply(MatMul(transposeA: transposeA, transposeB: transposeB), [a, b])
    }
}
