import BackpropKernels
import Testing
@testable import Backprop

/// Builds float64 graphs with seeded random leaves, and reduces any node to a scalar with random
/// weights, so that a gradient check sees varied upstream gradients rather than all ones.
struct GraphBuilder {
    let graph: Graph
    var generator: Generator

    init(dtype: DType = .float64, seed: UInt64 = 1) {
        graph = Graph(dtype: dtype)
        generator = Generator(seed: seed)
    }

    /// An input of `dims` with values uniform in [low, high).
    mutating func input(_ dims: [Int], in range: ClosedRange<Double> = -2...2) throws -> NodeID {
        let node = try graph.input(try Shape(dims))
        try set(node, random(count: try Shape(dims).count, in: range))
        return node
    }

    mutating func constant(_ values: [Double], _ dims: [Int]) throws -> NodeID {
        let node = try graph.constant(try Shape(dims))
        try set(node, values)
        return node
    }

    func set(_ node: NodeID, _ values: [Double]) throws {
        try graph.setValue(node, from: values, count: values.count)
    }

    mutating func random(count: Int, in range: ClosedRange<Double> = -2...2) -> [Double] {
        (0..<count).map { _ in generator.uniform(range.lowerBound, range.upperBound) }
    }

    /// sum(node * w) for a random constant w of node's shape.
    mutating func weightedSum(_ node: NodeID) throws -> NodeID {
        let shape = try graph.shape(of: node)
        let weights = try constant(random(count: shape.count), shape.dims)
        return try graph.sum(try graph.mul(node, weights))
    }
}

func values(_ graph: Graph, _ node: NodeID) throws -> [Double] {
    var out = [Double](repeating: .nan, count: try graph.shape(of: node).count)
    try graph.value(node, into: &out, count: out.count)
    return out
}

func gradient(_ graph: Graph, _ node: NodeID) throws -> [Double] {
    var out = [Double](repeating: .nan, count: try graph.shape(of: node).count)
    try graph.gradient(node, into: &out, count: out.count)
    return out
}

/// Expects the analytic gradients of `root` to match central finite differences with
/// PyTorch's gradcheck tolerances.
func expectGradientsMatchFiniteDifferences(_ graph: Graph, _ root: NodeID,
                                           sourceLocation: SourceLocation = #_sourceLocation) throws {
    let result = try graph.checkGradients(of: root, eps: 1e-6, atol: 1e-5, rtol: 1e-3)
    #expect(result.checked > 0, sourceLocation: sourceLocation)
    if let worst = result.worst {
        Issue.record("node \(worst.node)[\(worst.index)]: analytic \(worst.analytic), numeric \(worst.numeric)",
                     sourceLocation: sourceLocation)
    }
}

func isClose(_ a: Double, _ b: Double, tolerance: Double = 1e-9) -> Bool {
    abs(a - b) <= tolerance * max(1, abs(a), abs(b))
}

/// Seeded float values in [-1, 1): a matrix of `rows` rows, `ld` apart.
func randomMatrix(rows: Int, ld: Int, _ generator: inout Generator) -> [Float] {
    (0..<rows * ld).map { _ in Float(generator.nextUnit() * 2 - 1) }
}

/// The largest difference between c, the result of a product C = alpha op(A) op(B) + beta C
/// that started from c0, and a triple loop in double precision; row-major, as cblas_sgemm
/// takes them. Also expects the padding between C's rows to be left as it was.
func gemmError(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int,
               b: [Float], ldb: Int, beta: Float, c0: [Float], c: [Float], ldc: Int) -> Double {
    var worst = 0.0
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                sum += Double(transA ? a[p * lda + i] : a[i * lda + p]) * Double(transB ? b[j * ldb + p] : b[p * ldb + j])
            }
            let expected = Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j]))
            worst = max(worst, abs(Double(c[i * ldc + j]) - expected))
        }
        for j in n..<ldc { #expect(c[i * ldc + j] == c0[i * ldc + j], "padding of row \(i)") }
    }
    return worst
}

/// Whether the kernels run in AVX-512, for each of the choices this CPU offers: AVX2 (false)
/// always, and AVX-512 (true) where it has it.
let avx512Choices = bpk_has_avx512() ? [false, true] : [false]

/// Runs `body` with the calling thread's kernels in AVX-512 or not, then allows it again.
func withAVX512(_ allowed: Bool, _ body: () -> Void) {
    bpk_allow_avx512(allowed)
    defer { bpk_allow_avx512(true) }
    body()
}
