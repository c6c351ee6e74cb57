import BackpropKernels
import CBLAS
import Glibc

/// An element type the engine computes in. Ops are written once, generically over `Scalar`, and
/// compiled for `Float` and `Double` (see `Op`), so kernels run at full speed for both.
public protocol Scalar: BinaryFloatingPoint, SIMDScalar, Sendable {
    static var dtype: DType { get }
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func tanh(_ x: Self) -> Self
    static func sqrt(_ x: Self) -> Self
    static func erf(_ x: Self) -> Self
    static func log1p(_ x: Self) -> Self
    static func expm1(_ x: Self) -> Self
    static func pow(_ x: Self, _ y: Self) -> Self
    /// The value rounded toward zero as an Int; the caller knows it fits (a class label, say).
    /// A requirement, so that each type converts with one instruction: the generic
    /// `Int(_: some BinaryFloatingPoint)` goes through a slow path.
    var truncatedInt: Int { get }

    /// C = alpha * op(A) * op(B) + beta * C for row-major matrices, where op(A) is m×k and op(B)
    /// is k×n; `transA`/`transB` say whether A/B are stored transposed.
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Self,
        a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
}

/// Whether `Float.gemm` gives a product of this shape to the library's own kernel
/// (packed_gemm.c), on a CPU with AVX2 and FMA: past the small loops, and where that kernel
/// measured the faster.
func ownKernelTakes(transA: Bool, m: Int, n: Int, k: Int) -> Bool {
    m * n * k > BPK_SMALL_GEMM_LIMIT && bpk_sgemm_packed_prefers(transA, n)
}

/// C = alpha op(A) op(B) + beta C in the library's own kernel on `threads` threads: whether every
/// value stored in C was checked finite (false: one is not, or it went unchecked), or nil when
/// the kernel cannot run (no AVX2 and FMA, or, on one thread, no memory for its buffers). The
/// same call serves `Float.gemm` and the training plan that must match it bit for bit. With a
/// bias and ReLU output (ldr floats between its rows), a dense layer's forward pass as it stores
/// C (bpk_sgemm_packed_layer): C starts from the bias in every row, not beta C.
func ownKernelProduct(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int,
                      bias: UnsafePointer<Float>? = nil, relu: UnsafeMutablePointer<Float>? = nil,
                      ldr: Int = 0) -> Bool? {
    guard bpk_sgemm_packed_available() else { return nil }
    var finite = false
    if threads == 1 {
        return bpk_sgemm_packed_layer(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, relu, ldr,
                                      &finite) ? finite : nil
    }
    bpk_gemm_split_layer(Int32(threads), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, relu, ldr,
                         &finite)
    return finite
}

/// C = alpha op(A) op(B) + beta C through OpenBLAS on `threads` threads (a split product when
/// more than one), or in plain loops while a cap on the address space leaves too little room
/// for the buffers OpenBLAS's first products reserve (it would retry that reservation forever:
/// see bpk_blas_has_room).
private func blasGemm<T: Scalar>(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: T,
    a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
    beta: T, c: UnsafeMutablePointer<T>, ldc: Int, threads: Int,
    oneThread: () -> Void
) {
    guard bpk_blas_has_room(Int32(threads)) else {
        plainGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                  b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    if threads == 1 {
        oneThread()
        bpk_blas_did_run(1)
        return
    }
    let kernel = T.self == Float.self ? BPK_BLAS_FLOAT : BPK_BLAS_DOUBLE
    bpk_blas_did_run(bpk_gemm_split(kernel, Int32(threads), transA, transB, m, n, k, Double(alpha), a, lda,
                                    b, ldb, Double(beta), c, ldc, nil))
}

/// C = alpha op(A) op(B) + beta C in plain loops, for products BLAS cannot take (see
/// `blasGemm`): slow, but it needs no memory. beta == 0 does not read C.
func plainGemm<T: Scalar>(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: T,
    a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
    beta: T, c: UnsafeMutablePointer<T>, ldc: Int
) {
    for i in 0..<m {
        let row = c + i * ldc
        for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
        for p in 0..<k {
            let x = alpha * (transA ? a[p * lda + i] : a[i * lda + p])
            for j in 0..<n { row[j] += x * (transB ? b[j * ldb + p] : b[p * ldb + j]) }
        }
    }
}

@inline(__always)
private func cblasTranspose(_ transposed: Bool) -> CBLAS_TRANSPOSE {
    transposed ? CblasTrans : CblasNoTrans
}

extension Float: Scalar {
    public static var dtype: DType { .float32 }
    @inline(__always) public static func exp(_ x: Float) -> Float { expf(x) }
    @inline(__always) public static func log(_ x: Float) -> Float { logf(x) }
    @inline(__always) public static func tanh(_ x: Float) -> Float { tanhf(x) }
    @inline(__always) public static func sqrt(_ x: Float) -> Float { x.squareRoot() }
    @inline(__always) public static func erf(_ x: Float) -> Float { erff(x) }
    @inline(__always) public static func log1p(_ x: Float) -> Float { log1pf(x) }
    @inline(__always) public static func expm1(_ x: Float) -> Float { expm1f(x) }
    @inline(__always) public static func pow(_ x: Float, _ y: Float) -> Float { powf(x, y) }
    @inline(__always) public var truncatedInt: Int { Int(self) }

    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m * n * k <= BPK_SMALL_GEMM_LIMIT {
            bpk_sgemm_small(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        let threads = Parallelism.threadCount
        if ownKernelTakes(transA: transA, m: m, n: n, k: k),
           ownKernelProduct(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                            b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, threads: threads) != nil {
            return
        }
        blasGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                 b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, threads: threads) {
            cblas_sgemm(CblasRowMajor, cblasTranspose(transA), cblasTranspose(transB),
                        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
                        beta, c, blasint(ldc))
        }
    }
}

extension Double: Scalar {
    public static var dtype: DType { .float64 }
    @inline(__always) public static func exp(_ x: Double) -> Double { Glibc.exp(x) }
    @inline(__always) public static func log(_ x: Double) -> Double { Glibc.log(x) }
    @inline(__always) public static func tanh(_ x: Double) -> Double { Glibc.tanh(x) }
    @inline(__always) public static func sqrt(_ x: Double) -> Double { x.squareRoot() }
    @inline(__always) public static func erf(_ x: Double) -> Double { Glibc.erf(x) }
    @inline(__always) public static func log1p(_ x: Double) -> Double { Glibc.log1p(x) }
    @inline(__always) public static func expm1(_ x: Double) -> Double { Glibc.expm1(x) }
    @inline(__always) public static func pow(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }
    @inline(__always) public var truncatedInt: Int { Int(self) }

    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        blasGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                 b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, threads: Parallelism.threadCount) {
            cblas_dgemm(CblasRowMajor, cblasTranspose(transA), cblasTranspose(transB),
                        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
                        beta, c, blasint(ldc))
        }
    }
}
