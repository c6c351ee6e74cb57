import BackpropKernels
import Testing
@testable import Backprop

/// The weight gradient that skips the upstream gradient's zeros (BackpropKernels/sparse_gemm.c),
/// in AVX-512 and in AVX2, against the packed product it stands in for (whose two kernels agree:
/// PackedGemmTests): the same bits, for an A half of whose values are zero (+0 and -0), and with
/// a NaN or an infinity in A (not zero: summed, and reported). Shapes at and past the edges of
/// its blocks: 64 rows of B, 64 columns of C (8 or 16 to a register), 16 units listed at a time.
/// And where it declines, leaving C as it was.
@Suite(.enabled(if: bpk_sgemm_packed_available(), "the CPU lacks AVX2 or FMA"))
struct SparseGemmTests {
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (256, 784, 256), (1, 3, 40), (3, 5, 17), (16, 64, 64), (17, 65, 65), (33, 100, 200), (7, 80, 383),
        (128, 130, 64),
    ]

    @Test(arguments: shapes)
    func givesThePackedProductsBits(shape: (m: Int, n: Int, k: Int)) {
        let (m, n, k) = shape
        let lda = m + 3, ldb = n + 5, ldc = n + 1
        var generator = Generator(seed: UInt64(m * 10_000 + n * 100 + k))
        let upstream = sparseUpstream(rows: k, ld: lda, &generator)
        let b = randomMatrix(rows: k, ld: ldb, &generator)
        for bad in [nil, Float.nan, .infinity] {
            var a = upstream
            if let bad { a[(k / 2) * lda + m / 2] = bad }
            var packed = [Float](repeating: 7, count: m * ldc)
            var packedFinite = false
            #expect(bpk_sgemm_packed(true, false, m, n, k, 1, a, lda, b, ldb, 0, &packed, ldc, &packedFinite))
            #expect(packedFinite == (bad == nil))
            for avx512 in avx512Choices {
                var sparse = [Float](repeating: 7, count: m * ldc)
                var sparseFinite = !packedFinite
                withAVX512(avx512) {
                    #expect(bpk_sgemm_sparse_at(m, n, k, a, lda, b, ldb, &sparse, ldc, &sparseFinite))
                }
                #expect(sparseFinite == packedFinite)
                #expect(sparse.map(\.bitPattern) == packed.map(\.bitPattern), "bad \(String(describing: bad)), AVX-512 \(avx512)")
            }
        }
    }

    /// Where the packed product is faster or sums otherwise: more than 60% of A not zero, k
    /// past one block of the packed product (whose chains then restart), C of more than 2^18
    /// values.
    @Test func declinesWhereThePackedProductServesBetter() {
        var generator = Generator(seed: 11)
        for (m, n, k, dense) in [(20, 30, 40, true), (20, 30, 400, false), (600, 500, 8, false)] {
            let a = dense ? randomMatrix(rows: k, ld: m, &generator) : sparseUpstream(rows: k, ld: m, &generator)
            let b = randomMatrix(rows: k, ld: n, &generator)
            var c = [Float](repeating: 7, count: m * n)
            var finite = false
            #expect(!bpk_sgemm_sparse_at(m, n, k, a, m, b, n, &c, n, &finite), "\(m) x \(n) x \(k)")
            #expect(c.allSatisfy { $0 == 7 })
        }
    }

    /// A ReLU layer's upstream gradient: about half of it zero, some of those -0.
    private func sparseUpstream(rows: Int, ld: Int, _ generator: inout Generator) -> [Float] {
        randomMatrix(rows: rows, ld: ld, &generator).map { value in
            let draw = generator.nextUnit()
            return draw < 0.4 ? 0 : draw < 0.5 ? -0.0 : value
        }
    }
}
