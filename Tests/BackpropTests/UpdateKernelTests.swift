import BackpropKernels
import Testing
@testable import Backprop

/// The SGD-with-momentum update in vector code (BackpropKernels/update_loops.c) against the
/// same formula written as a plain Swift loop: the same bits, for counts that end inside and at
/// the edge of a vector, with and without weight decay, on the first step (keep 0) and later
/// ones; nothing past the count is touched. On a CPU with AVX-512, both of its vector forms.
struct UpdateKernelTests {
    @Test(arguments: [0, 1, 7, 8, 9, 15, 16, 17, 33, 1000], avx512Choices)
    func sgdMomentumGivesThePlainLoopsBits(count: Int, avx512: Bool) {
        var generator = Generator(seed: UInt64(count + 1))
        let padded = count + 20 // sentinels past the end
        let parameters0 = randomMatrix(rows: 1, ld: padded, &generator)
        let gradients = randomMatrix(rows: 1, ld: padded, &generator)
        let buffer0 = randomMatrix(rows: 1, ld: padded, &generator)
        for (lr, wd, keep, take) in [(Float(0.01), Float(0), Float(0), Float(1)), (0.1, 1e-4, 0.9, 1),
                                     (0.03, 0.5, 0.8, 0.7)] {
            var expectedParameters = parameters0, expectedBuffer = buffer0
            for i in 0..<count {
                expectedBuffer[i] = keep * expectedBuffer[i] + take * (gradients[i] + wd * expectedParameters[i])
                expectedParameters[i] -= lr * expectedBuffer[i]
            }
            var parameters = parameters0, buffer = buffer0
            withAVX512(avx512) { bpk_sgd_momentum(&parameters, gradients, &buffer, count, lr, wd, keep, take) }
            #expect(parameters.map(\.bitPattern) == expectedParameters.map(\.bitPattern), "lr \(lr), wd \(wd)")
            #expect(buffer.map(\.bitPattern) == expectedBuffer.map(\.bitPattern), "lr \(lr), wd \(wd)")
            if count > 0 { #expect(parameters[0] != parameters0[0]) } // it did update
        }
    }
}
