/// Matrix products too small for BLAS to pay off: below this many multiply-adds, the call and
/// its packing cost more than the arithmetic (a 4×16 by 16×2 product, say), so a plain loop wins.
let smallGemmLimit = 4096

/// C = alpha · op(A) · op(B) + beta · C for row-major matrices, as `Scalar.gemm`, in the i-p-j
/// order that walks C and (untransposed) B contiguously.
@inline(__always)
func smallGemm<T: Scalar>(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: T,
    a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
    beta: T, c: UnsafeMutablePointer<T>, ldc: Int
) {
    for i in 0..<m {
        let row = c + i * ldc
        if beta == 0 {
            row.update(repeating: 0, count: n)
        } else if beta != 1 {
            for j in 0..<n { row[j] *= beta }
        }
        for p in 0..<k {
            let scaled = alpha * (transA ? a[p * lda + i] : a[i * lda + p])
            if transB {
                for j in 0..<n { row[j] += scaled * b[j * ldb + p] }
            } else {
                let bRow = b + p * ldb
                for j in 0..<n { row[j] += scaled * bRow[j] }
            }
        }
    }
}
