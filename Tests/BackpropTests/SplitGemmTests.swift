import BackpropKernels
import Dispatch
import Synchronization
import Testing
@testable import Backprop

/// A product cut across threads (BackpropKernels/split_gemm.c, thread_pool.c): by columns, and
/// by rows when C has too few columns; with the library's kernel the bits are those of one
/// thread, with BLAS the values those of a plain loop; the finiteness report covers every
/// part; callers that find the workers busy still get their product.
struct SplitGemmTests {
    /// Past the size below which a product is not split (2^20 multiply-adds); n = 10 and n = 5
    /// are cut by rows.
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (64, 256, 100), (97, 515, 40), (300, 10, 400), (1000, 5, 256), (130, 2050, 9),
    ]

    @Test(.enabled(if: bpk_sgemm_packed_available(), "the CPU lacks AVX2 or FMA"),
          arguments: shapes, [(false, false), (false, true), (true, false), (true, true)])
    func ownKernelGivesTheBitsOfOneThread(shape: (m: Int, n: Int, k: Int), transposes: (Bool, Bool)) {
        let (m, n, k) = shape
        let (transA, transB) = transposes
        let lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 2, ldc = n + 3
        var generator = Generator(seed: UInt64(m * 7 + n * 5 + k))
        let a = randomMatrix(rows: transA ? k : m, ld: lda, &generator)
        let b = randomMatrix(rows: transB ? n : k, ld: ldb, &generator)
        let c0 = randomMatrix(rows: m, ld: ldc, &generator)
        var alone = c0
        #expect(bpk_sgemm_packed(transA, transB, m, n, k, 0.5, a, lda, b, ldb, 2, &alone, ldc, nil))
        // 100: more parts than BPK_MAX_THREADS, past which the calling thread takes the rest.
        for threads: Int32 in [2, 3, 100] {
            var split = c0, finite = false
            bpk_gemm_split(BPK_OWN_FLOAT, threads, transA, transB, m, n, k, 0.5, a, lda, b, ldb, 2, &split, ldc, &finite)
            #expect(finite)
            #expect(split.map(\.bitPattern) == alone.map(\.bitPattern), "\(threads) threads")
        }
    }

    /// With a dense layer's forward stores (bias and ReLU), the parts give the bits of one
    /// thread too, the bias and the ReLU output cut with C.
    @Test(.enabled(if: bpk_sgemm_packed_available(), "the CPU lacks AVX2 or FMA"), arguments: shapes)
    func layerStoresGiveTheBitsOfOneThread(shape: (m: Int, n: Int, k: Int)) {
        let (m, n, k) = shape
        let lda = k, ldb = k + 2, ldc = n + 3, ldr = n + 1
        var generator = Generator(seed: UInt64(m * 3 + n * 11 + k))
        let a = randomMatrix(rows: m, ld: lda, &generator)
        let b = randomMatrix(rows: n, ld: ldb, &generator)
        let bias = randomMatrix(rows: 1, ld: n, &generator)
        var alone = [Float](repeating: .nan, count: m * ldc), aloneReLU = [Float](repeating: 0, count: m * ldr)
        #expect(bpk_sgemm_packed_layer(false, true, m, n, k, 1, a, lda, b, ldb, 1, &alone, ldc, bias, &aloneReLU, ldr, nil))
        #expect(aloneReLU.contains { $0 > 0 })
        for threads: Int32 in [2, 3] {
            var split = [Float](repeating: .nan, count: m * ldc), splitReLU = [Float](repeating: 0, count: m * ldr)
            var finite = false
            bpk_gemm_split_layer(threads, false, true, m, n, k, 1, a, lda, b, ldb, 1, &split, ldc, bias, &splitReLU, ldr,
                                 &finite)
            #expect(finite)
            #expect(split.map(\.bitPattern) == alone.map(\.bitPattern), "\(threads) threads")
            #expect(splitReLU.map(\.bitPattern) == aloneReLU.map(\.bitPattern), "\(threads) threads")
        }
    }

    @Test(arguments: shapes, [(false, true), (true, false)])
    func blasPartsMatchAPlainLoop(shape: (m: Int, n: Int, k: Int), transposes: (Bool, Bool)) {
        let (m, n, k) = shape
        let (transA, transB) = transposes
        let lda = transA ? m : k, ldb = transB ? k : n, ldc = n + 1
        var generator = Generator(seed: UInt64(m + n + k))
        let a = randomMatrix(rows: transA ? k : m, ld: lda, &generator)
        let b = randomMatrix(rows: transB ? n : k, ld: ldb, &generator)
        let c0 = randomMatrix(rows: m, ld: ldc, &generator)
        var c = c0
        bpk_gemm_split(BPK_BLAS_FLOAT, 2, transA, transB, m, n, k, 1, a, lda, b, ldb, 1, &c, ldc, nil)
        let worst = gemmError(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda,
                              b: b, ldb: ldb, beta: 1, c0: c0, c: c, ldc: ldc)
        #expect(worst < 1e-5 * Double(k + 2))

        let a64 = a.map(Double.init), b64 = b.map(Double.init), c064 = c0.map(Double.init)
        var c64 = c064
        bpk_gemm_split(BPK_BLAS_DOUBLE, 3, transA, transB, m, n, k, 1, a64, lda, b64, ldb, 1, &c64, ldc, nil)
        var worst64 = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var sum = c064[i * ldc + j]
                for p in 0..<k { sum += a64[transA ? p * lda + i : i * lda + p] * b64[transB ? j * ldb + p : p * ldb + j] }
                worst64 = max(worst64, abs(sum - c64[i * ldc + j]))
            }
            #expect(c64[i * ldc + n] == c064[i * ldc + n], "padding of row \(i)")
        }
        #expect(worst64 < 1e-12 * Double(k + 2))
    }

    /// A value that is not finite in the last part, which a worker computes, is reported.
    @Test(.enabled(if: bpk_sgemm_packed_available(), "the CPU lacks AVX2 or FMA"),
          arguments: [(false, 500), (true, 9)])
    func reportsValuesThatAreNotFiniteInAnyPart(byRows: Bool, n: Int) {
        let (m, k) = (byRows ? 600 : 40, 256) // past the size below which it is not split
        var b = [Float](repeating: 0.25, count: k * n)
        let a = [Float](repeating: 1, count: m * k)
        var c = [Float](repeating: 0, count: m * n), finite = false
        bpk_gemm_split(BPK_OWN_FLOAT, 2, false, false, m, n, k, 1, a, k, b, n, 0, &c, n, &finite)
        #expect(finite)
        #expect(c.allSatisfy { $0 == Float(k) / 4 })
        var a2 = a
        if byRows { a2[(m - 1) * k] = .nan } else { b[n - 1] = .infinity }
        bpk_gemm_split(BPK_OWN_FLOAT, 2, false, false, m, n, k, 1, a2, k, b, n, 0, &c, n, &finite)
        #expect(!finite)
        #expect(!c[m * n - 1].isFinite)
    }

    /// Every part runs exactly once, also with more parts than workers have started before and
    /// while other callers hold the workers (they then run their parts alone).
    @Test func everyPartRunsOnceFromManyCallers() {
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { caller in
            for round in 0..<200 {
                let parts = 1 + (caller + round) % 5
                var counts = [Int32](repeating: 0, count: parts)
                counts.withUnsafeMutableBufferPointer { buffer in
                    bpk_parallel_for(Int32(parts), { context, part in
                        let counts = context!.assumingMemoryBound(to: Int32.self)
                        counts[Int(part)] += 1 // each part is a different element: no race
                    }, buffer.baseAddress)
                }
                if counts != [Int32](repeating: 1, count: parts) { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }
}
