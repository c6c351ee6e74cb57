import BackpropKernels
import Testing
@testable import Backprop

/// The small-product loops (BackpropKernels/small_gemm.c), `Float.gemm` (which hands small
/// products to them and the rest to BLAS) and `plainGemm` (for when BLAS has no room), against
/// a triple loop in double precision: each
/// transpose, leading dimensions wider than the matrices, beta 0 (C not read), 1 and other.
@Suite struct SmallGemmTests {
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (4, 16, 2), (4, 2, 16), (16, 2, 4), (3, 5, 7), (16, 16, 16), (1, 64, 64),
        (64, 1, 64), (64, 64, 1), (17, 16, 15), (33, 40, 9),
    ]

    @Test(arguments: shapes, [(false, false), (false, true), (true, false), (true, true)])
    func matchesAPlainLoop(shape: (m: Int, n: Int, k: Int), transposes: (Bool, Bool)) {
        let (m, n, k) = shape
        let (transA, transB) = transposes
        let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 3, ldc = n + 3
        var generator = Generator(seed: UInt64(m * 10_000 + n * 100 + k))
        let a = randomMatrix(rows: transA ? k : m, ld: lda, &generator)
        let b = randomMatrix(rows: transB ? n : k, ld: ldb, &generator)
        let c0 = randomMatrix(rows: m, ld: ldc, &generator)
        for (alpha, beta) in [(Float(1), Float(0)), (1, 1), (0.5, -2)] {
            for path in ["small", "gemm", "plain"] {
                var c = c0
                if beta == 0 { for i in c.indices where i % ldc < n { c[i] = .nan } } // must not be read
                switch path {
                case "small":
                    bpk_sgemm_small(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, &c, ldc)
                case "gemm":
                    Float.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                               b: b, ldb: ldb, beta: beta, c: &c, ldc: ldc)
                default:
                    plainGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                              b: b, ldb: ldb, beta: beta, c: &c, ldc: ldc)
                }
                let worst = gemmError(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                                      b: b, ldb: ldb, beta: beta, c0: c0, c: c, ldc: ldc)
                #expect(worst < 1e-5 * Double(k + 2), "alpha \(alpha), beta \(beta), \(path)")
            }
        }
    }

    @Test func anEmptySharedDimensionOnlyScalesC() {
        var c: [Float] = [1, 2, 3, 4]
        let a: [Float] = [9], b: [Float] = [9]
        bpk_sgemm_small(false, false, 2, 2, 0, 1, a, 1, b, 2, 0.5, &c, 2)
        #expect(c == [0.5, 1, 1.5, 2])
        bpk_sgemm_small(false, false, 2, 2, 0, 1, a, 1, b, 2, 0, &c, 2)
        #expect(c == [0, 0, 0, 0])
    }
}
