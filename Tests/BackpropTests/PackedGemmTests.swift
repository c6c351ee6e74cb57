import BackpropKernels
import Testing
@testable import Backprop

/// The library's own product (BackpropKernels/packed_gemm.c) against a triple loop in double
/// precision: each transpose; shapes at and past the edges of its 6 x 16 and 8 x 16 blocks and
/// of its blocks of the shared dimension (k cut into blocks of about 256), rows (96) and columns (256 for a row-major A,
/// 2048 for a transposed one); leading dimensions wider than the matrices, some that have B read
/// in place (a row-major A always is); a B large enough to be prefetched; beta 0 (C not read), 1
/// and other. And what it reports: whether every value it stored is finite. On a CPU with
/// AVX-512, both of its kernels, which must store the same bits.
@Suite(.enabled(if: bpk_sgemm_packed_available(), "the CPU lacks AVX2 or FMA"))
struct PackedGemmTests {
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (6, 16, 8), (8, 16, 8), (1, 1, 1), (7, 17, 9), (12, 32, 300), (5, 33, 513), (100, 20, 30),
        (64, 70, 13), (3, 2050, 5), (13, 300, 20),
        // Leading dimensions of B (n + 3) an odd number of cache lines: B read in place.
        (9, 45, 270), (20, 77, 40),
        // 16 rows or fewer: B read in place at any distance but a multiple of 4 KiB (1024
        // floats, copied); the last block of rows 4 or fewer (summed as half a block).
        (10, 1021, 40), (12, 61, 70),
        // B of 1.1M floats: each next block is asked into cache as the one before is summed.
        (10, 1100, 1000),
        // Two blocks of rows, of columns and three of the shared dimension (262, 262 and 261):
        // blocks of 256 would have left a last one of 17.
        (100, 270, 785),
        // A row-major A read in place but for its last, partial panel of rows; in two blocks of
        // rows and of the shared dimension, or of columns.
        (101, 40, 269), (20, 300, 45),
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
            var results: [[Float]] = []
            for avx512 in avx512Choices {
                var c = c0
                if beta == 0 { for i in c.indices where i % ldc < n { c[i] = .nan } } // must not be read
                var finite = false
                withAVX512(avx512) {
                    bpk_poison_workspace() // nothing left by the previous case can stand in for a copy
                    #expect(bpk_sgemm_packed(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, &c, ldc, &finite))
                }
                #expect(finite)
                let worst = gemmError(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                                      b: b, ldb: ldb, beta: beta, c0: c0, c: c, ldc: ldc)
                #expect(worst < 1e-5 * Double(k + 2), "alpha \(alpha), beta \(beta), AVX-512 \(avx512)")
                results.append(c)
            }
            #expect(results.allSatisfy { $0.map(\.bitPattern) == results[0].map(\.bitPattern) },
                    "the kernels differ: alpha \(alpha), beta \(beta)")
        }
    }

    /// A NaN or infinity anywhere in what it stores is reported, in a full block and at an
    /// edge, and from any block of the shared dimension.
    @Test(arguments: [(0, 0, Float.nan), (13, 40, .infinity), (5, 7, -.infinity)])
    func reportsValuesThatAreNotFinite(row: Int, column: Int, bad: Float) {
        for avx512 in avx512Choices { withAVX512(avx512) { reportsNonFinite(row, column, bad) } }
    }

    private func reportsNonFinite(_ row: Int, _ column: Int, _ bad: Float) {
        let (m, n, k) = (14, 41, 600)
        var generator = Generator(seed: 7)
        var a = randomMatrix(rows: m, ld: k, &generator)
        let b = randomMatrix(rows: k, ld: n, &generator)
        var c = [Float](repeating: 0, count: m * n)
        var finite = false
        #expect(bpk_sgemm_packed(false, false, m, n, k, 1, a, k, b, n, 0, &c, n, &finite))
        #expect(finite)
        a[row * k + 450] = bad // in the second block of the shared dimension: row `row` of C
        #expect(bpk_sgemm_packed(false, false, m, n, k, 1, a, k, b, n, 0, &c, n, &finite))
        #expect(!finite)
        #expect(!c[row * n + column].isFinite)
        // Sums too large for a float are infinite too.
        a = [Float](repeating: 3e38, count: m * k)
        #expect(bpk_sgemm_packed(false, false, m, n, k, 1, a, k, [Float](repeating: 1, count: k * n), n, 0, &c, n, &finite))
        #expect(!finite)
    }

    /// With beta 0, an exact zero is stored as +0, as adding the sum to zeros would store it:
    /// the step that stores weight gradients whole leaves the same bits as the one that adds.
    @Test func betaZeroStoresZeroAsPositiveZero() {
        for avx512 in avx512Choices { withAVX512(avx512) { betaZeroStoresZeroAsPositive() } }
    }

    private func betaZeroStoresZeroAsPositive() {
        let (m, n, k) = (6, 16, 4)
        let a = [Float](repeating: -0.0, count: m * k), b = [Float](repeating: 1, count: k * n)
        var c = [Float](repeating: .nan, count: m * n), added = [Float](repeating: 0, count: m * n)
        #expect(bpk_sgemm_packed(false, false, m, n, k, 1, a, k, b, n, 0, &c, n, nil))
        #expect(bpk_sgemm_packed(false, false, m, n, k, 1, a, k, b, n, 1, &added, n, nil))
        #expect(c.allSatisfy { $0 == 0 && $0.sign == .plus })
        #expect(c.map(\.bitPattern) == added.map(\.bitPattern))
    }

    /// A dense layer's forward pass folded into the product's stores gives the bits of the
    /// passes it saves: the bias copied into every row of C, the product added (beta 1), then
    /// ReLU's op on C. Over one, two and three blocks of the shared dimension (the bias enters
    /// in the first, ReLU leaves from the last), edges of blocks, A read in place or copied, with
    /// sums of exactly zero, negative zero and NaN; the ReLU output's padding untouched.
    @Test(arguments: [(8, 16, 3), (13, 37, 785), (101, 40, 269), (20, 300, 45), (7, 270, 530)], avx512Choices)
    func layerStoresGiveTheBitsOfSeparatePasses(shape: (m: Int, n: Int, k: Int), avx512: Bool) {
        let (m, n, k) = shape
        let lda = k + 3, ldb = k + 1, ldc = n + 2, ldr = n + 5
        var generator = Generator(seed: UInt64(m + 3 * n + 7 * k))
        var a = randomMatrix(rows: m, ld: lda, &generator)
        let b = randomMatrix(rows: n, ld: ldb, &generator)
        var bias = randomMatrix(rows: 1, ld: n, &generator)
        // Row 0: zero sums, so C is the bias, which holds +0, -0 and NaN.
        for p in 0..<k { a[p] = 0 }
        bias[0] = 0
        bias[1 % n] = -0.0
        bias[2 % n] = .nan
        var expected = [Float](repeating: .nan, count: m * ldc), expectedReLU = [Float](repeating: 7, count: m * ldr)
        for i in 0..<m { for j in 0..<n { expected[i * ldc + j] = bias[j] } }
        withAVX512(avx512) {
            #expect(bpk_sgemm_packed(false, true, m, n, k, 1, a, lda, b, ldb, 1, &expected, ldc, nil))
        }
        for i in 0..<m { for j in 0..<n { expectedReLU[i * ldr + j] = ReLU().value(expected[i * ldc + j]) } }

        var c = [Float](repeating: .nan, count: m * ldc), relu = [Float](repeating: 7, count: m * ldr)
        var finite = true
        withAVX512(avx512) {
            bpk_poison_workspace()
            #expect(bpk_sgemm_packed_layer(false, true, m, n, k, 1, a, lda, b, ldb, 1, &c, ldc, bias, &relu, ldr, &finite))
        }
        #expect(!finite) // the NaN of the bias
        #expect(c.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(relu.map(\.bitPattern) == expectedReLU.map(\.bitPattern))
        #expect(relu[1 % n].sign == .plus && relu[2 % n] == 0)
    }

    /// Nothing to multiply: it declines and leaves C alone, for the caller's BLAS to handle.
    @Test func declinesEmptyProductsAndZeroAlpha() {
        var c: [Float] = [1, 2, 3, 4]
        let a: [Float] = [1, 2], b: [Float] = [3, 4]
        #expect(!bpk_sgemm_packed(false, false, 2, 2, 0, 1, a, 1, b, 2, 0, &c, 2, nil))
        #expect(!bpk_sgemm_packed(false, false, 2, 2, 1, 0, a, 1, b, 2, 0, &c, 2, nil))
        #expect(c == [1, 2, 3, 4])
    }
}
