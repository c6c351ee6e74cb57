import Backprop

// Custom ops from C: function pointers plus userdata, wrapped in a core CustomOp.

/// `bp_tensor` from backprop.h; a struct of pointers and size_t in the same order, so the
/// layouts agree.
struct CTensor {
    var data: UnsafeMutableRawPointer?
    var shape: UnsafePointer<UInt>?
    var rank: UInt
    var count: UInt
}

// Tensor arrays cross as raw pointers: a Swift struct is not a C type to the compiler, though
// its layout matches `bp_tensor`.
typealias CShapeCallback = @convention(c) (UnsafeMutableRawPointer?, UnsafeRawPointer?, UInt,
                                           UnsafeMutablePointer<UInt>?, UnsafeMutablePointer<UInt>?) -> Int32
typealias CForwardCallback = @convention(c) (UnsafeMutableRawPointer?, UnsafeRawPointer?, UInt,
                                             UnsafeRawPointer?) -> Int32
typealias CBackwardCallback = @convention(c) (UnsafeMutableRawPointer?, UnsafeRawPointer?, UInt,
                                              UnsafeRawPointer?, UnsafeRawPointer?, UnsafeRawPointer?) -> Int32

/// `bp_custom_op` from backprop.h, version 1 (the fields below; later versions append).
struct CCustomOp {
    var size: UInt
    var name: UnsafePointer<CChar>?
    var shape: CShapeCallback?
    var forward: CForwardCallback?
    var backward: CBackwardCallback?
    var userdata: UnsafeMutableRawPointer?
}

@_cdecl("bp_graph_custom")
public func bp_graph_custom(_ g: OpaquePointer?, _ op: UnsafeRawPointer?, _ inputs: UnsafePointer<Int32>?, _ inputCount: UInt,
                            _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    addNode(g, out) { graph in
        let description = try customOpDescription(op)
        guard inputCount <= 64 else { throw BoundaryError.invalidArgument("a custom op takes at most 64 inputs, got \(inputCount)") }
        let nodes = inputCount == 0 ? [] : try buffer(inputs, inputCount, "inputs").map { try node($0, graph) }
        return try graph.apply(makeCustomOp(description), nodes)
    }
}

/// Reads and checks the caller's struct: its size first, so a newer, larger struct is fine and an
/// older, smaller one is refused rather than read past its end.
private func customOpDescription(_ pointer: UnsafeRawPointer?) throws -> CCustomOp {
    guard let pointer else { throw BoundaryError.invalidArgument("op is NULL") }
    let declaredSize = pointer.load(as: UInt.self)
    guard declaredSize >= UInt(MemoryLayout<CCustomOp>.size) else {
        throw BoundaryError.invalidArgument("op->size is \(declaredSize): set it to sizeof(bp_custom_op)")
    }
    let description = pointer.load(as: CCustomOp.self)
    guard description.shape != nil, description.forward != nil, description.backward != nil else {
        throw BoundaryError.invalidArgument("op needs shape, forward and backward callbacks")
    }
    return description
}

private func makeCustomOp(_ c: CCustomOp) -> CustomOp {
    let name = c.name.map { String(cString: $0) } ?? "custom"
    let userdata = c.userdata
    let shapeCallback = c.shape!, forwardCallback = c.forward!, backwardCallback = c.backward!
    func fail(_ stage: String, _ code: Int32) -> BackpropError {
        .invalidArgument("custom op '\(name)': the \(stage) callback returned \(code)")
    }
    return CustomOp(
        name: name,
        shape: { shapes in
            var outputDims = [UInt](repeating: 0, count: Shape.maxRank)
            var outputRank: UInt = 0
            let code = withTensors(shapes.map { RawTensor(data: nil, shape: $0) }) { tensors in
                outputDims.withUnsafeMutableBufferPointer {
                    shapeCallback(userdata, UnsafeRawPointer(tensors.baseAddress), UInt(tensors.count), $0.baseAddress, &outputRank)
                }
            }
            guard code == 0 else { throw BackpropError.shape("custom op '\(name)': the shape callback rejected shapes \(shapes) (\(code))") }
            guard outputRank <= UInt(Shape.maxRank) else {
                throw BackpropError.shape("custom op '\(name)': the shape callback gave rank \(outputRank)")
            }
            return try Shape(outputDims.prefix(Int(outputRank)).map { Int(exactly: $0) ?? Int.max })
        },
        forward: { inputs, output in
            let code = withTensors(inputs + [output]) { tensors in
                let base = tensors.baseAddress!
                return forwardCallback(userdata, UnsafeRawPointer(base), UInt(inputs.count), UnsafeRawPointer(base + inputs.count))
            }
            guard code == 0 else { throw fail("forward", code) }
        },
        backward: { inputs, output, outputGradient, inputGradients in
            let code = withTensors(inputs + [output, outputGradient] + inputGradients) { tensors in
                let base = tensors.baseAddress!
                let n = inputs.count
                return backwardCallback(userdata, UnsafeRawPointer(base), UInt(n), UnsafeRawPointer(base + n),
                                        UnsafeRawPointer(base + n + 1), UnsafeRawPointer(base + n + 2))
            }
            guard code == 0 else { throw fail("backward", code) }
        })
}

/// Lays the tensors out as `bp_tensor`s whose shape arrays stay valid during `body`.
private func withTensors(_ tensors: [RawTensor], _ body: (UnsafeBufferPointer<CTensor>) -> Int32) -> Int32 {
    var dims: [UInt] = []
    for tensor in tensors { dims += tensor.shape.dims.map { UInt($0) } }
    return dims.withUnsafeBufferPointer { allDims in
        var offset = 0
        var cTensors: [CTensor] = []
        for tensor in tensors {
            let shapePointer = tensor.shape.rank == 0 ? nil : allDims.baseAddress.map { $0 + offset }
            cTensors.append(CTensor(data: tensor.data, shape: shapePointer, rank: UInt(tensor.shape.rank),
                                    count: UInt(tensor.shape.count)))
            offset += tensor.shape.rank
        }
        return cTensors.withUnsafeBufferPointer(body)
    }
}
