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
        guard layer < UInt(network.layers.count) else {
            throw BoundaryError.invalidArgument("layer \(layer) is out of range: the network has \(network.layers.count) layers")
        }
        let dense = network.layers[Int(layer)]
        weight?.pointee = Int32(dense.weight)
        bias?.pointee = Int32(dense.bias)
    }
}
