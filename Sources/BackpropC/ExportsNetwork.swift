import Backprop

// The bp_net_* functions: argument checks, then one call into the core.

@_cdecl("bp_net_create")
public func bp_net_create(_ inputWidth: UInt, _ seed: UInt64, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded(#function) {
        let out = try required(out, "out")
        let network = try Network(inputWidth: size(inputWidth, "input_width"), seed: seed)
        let handle = Handle(network: network)
        out.pointee = OpaquePointer(Registry.register(handle))
    }
}

@_cdecl("bp_net_free")
public func bp_net_free(_ net: OpaquePointer?) -> Int32 {
    freeHandle(net, "bp_net", #function, \.network)
}

@_cdecl("bp_net_add_dense")
public func bp_net_add_dense(_ net: OpaquePointer?, _ units: UInt, _ activation: Int32) -> Int32 {
    withNetwork(net) { network in
        let activation: Activation = try enumValue(activation, "activation")
        try network.addDense(units: size(units, "units"), activation: activation)
    }
}

@_cdecl("bp_net_set_loss")
public func bp_net_set_loss(_ net: OpaquePointer?, _ loss: Int32) -> Int32 {
    withNetwork(net) { try $0.setLoss(try enumValue(loss, "loss")) }
}

@_cdecl("bp_net_input_width")
public func bp_net_input_width(_ net: OpaquePointer?, _ out: UnsafeMutablePointer<UInt>?) -> Int32 {
    withNetwork(net) { try required(out, "out").pointee = UInt($0.inputWidth) }
}

@_cdecl("bp_net_output_width")
public func bp_net_output_width(_ net: OpaquePointer?, _ out: UnsafeMutablePointer<UInt>?) -> Int32 {
    withNetwork(net) { try required(out, "out").pointee = UInt($0.outputWidth) }
}

@_cdecl("bp_net_layer_count")
public func bp_net_layer_count(_ net: OpaquePointer?, _ out: UnsafeMutablePointer<UInt>?) -> Int32 {
    withNetwork(net) { try required(out, "out").pointee = UInt($0.layers.count) }
}

@_cdecl("bp_net_parameter_count")
public func bp_net_parameter_count(_ net: OpaquePointer?, _ out: UnsafeMutablePointer<UInt>?) -> Int32 {
    withNetwork(net) { try required(out, "out").pointee = UInt($0.parameterCount) }
}

@_cdecl("bp_net_forward")
public func bp_net_forward(_ net: OpaquePointer?, _ batch: UInt, _ inputs: UnsafePointer<Float>?, _ inputCount: UInt,
                           _ outputs: UnsafeMutablePointer<Float>?, _ outputCount: UInt) -> Int32 {
    withNetwork(net) {
        try $0.forward(buffer(inputs, inputCount, "inputs"), batch: size(batch, "batch"),
                       into: mutableBuffer(outputs, outputCount, "outputs"))
    }
}

@_cdecl("bp_net_predict")
public func bp_net_predict(_ net: OpaquePointer?, _ batch: UInt, _ inputs: UnsafePointer<Float>?, _ inputCount: UInt,
                           _ outputs: UnsafeMutablePointer<Float>?, _ outputCount: UInt) -> Int32 {
    withNetwork(net) {
        try $0.predict(buffer(inputs, inputCount, "inputs"), batch: size(batch, "batch"),
                       into: mutableBuffer(outputs, outputCount, "outputs"))
    }
}

@_cdecl("bp_net_backward")
public func bp_net_backward(_ net: OpaquePointer?, _ targets: UnsafePointer<Float>?, _ targetCount: UInt,
                            _ loss: UnsafeMutablePointer<Float>?) -> Int32 {
    withNetwork(net) {
        let value = try $0.backward(targets: buffer(targets, targetCount, "targets"))
        loss?.pointee = Float(value)
    }
}

@_cdecl("bp_net_backward_labels")
public func bp_net_backward_labels(_ net: OpaquePointer?, _ labels: UnsafePointer<Int32>?, _ labelCount: UInt,
                                   _ loss: UnsafeMutablePointer<Float>?) -> Int32 {
    withNetwork(net) {
        let value = try $0.backward(labels: buffer(labels, labelCount, "labels"))
        loss?.pointee = Float(value)
    }
}

@_cdecl("bp_net_update")
public func bp_net_update(_ net: OpaquePointer?, _ learningRate: Float) -> Int32 {
    withNetwork(net) { try $0.update(learningRate: Double(learningRate)) }
}

@_cdecl("bp_net_zero_grad")
public func bp_net_zero_grad(_ net: OpaquePointer?) -> Int32 {
    withNetwork(net) { $0.zeroGradients() }
}

@_cdecl("bp_net_train_step")
public func bp_net_train_step(_ net: OpaquePointer?, _ batch: UInt, _ inputs: UnsafePointer<Float>?, _ inputCount: UInt,
                              _ targets: UnsafePointer<Float>?, _ targetCount: UInt, _ learningRate: Float,
                              _ loss: UnsafeMutablePointer<Float>?) -> Int32 {
    withNetwork(net) {
        let value = try $0.trainStep(buffer(inputs, inputCount, "inputs"), batch: size(batch, "batch"),
                                     targets: buffer(targets, targetCount, "targets"), learningRate: Double(learningRate))
        loss?.pointee = Float(value)
    }
}

@_cdecl("bp_net_train_step_labels")
public func bp_net_train_step_labels(_ net: OpaquePointer?, _ batch: UInt, _ inputs: UnsafePointer<Float>?, _ inputCount: UInt,
                                     _ labels: UnsafePointer<Int32>?, _ labelCount: UInt, _ learningRate: Float,
                                     _ loss: UnsafeMutablePointer<Float>?) -> Int32 {
    withNetwork(net) {
        let value = try $0.trainStep(buffer(inputs, inputCount, "inputs"), batch: size(batch, "batch"),
                                     labels: buffer(labels, labelCount, "labels"), learningRate: Double(learningRate))
        loss?.pointee = Float(value)
    }
}

@_cdecl("bp_net_graph")
public func bp_net_graph(_ net: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    withNetworkHandle(net) { handle in
        let out = try required(out, "out")
        guard let graphHandle = handle.graphHandle else {
            throw BoundaryError(status: .internal, message: "the network has no graph handle")
        }
        out.pointee = OpaquePointer(Registry.register(graphHandle))
    }
}

@_cdecl("bp_net_layer_nodes")
public func bp_net_layer_nodes(_ net: OpaquePointer?, _ layer: UInt, _ weight: UnsafeMutablePointer<Int32>?,
                               _ bias: UnsafeMutablePointer<Int32>?) -> Int32 {
    withNetwork(net) { network in
        let chosen = try layerAt(network, layer)
        weight?.pointee = chosen.weight.map { Int32($0) } ?? -1
        bias?.pointee = chosen.bias.map { Int32($0) } ?? -1
    }
}

@_cdecl("bp_net_nodes")
public func bp_net_nodes(_ net: OpaquePointer?, _ input: UnsafeMutablePointer<Int32>?, _ output: UnsafeMutablePointer<Int32>?,
                         _ loss: UnsafeMutablePointer<Int32>?) -> Int32 {
    withNetwork(net) { network in
        let nodes = network.nodes
        input?.pointee = Int32(nodes.input)
        output?.pointee = Int32(nodes.output)
        loss?.pointee = nodes.loss.map { Int32($0) } ?? -1
    }
}

@_cdecl("bp_net_create_dtype")
public func bp_net_create_dtype(_ dtype: Int32, _ inputWidth: UInt, _ seed: UInt64,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded(#function) {
        let out = try required(out, "out")
        let dtype: DType = try enumValue(dtype, "dtype")
        let network = try Network(inputWidth: size(inputWidth, "input_width"), seed: seed, dtype: dtype)
        out.pointee = OpaquePointer(Registry.register(Handle(network: network)))
    }
}

@_cdecl("bp_net_add_dense_init")
public func bp_net_add_dense_init(_ net: OpaquePointer?, _ units: UInt, _ activation: Int32, _ initializer: Int32,
                                  _ value: Double) -> Int32 {
    withNetwork(net) { network in
        let activation: Activation = try enumValue(activation, "activation")
        let kind: InitializerKind = try enumValue(initializer, "initializer")
        guard value.isFinite else { throw BoundaryError.invalidArgument("the constant must be finite, got \(value)") }
        try network.addDense(units: size(units, "units"), activation: activation, initializer: kind.initializer(value))
    }
}

@_cdecl("bp_net_add_dropout")
public func bp_net_add_dropout(_ net: OpaquePointer?, _ probability: Double) -> Int32 {
    withNetwork(net) { try $0.addDropout(probability: probability) }
}

@_cdecl("bp_net_add_layer_norm")
public func bp_net_add_layer_norm(_ net: OpaquePointer?, _ eps: Double) -> Int32 {
    withNetwork(net) { try $0.addLayerNorm(eps: eps) }
}

@_cdecl("bp_net_layer_parameters")
public func bp_net_layer_parameters(_ net: OpaquePointer?, _ layer: UInt, _ weight: UnsafeMutablePointer<Float>?, _ weightCount: UInt,
                                    _ bias: UnsafeMutablePointer<Float>?, _ biasCount: UInt) -> Int32 {
    withNetwork(net) { network in
        let (w, b) = try parameterNodes(network, layer)
        // Check both buffers before writing either.
        let weightOut = try required(weight, "weight"), biasOut = try required(bias, "bias")
        try checkCount(network.graph, w, weightCount, "weight")
        try checkCount(network.graph, b, biasCount, "bias")
        try network.graph.value(w, into: weightOut, count: Int(weightCount))
        try network.graph.value(b, into: biasOut, count: Int(biasCount))
    }
}

@_cdecl("bp_net_set_layer_parameters")
public func bp_net_set_layer_parameters(_ net: OpaquePointer?, _ layer: UInt, _ weight: UnsafePointer<Float>?, _ weightCount: UInt,
                                        _ bias: UnsafePointer<Float>?, _ biasCount: UInt) -> Int32 {
    withNetwork(net) { network in
        let (w, b) = try parameterNodes(network, layer)
        let weights = try buffer(weight, weightCount, "weight"), biases = try buffer(bias, biasCount, "bias")
        try checkCount(network.graph, w, weightCount, "weight")
        try checkCount(network.graph, b, biasCount, "bias")
        for (name, values) in [("weight", weights), ("bias", biases)] {
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw BackpropError.nonFinite("\(name) element \(bad) is \(values[bad])")
            }
        }
        try network.graph.setValue(w, from: weights.baseAddress!, count: weights.count)
        try network.graph.setValue(b, from: biases.baseAddress!, count: biases.count)
    }
}

@_cdecl("bp_net_parameters")
public func bp_net_parameters(_ net: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ count: UInt) -> Int32 {
    withNetwork(net) { try $0.graph.copyParameters(into: mutableBuffer(out, count, "out")) }
}

@_cdecl("bp_net_set_parameters")
public func bp_net_set_parameters(_ net: OpaquePointer?, _ values: UnsafePointer<Float>?, _ count: UInt) -> Int32 {
    withNetwork(net) { try $0.graph.setParameters(from: buffer(values, count, "values")) }
}

@_cdecl("bp_net_gradients")
public func bp_net_gradients(_ net: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ count: UInt) -> Int32 {
    withNetwork(net) { try $0.graph.copyParameterGradients(into: mutableBuffer(out, count, "out")) }
}

// MARK: Helpers

/// The initializers, as `bp_initializer`.
enum InitializerKind: Int32, CaseIterable {
    case linearDefault = 0, xavierUniform, xavierNormal, kaimingUniform, kaimingNormal, zeros, constant

    func initializer(_ value: Double) -> Initializer {
        switch self {
        case .linearDefault: .linearDefault
        case .xavierUniform: .xavierUniform
        case .xavierNormal: .xavierNormal
        case .kaimingUniform: .kaimingUniform
        case .kaimingNormal: .kaimingNormal
        case .zeros: .zeros
        case .constant: .constant(value)
        }
    }
}

private func layerAt(_ network: Network, _ layer: UInt) throws -> Network.Layer {
    guard layer < UInt(network.layers.count) else {
        throw BoundaryError.invalidArgument("layer \(layer) is out of range: the network has \(network.layers.count) layers")
    }
    return network.layers[Int(layer)]
}

private func parameterNodes(_ network: Network, _ layer: UInt) throws -> (NodeID, NodeID) {
    let chosen = try layerAt(network, layer)
    guard let weight = chosen.weight, let bias = chosen.bias else {
        throw BoundaryError.invalidArgument("layer \(layer) has no parameters")
    }
    return (weight, bias)
}

private func checkCount(_ graph: Graph, _ node: NodeID, _ count: UInt, _ name: String) throws {
    let expected = try graph.shape(of: node).count
    guard count == UInt(expected) else {
        throw BoundaryError.invalidArgument("\(name) has \(expected) elements, but \(count) were given")
    }
}
