/// The dimensions of a row-major tensor. Rank 0 is a scalar with one element.
public struct Shape: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The largest rank the engine accepts (BP_MAX_RANK).
    public static let maxRank = 8

    public let dims: [Int]
    /// The number of elements: the product of the dimensions.
    public let count: Int

    /// Checks every dimension is at least 1, the rank is at most `maxRank`, and the element count
    /// fits in memory's address range (so later byte counts cannot overflow).
    public init(_ dims: [Int]) throws {
        guard dims.count <= Shape.maxRank else {
            throw BackpropError.invalidArgument("rank \(dims.count) is larger than the maximum \(Shape.maxRank)")
        }
        var count = 1
        for d in dims {
            guard d >= 1 else {
                throw BackpropError.invalidArgument("shape \(Shape.format(dims)) has a dimension below 1")
            }
            guard let product = Shape.product(count, d) else {
                throw BackpropError.outOfMemory("shape \(Shape.format(dims)) has too many elements")
            }
            count = product
        }
        self.dims = dims
        self.count = count
    }

    /// The element count of a [rows, columns] shape, checked as `init` checks it, without
    /// building one (an array) on a hot path.
    public static func count(_ rows: Int, _ columns: Int) throws -> Int {
        guard rows >= 1, columns >= 1 else {
            throw BackpropError.invalidArgument("shape \(format([rows, columns])) has a dimension below 1")
        }
        guard let count = product(rows, columns) else {
            throw BackpropError.outOfMemory("shape \(format([rows, columns])) has too many elements")
        }
        return count
    }

    /// a * b, or nil when it overflows or leaves count * 8 bytes unrepresentable (so that
    /// allocations can be sized without overflow).
    private static func product(_ a: Int, _ b: Int) -> Int? {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return !overflow && product <= Int.max / 8 ? product : nil
    }

    public static let scalar = try! Shape([])

    public var rank: Int { dims.count }

    public subscript(_ axis: Int) -> Int { dims[axis] }

    public var description: String { Shape.format(dims) }

    static func format(_ dims: [Int]) -> String {
        "[" + dims.map(String.init).joined(separator: ", ") + "]"
    }

    /// NumPy's broadcasting rule: align from the right; each pair of dimensions must be equal or
    /// one of them 1. Returns nil when the shapes do not broadcast.
    public static func broadcast(_ a: Shape, _ b: Shape) -> Shape? {
        let rank = max(a.rank, b.rank)
        var dims = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.rank ? 1 : a.dims[i - (rank - a.rank)]
            let db = i < rank - b.rank ? 1 : b.dims[i - (rank - b.rank)]
            guard da == db || da == 1 || db == 1 else { return nil }
            dims[i] = max(da, db)
        }
        return try? Shape(dims)
    }
}
