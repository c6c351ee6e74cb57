/// Ops that move elements without arithmetic: reshape, permute, concat, slice, gather. Each
/// backward sends every output gradient back to the element it came from.

/// The same elements under a new shape with the same element count.
public struct Reshape: Op {
    public var dims: [Int]
    public init(_ dims: [Int]) { self.dims = dims }
    public var name: String { "reshape" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        let shape = try Shape(dims)
        guard shape.count == inputs[0].count else {
            throw BackpropError.shape("reshape: cannot reshape \(inputs[0]) (\(inputs[0].count) elements) to \(shape) (\(shape.count))")
        }
        return shape
    }

    public func forward<T: Scalar>(_ f: Frame<T>) { f.output.update(from: f.input(0), count: f.count) }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gx = f.inputGradient(0) else { return }
        let g = f.outputGradient
        for i in 0..<f.count { gx[i] += g[i] }
    }
}

/// Axes reordered: output axis i is input axis permutation[i] (transpose is the 2-axis case).
public struct Permute: Op {
    public var permutation: [Int]
    public init(_ permutation: [Int]) { self.permutation = permutation }
    public var name: String { "permute" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        let input = inputs[0]
        guard permutation.count == input.rank else {
            throw BackpropError.shape("permute: \(permutation.count) axes given for \(input)")
        }
        guard Set(permutation) == Set(0..<input.rank) else {
            throw BackpropError.invalidArgument("permute: \(permutation) is not a permutation of 0..<\(input.rank)")
        }
        return try Shape(permutation.map { input.dims[$0] })
    }

    public func forward<T: Scalar>(_ f: Frame<T>) {
        let x = f.input(0), out = f.output
        forEachPermuted(f.inputShape(0), f.outputShape) { i, source in out[i] = x[source] }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gx = f.inputGradient(0) else { return }
        let g = f.outputGradient
        forEachPermuted(f.inputShape(0), f.outputShape) { i, source in gx[source] += g[i] }
    }

    /// Walks the output in order with the offset of the same element in the input.
    private func forEachPermuted(_ input: Shape, _ out: Shape, _ body: (Int, Int) -> Void) {
        var inputStrides = [Int](repeating: 1, count: input.rank)
        for axis in stride(from: input.rank - 2, through: 0, by: -1) {
            inputStrides[axis] = inputStrides[axis + 1] * input.dims[axis + 1]
        }
        let strides = permutation.map { inputStrides[$0] }
        var index = [Int](repeating: 0, count: out.rank)
        var offset = 0
        for i in 0..<out.count {
            body(i, offset)
            var axis = out.rank - 1
            while axis >= 0 {
                index[axis] += 1
                offset += strides[axis]
                if index[axis] < out.dims[axis] { break }
                offset -= strides[axis] * out.dims[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// A shape seen as [outer, axis, inner] around one axis, for ops that work along it.
struct AxisView {
    let outer: Int, length: Int, inner: Int

    init(_ shape: Shape, axis: Int) {
        outer = shape.dims[..<axis].reduce(1, *)
        length = shape.dims[axis]
        inner = shape.dims[(axis + 1)...].reduce(1, *)
    }
}

/// Resolves a possibly negative axis against a rank, or throws naming the op.
func normalizedAxis(_ axis: Int, rank: Int, op: String) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < rank else {
        throw BackpropError.shape("\(op): axis \(axis) is out of range for rank \(rank)")
    }
    return a
}

/// Inputs joined along one axis; all other axes must agree.
public struct Concat: Op {
    public var axis: Int
    public init(axis: Int) { self.axis = axis }
    public var name: String { "concat" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard let first = inputs.first else { throw BackpropError.shape("concat: needs at least one input") }
        let a = try normalizedAxis(axis, rank: first.rank, op: name)
        var dims = first.dims
        dims[a] = 0
        for shape in inputs {
            var rest = shape.dims
            guard shape.rank == first.rank else {
                throw BackpropError.shape("concat: shapes \(first) and \(shape) differ in rank")
            }
            rest[a] = 0
            guard rest == first.dims.enumerated().map({ $0.offset == a ? 0 : $0.element }) else {
                throw BackpropError.shape("concat: shapes \(first) and \(shape) differ outside axis \(axis)")
            }
            dims[a] += shape.dims[a]
        }
        return try Shape(dims)
    }

    public func forward<T: Scalar>(_ f: Frame<T>) throws {
        try forEachBlock(f) { input, inputOffset, outputOffset, count in
            (f.output + outputOffset).update(from: f.input(input) + inputOffset, count: count)
        }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        let g = f.outputGradient
        try? forEachBlock(f) { input, inputOffset, outputOffset, count in
            guard let gx = f.inputGradient(input) else { return }
            for j in 0..<count { gx[inputOffset + j] += g[outputOffset + j] }
        }
    }

    /// Each input contributes, per outer index, one contiguous block of axis·inner elements.
    private func forEachBlock<T: Scalar>(_ f: Frame<T>, _ body: (Int, Int, Int, Int) -> Void) throws {
        let a = try normalizedAxis(axis, rank: f.outputShape.rank, op: name)
        let out = AxisView(f.outputShape, axis: a)
        var start = 0
        for input in f.binding.inputShapes.indices {
            let view = AxisView(f.inputShape(input), axis: a)
            let block = view.length * view.inner
            for o in 0..<out.outer {
                body(input, o * block, (o * out.length + start) * out.inner, block)
            }
            start += view.length
        }
    }
}

/// Elements start..<end along one axis.
public struct Slice: Op {
    public var axis: Int, start: Int, end: Int
    public init(axis: Int, start: Int, end: Int) {
        self.axis = axis
        self.start = start
        self.end = end
    }
    public var name: String { "slice" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        let a = try normalizedAxis(axis, rank: inputs[0].rank, op: name)
        guard start >= 0, end > start else {
            throw BackpropError.invalidArgument("slice: range \(start)..<\(end) is empty")
        }
        guard end <= inputs[0].dims[a] else {
            throw BackpropError.shape("slice: range \(start)..<\(end) is outside axis \(axis) of \(inputs[0])")
        }
        var dims = inputs[0].dims
        dims[a] = end - start
        return try Shape(dims)
    }

    public func forward<T: Scalar>(_ f: Frame<T>) throws {
        let (view, block) = try layout(f)
        for o in 0..<view.outer {
            (f.output + o * block).update(from: f.input(0) + (o * view.length + start) * view.inner, count: block)
        }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gx = f.inputGradient(0), let (view, block) = try? layout(f) else { return }
        let g = f.outputGradient
        for o in 0..<view.outer {
            let source = (o * view.length + start) * view.inner
            for j in 0..<block { gx[source + j] += g[o * block + j] }
        }
    }

    private func layout<T: Scalar>(_ f: Frame<T>) throws -> (AxisView, Int) {
        let view = AxisView(f.inputShape(0), axis: try normalizedAxis(axis, rank: f.inputShape(0).rank, op: name))
        return (view, (end - start) * view.inner)
    }
}

/// Rows of a table picked by index (an embedding lookup): table [rows, ...], indices of any
/// shape holding whole numbers in [0, rows) give [indices..., ...]. Repeated indices add their
/// gradients into the same row; the indices get none.
public struct Gather: Op {
    public var name: String { "gather" }

    public func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard inputs[0].rank >= 1 else {
            throw BackpropError.shape("gather: the table must have rank 1 or more, got \(inputs[0])")
        }
        return try Shape(inputs[1].dims + inputs[0].dims.dropFirst())
    }

    public func forward<T: Scalar>(_ f: Frame<T>) throws {
        let table = f.input(0), indices = f.input(1), rows = f.inputShape(0)[0]
        let rowSize = f.inputShape(0).count / rows, count = f.inputShape(1).count
        for k in 0..<count {
            let index = indices[k]
            guard index >= 0, index < T(rows), index == index.rounded(.towardZero) else {
                throw BackpropError.invalidArgument("gather: index \(index) at position \(k) is not a row in [0, \(rows))")
            }
        }
        for k in 0..<count {
            (f.output + k * rowSize).update(from: table + indices[k].truncatedInt * rowSize, count: rowSize)
        }
    }

    public func backward<T: Scalar>(_ f: Frame<T>) {
        guard let gt = f.inputGradient(0) else { return }
        let indices = f.input(1), g = f.outputGradient
        let rowSize = f.inputShape(0).count / f.inputShape(0)[0]
        for k in 0..<f.inputShape(1).count {
            let row = gt + indices[k].truncatedInt * rowSize, source = g + k * rowSize
            for j in 0..<rowSize { row[j] += source[j] }
        }
    }
}

extension Graph {
    public func reshape(_ x: NodeID, _ dims: [Int]) throws -> NodeID { try apply(Reshape(dims), [x]) }
    public func permute(_ x: NodeID, _ permutation: [Int]) throws -> NodeID { try apply(Permute(permutation), [x]) }
    /// Swaps the last two axes.
    public func transpose(_ x: NodeID) throws -> NodeID {
        let rank = try shape(of: x).rank
        guard rank >= 2 else { throw BackpropError.shape("transpose: needs rank 2 or more, got rank \(rank)") }
        var permutation = Array(0..<rank)
        permutation.swapAt(rank - 1, rank - 2)
        return try permute(x, permutation)
    }
    public func concat(_ xs: [NodeID], axis: Int) throws -> NodeID { try apply(Concat(axis: axis), xs) }
    public func slice(_ x: NodeID, axis: Int, start: Int, end: Int) throws -> NodeID {
        try apply(Slice(axis: axis, start: start, end: end), [x])
    }
    public func gather(_ table: NodeID, _ indices: NodeID) throws -> NodeID { try apply(Gather(), [table, indices]) }
}
