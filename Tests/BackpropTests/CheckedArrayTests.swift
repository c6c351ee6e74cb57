import Testing
@testable import Backprop

/// Memory whose size a caller or a file decides: a failed allocation is an error, not the end of
/// the process.
@Suite struct CheckedArrayTests {
    @Test func startsAsZerosAndGrowsByAppending() throws {
        let zeros = try CheckedArray<Double>(zeros: 5)
        #expect(Array(zeros.buffer) == [0, 0, 0, 0, 0])
        let grown = try CheckedArray<Int32>()
        for i in 0..<1000 { try grown.append(Int32(i)) }
        #expect(grown.count == 1000 && Array(grown.buffer) == (0..<1000).map { Int32($0) })
    }

    @Test func aSizeNoMemoryHoldsIsOutOfMemory() {
        #expect {
            _ = try CheckedArray<Float>(zeros: Int.max / 8)
        } throws: { error in
            if case BackpropError.outOfMemory = error { return true }
            return false
        }
    }

    @Test func anAbsurdLayerIsOutOfMemoryAndTheNetworkUnchanged() throws {
        let net = try Network(inputWidth: 4, seed: 1)
        try net.addDense(units: 3, activation: .relu)
        #expect {
            try net.addDense(units: 1 << 40, activation: .relu)
        } throws: { error in
            if case BackpropError.outOfMemory = error { return true }
            return false
        }
        #expect(net.layers.count == 1 && net.parameterCount == 15)
    }
}
