/// Checkpoints: a network, and optionally its optimizer, saved as a safetensors file.
///
/// Layout (format "libbackprop", format_version "1"):
/// - Tensors named as the parameters of the equivalent torch `nn.Sequential`, where an
///   activation is a module of its own: "<module>.weight" and "<module>.bias" for each dense
///   layer (weight [out, in], as our graph and torch's `Linear` store it) and each layer norm
///   (weight and bias [width]). dtype "F32" or "F64", the network's.
/// - With an optimizer, "optimizer.<name>" for each of its state buffers (torch.optim's names:
///   "exp_avg", "momentum_buffer", ...), each [parameter count] over the flat parameter block:
///   every layer's weight then bias, in layer order.
/// - `__metadata__`: "format", "format_version", "architecture" (JSON: input_width, seed, dtype,
///   loss, layers with their kind and settings), "rng_state" (JSON: the four words of the
///   generator dropout draws from) and, with an optimizer, "optimizer" (JSON: algorithm, step
///   count, every option, the names of the state buffers present).
///
/// Loading checks the container (see `Safetensors`), then that the metadata and tensors
/// describe one consistent network, before building anything: a bad file is
/// `BackpropError.format`, values that are NaN or infinite `BackpropError.nonFinite`.
public enum Checkpoint {
    public static let format = "libbackprop"
    public static let formatVersion = "1"
    /// Networks with more layers than this are neither saved nor loaded (a bound for hostile
    /// files; real networks are far smaller).
    public static let maxLayers = 10_000

    // MARK: - Saving

    /// Writes `network` (and `optimizer`, if given) to `path` atomically: the previous file, if
    /// any, stays intact unless the new one was written completely.
    public static func save(_ network: Network, optimizer: Optimizer? = nil, to path: String) throws {
        let plan = try Plan(network, optimizer)
        try AtomicFile.write(to: path) { append in
            try plan.header.withUnsafeBytes { try append($0) }
            try plan.writeData(append)
        }
    }

    /// The number of bytes `encode` writes for this network and optimizer.
    public static func encodedSize(_ network: Network, optimizer: Optimizer? = nil) throws -> Int {
        try Plan(network, optimizer).size
    }

    /// Writes the checkpoint into `buffer`, which must hold at least `encodedSize` bytes, and
    /// returns the number of bytes written.
    public static func encode(_ network: Network, optimizer: Optimizer? = nil, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let plan = try Plan(network, optimizer)
        guard buffer.count >= plan.size else {
            throw BackpropError.invalidArgument("the buffer holds \(buffer.count) bytes, but the checkpoint needs \(plan.size)")
        }
        var offset = 0
        let append: (UnsafeRawBufferPointer) throws -> Void = { chunk in
            guard !chunk.isEmpty else { return }
            (buffer.baseAddress! + offset).copyMemory(from: chunk.baseAddress!, byteCount: chunk.count)
            offset += chunk.count
        }
        try plan.header.withUnsafeBytes { try append($0) }
        try plan.writeData(append)
        return offset
    }

    /// The checkpoint as bytes.
    public static func encode(_ network: Network, optimizer: Optimizer? = nil) throws -> [UInt8] {
        let size = try encodedSize(network, optimizer: optimizer)
        var bytes = [UInt8](repeating: 0, count: size)
        _ = try bytes.withUnsafeMutableBytes { try encode(network, optimizer: optimizer, into: $0) }
        return bytes
    }

    // MARK: - Loading

    /// Reads a checkpoint file. The optimizer is nil when the file holds none.
    public static func load(from path: String) throws -> (network: Network, optimizer: Optimizer?) {
        try load(FileSource(path: path))
    }

    /// Reads a checkpoint from memory.
    public static func load(from bytes: UnsafeRawBufferPointer) throws -> (network: Network, optimizer: Optimizer?) {
        try load(MemorySource(bytes: bytes))
    }

    static func load(_ source: ByteSource) throws -> (network: Network, optimizer: Optimizer?) {
        let header = try Safetensors.readHeader(source)
        let metadata = header.metadata
        guard metadata["format"] == format else {
            throw BackpropError.format("not a libbackprop checkpoint: __metadata__ \"format\" is \(quoted(metadata["format"])), expected \"\(format)\"")
        }
        guard metadata["format_version"] == formatVersion else {
            throw BackpropError.format("checkpoint format_version \(quoted(metadata["format_version"])) is not supported (this library reads \"\(formatVersion)\")")
        }
        guard let architectureText = metadata["architecture"] else { throw BackpropError.format("the checkpoint has no \"architecture\" metadata") }
        let architecture = try Architecture(parsing: architectureText)
        guard architecture.inputWidth <= source.count else {
            throw BackpropError.format("architecture: input_width \(architecture.inputWidth) is implausible for a \(source.count)-byte checkpoint")
        }
        guard let rngText = metadata["rng_state"] else { throw BackpropError.format("the checkpoint has no \"rng_state\" metadata") }
        let rngWords = try parseGenerator(rngText)
        let optimizerDescription = try metadata["optimizer"].map { try OptimizerDescription(parsing: $0) }

        // Every tensor the architecture implies must be there with its exact shape and dtype,
        // and nothing else, before anything is allocated from the architecture's numbers.
        let expected = architecture.parameterTensors()
        var byName: [String: Safetensors.Entry] = [:]
        for entry in header.entries { byName[entry.name] = entry }
        var accounted = Set<String>()
        var parameterCount = 0
        for tensor in expected.flatMap({ [$0.tensors.weight, $0.tensors.bias] }) {
            let entry = try find(tensor.name, in: byName, dtype: architecture.dtype)
            guard entry.shape == tensor.shape else {
                throw BackpropError.format("tensor \"\(tensor.name)\" has shape \(Shape.format(entry.shape)), but the architecture needs \(Shape.format(tensor.shape))")
            }
            accounted.insert(tensor.name)
            parameterCount += entry.count
        }
        if let optimizerDescription {
            for name in optimizerDescription.stateNames {
                let tensorName = "optimizer." + name
                let entry = try find(tensorName, in: byName, dtype: architecture.dtype)
                guard entry.shape == [parameterCount] else {
                    throw BackpropError.format("tensor \"\(tensorName)\" has shape \(Shape.format(entry.shape)), but the network has \(parameterCount) parameters")
                }
                accounted.insert(tensorName)
            }
        }
        if let extra = header.entries.first(where: { !accounted.contains($0.name) }) {
            throw BackpropError.format("unexpected tensor \"\(Safetensors.clip(extra.name))\": the architecture\(optimizerDescription == nil ? " (and no optimizer)" : " and optimizer") do not account for it")
        }

        let network = try architecture.build()
        for (layerIndex, tensors) in expected {
            let layer = network.layers[layerIndex]
            guard let weight = layer.weight, let bias = layer.bias,
                  tensors.weight.name == "\(layer.moduleIndex).weight" else {
                throw BackpropError.state("checkpoint: layer \(layerIndex) was rebuilt differently from its description")
            }
            try readParameter(byName[tensors.weight.name]!, header, source, into: weight, of: network.graph)
            try readParameter(byName[tensors.bias.name]!, header, source, into: bias, of: network.graph)
        }
        network.graph.context.generator.stateWords = rngWords

        guard let optimizerDescription else { return (network, nil) }
        let optimizer = try optimizerDescription.build()
        let state = try optimizerDescription.stateNames.map { name in
            let entry = byName["optimizer." + name]!
            let storage = try Storage(count: entry.count, dtype: entry.dtype)
            try readValues(entry, header, source, into: storage.pointer)
            return (name: name, storage: storage)
        }
        optimizer.restore(stepCount: optimizerDescription.step, state: state)
        return (network, optimizer)
    }

    private static func find(_ name: String, in entries: [String: Safetensors.Entry], dtype: DType) throws -> Safetensors.Entry {
        guard let entry = entries[name] else { throw BackpropError.format("tensor \"\(name)\" is missing") }
        guard entry.dtype == dtype else {
            throw BackpropError.format("tensor \"\(name)\" is \(Safetensors.dtypeName(entry.dtype)), but the network is \(dtype.name) (\(Safetensors.dtypeName(dtype)))")
        }
        return entry
    }

    private static func readParameter(_ entry: Safetensors.Entry, _ header: Safetensors.Header, _ source: ByteSource,
                                      into node: NodeID, of graph: Graph) throws {
        let storage = try Storage(count: entry.count, dtype: entry.dtype)
        try readValues(entry, header, source, into: storage.pointer)
        switch entry.dtype {
        case .float32: try graph.setValue(node, from: storage.typed(Float.self), count: entry.count)
        case .float64: try graph.setValue(node, from: storage.typed(Double.self), count: entry.count)
        }
    }

    /// Copies a tensor's bytes to `destination` in the host's byte order, and refuses NaN and
    /// infinity.
    private static func readValues(_ entry: Safetensors.Entry, _ header: Safetensors.Header, _ source: ByteSource,
                                   into destination: UnsafeMutableRawPointer) throws {
        let start = header.dataStart + entry.range.lowerBound
        try source.read(start..<(start + entry.range.count), into: destination)
        let bad: Int? = switch entry.dtype {
        case .float32: fromLittleEndian(destination.assumingMemoryBound(to: Float.self), entry.count)
        case .float64: fromLittleEndian(destination.assumingMemoryBound(to: Double.self), entry.count)
        }
        if let bad {
            let value: Double = entry.dtype == .float32
                ? Double(destination.assumingMemoryBound(to: Float.self)[bad]) : destination.assumingMemoryBound(to: Double.self)[bad]
            throw BackpropError.nonFinite("tensor \"\(Safetensors.clip(entry.name))\" element \(bad) is \(value)")
        }
    }

    /// Converts little-endian values in place (nothing to do on little-endian hosts) and returns
    /// the index of the first non-finite one.
    private static func fromLittleEndian<T: Scalar>(_ values: UnsafeMutablePointer<T>, _ count: Int) -> Int? {
        #if _endian(big)
        let raw = UnsafeMutableRawPointer(values).assumingMemoryBound(to: UInt8.self)
        let size = MemoryLayout<T>.size
        for i in 0..<count {
            let bytes = raw + i * size
            for j in 0..<(size / 2) {
                let t = bytes[j]
                bytes[j] = bytes[size - 1 - j]
                bytes[size - 1 - j] = t
            }
        }
        #endif
        return firstNonFinite(values, count)
    }

    private static func quoted(_ text: String?) -> String {
        text.map { "\"\(Safetensors.clip($0))\"" } ?? "missing"
    }

    // MARK: - What is saved

    /// Everything a save writes, checked and laid out before the first byte is written.
    private struct Plan {
        let header: [UInt8]
        /// Each tensor's bytes, in file order: pointers into the network's and the optimizer's
        /// storage, valid during the save (the caller holds both).
        let pieces: [(pointer: UnsafeRawPointer, count: Int, dtype: DType)]
        let size: Int

        init(_ network: Network, _ optimizer: Optimizer?) throws {
            guard network.layers.count <= Checkpoint.maxLayers else {
                throw BackpropError.invalidArgument("checkpoints hold at most \(Checkpoint.maxLayers) layers; this network has \(network.layers.count)")
            }
            let graph = network.graph
            let dtype = graph.dtype
            var specs: [Safetensors.TensorSpec] = []
            var pieces: [(pointer: UnsafeRawPointer, count: Int, dtype: DType)] = []
            var layerParameters = 0
            for layer in network.layers {
                for (suffix, node) in [("weight", layer.weight), ("bias", layer.bias)] {
                    guard let node else { continue }
                    let shape = try graph.shape(of: node)
                    let pointer = UnsafeRawPointer(graph.values[node]!.pointer)
                    if let bad = Checkpoint.firstNonFiniteElement(pointer, shape.count, dtype) {
                        throw BackpropError.nonFinite("layer parameter \"\(layer.moduleIndex).\(suffix)\" element \(bad) is not finite; a checkpoint holds finite values only")
                    }
                    specs.append(.init(name: "\(layer.moduleIndex).\(suffix)", dtype: dtype, shape: shape.dims))
                    pieces.append((pointer, shape.count, dtype))
                    layerParameters += shape.count
                }
            }
            var metadata: [(key: String, value: String)] = [
                ("format", Checkpoint.format),
                ("format_version", Checkpoint.formatVersion),
                ("architecture", Architecture(network).json.serialized),
                ("rng_state", JSON.array(graph.context.generator.stateWords.map { .integer($0) }).serialized),
            ]
            if let optimizer {
                if let first = optimizer.state.first {
                    guard first.storage.count == graph.parameterCount, first.storage.dtype == dtype else {
                        throw BackpropError.invalidArgument("the optimizer has state for \(first.storage.count) \(first.storage.dtype.name) parameters, but the network has \(graph.parameterCount) \(dtype.name) ones: it belongs to another network")
                    }
                    guard layerParameters == graph.parameterCount else {
                        throw BackpropError.invalidArgument("the network's graph has \(graph.parameterCount - layerParameters) parameters beyond its layers' (added through its graph); a checkpoint cannot hold an optimizer's state for them")
                    }
                }
                for (name, storage) in optimizer.state {
                    let pointer = UnsafeRawPointer(storage.pointer)
                    if let bad = Checkpoint.firstNonFiniteElement(pointer, storage.count, dtype) {
                        throw BackpropError.nonFinite("optimizer state \"\(name)\" element \(bad) is not finite")
                    }
                    specs.append(.init(name: "optimizer." + name, dtype: dtype, shape: [storage.count]))
                    pieces.append((pointer, storage.count, dtype))
                }
                metadata.append(("optimizer", OptimizerDescription(optimizer).json.serialized))
            }
            let (header, ranges) = Safetensors.encodeHeader(specs, metadata: metadata)
            self.header = header
            self.pieces = pieces
            self.size = header.count + (ranges.last?.upperBound ?? 0)
        }

        /// Hands the tensors' bytes, little-endian, to `append`.
        func writeData(_ append: (UnsafeRawBufferPointer) throws -> Void) throws {
            for piece in pieces {
                #if _endian(big)
                var bytes = [UInt8](UnsafeRawBufferPointer(start: piece.pointer, count: piece.count * piece.dtype.size))
                let size = piece.dtype.size
                for i in 0..<piece.count { bytes[(i * size)..<((i + 1) * size)].reverse() }
                try bytes.withUnsafeBytes { try append($0) }
                #else
                try append(UnsafeRawBufferPointer(start: piece.pointer, count: piece.count * piece.dtype.size))
                #endif
            }
        }
    }

    fileprivate static func firstNonFiniteElement(_ pointer: UnsafeRawPointer, _ count: Int, _ dtype: DType) -> Int? {
        switch dtype {
        case .float32: Backprop.firstNonFinite(pointer.assumingMemoryBound(to: Float.self), count)
        case .float64: Backprop.firstNonFinite(pointer.assumingMemoryBound(to: Double.self), count)
        }
    }

    private static func parseGenerator(_ text: String) throws -> [UInt64] {
        let json: JSON
        do { json = try JSONParser.parse(text) } catch let e as JSONError {
            throw BackpropError.format("rng_state is not valid JSON: \(e)")
        }
        guard let items = json.arrayValue, items.count == 4 else {
            throw BackpropError.format("rng_state must be an array of 4 unsigned 64-bit integers")
        }
        let words = items.compactMap(\.uint64Value)
        guard words.count == 4 else { throw BackpropError.format("rng_state must be an array of 4 unsigned 64-bit integers") }
        guard words.contains(where: { $0 != 0 }) else { throw BackpropError.format("rng_state is all zero, which is not a valid generator state") }
        return words
    }
}

// MARK: - The architecture

/// What a network is, as the "architecture" metadata records it.
struct Architecture {
    var inputWidth: Int
    var seed: UInt64
    var dtype: DType
    var loss: LossKind
    var layers: [Network.LayerKind]

    init(_ network: Network) {
        inputWidth = network.inputWidth
        seed = network.seed
        dtype = network.graph.dtype
        loss = network.loss
        layers = network.layers.map(\.kind)
    }

    var json: JSON {
        .object([
            "input_width": .integer(inputWidth),
            "seed": .integer(seed),
            "dtype": .string(dtype.name),
            "loss": .string(Self.name(of: loss)),
            "layers": .array(layers.map { kind in
                switch kind {
                case .dense(let units, let activation):
                    .object(["kind": .string("dense"), "units": .integer(units), "activation": .string(Self.name(of: activation))])
                case .dropout(let p):
                    .object(["kind": .string("dropout"), "p": .double(p)])
                case .layerNorm(let eps):
                    .object(["kind": .string("layer_norm"), "eps": .double(eps)])
                }
            }),
        ])
    }

    init(parsing text: String) throws {
        let json: JSON
        do {
            var limits = JSONParser.Limits()
            limits.maxDepth = 3
            json = try JSONParser.parse(text, limits: limits)
        } catch let e as JSONError {
            throw BackpropError.format("architecture is not valid JSON: \(e)")
        }
        let root = try Fields(json, "architecture", ["input_width", "seed", "dtype", "loss", "layers"])
        inputWidth = try root.int("input_width", minimum: 1)
        guard let seed = root["seed"].uint64Value else { throw BackpropError.format("architecture: seed must be an unsigned 64-bit integer") }
        self.seed = seed
        let dtypeName = try root.string("dtype")
        guard let dtype = DType.allCases.first(where: { $0.name == dtypeName }) else {
            throw BackpropError.format("architecture: unknown dtype \"\(Safetensors.clip(dtypeName))\"")
        }
        self.dtype = dtype
        let lossName = try root.string("loss")
        guard let loss = LossKind.allCases.first(where: { Self.name(of: $0) == lossName }) else {
            throw BackpropError.format("architecture: unknown loss \"\(Safetensors.clip(lossName))\"")
        }
        self.loss = loss
        guard let items = root["layers"].arrayValue else { throw BackpropError.format("architecture: layers must be an array") }
        guard items.count <= Checkpoint.maxLayers else {
            throw BackpropError.format("architecture: \(items.count) layers, more than \(Checkpoint.maxLayers)")
        }
        layers = try items.enumerated().map { index, item in
            let what = "architecture: layer \(index)"
            guard let kind = item["kind"]?.stringValue else { throw BackpropError.format("\(what) has no kind") }
            switch kind {
            case "dense":
                let fields = try Fields(item, what, ["kind", "units", "activation"])
                let activationName = try fields.string("activation")
                guard let activation = Activation.allCases.first(where: { Self.name(of: $0) == activationName }) else {
                    throw BackpropError.format("\(what) has an unknown activation \"\(Safetensors.clip(activationName))\"")
                }
                return .dense(units: try fields.int("units", minimum: 1), activation: activation)
            case "dropout":
                let fields = try Fields(item, what, ["kind", "p"])
                let p = try fields.double("p")
                guard p >= 0, p <= 1 else { throw BackpropError.format("\(what): dropout p \(p) is not in [0, 1]") }
                return .dropout(probability: p)
            case "layer_norm":
                let fields = try Fields(item, what, ["kind", "eps"])
                let eps = try fields.double("eps")
                guard eps > 0 else { throw BackpropError.format("\(what): layer norm eps \(eps) is not positive") }
                return .layerNorm(eps: eps)
            default:
                throw BackpropError.format("\(what) has an unknown kind \"\(Safetensors.clip(kind))\"")
            }
        }
    }

    /// The parameter tensors each layer with parameters owns, named after the modules of the
    /// equivalent torch `nn.Sequential` (an activation is a module of its own).
    func parameterTensors() -> [(layer: Int, tensors: (weight: Safetensors.TensorSpec, bias: Safetensors.TensorSpec))] {
        var result: [(layer: Int, tensors: (weight: Safetensors.TensorSpec, bias: Safetensors.TensorSpec))] = []
        var width = inputWidth
        var module = 0
        for (index, kind) in layers.enumerated() {
            switch kind {
            case .dense(let units, let activation):
                result.append((index, (.init(name: "\(module).weight", dtype: dtype, shape: [units, width]),
                                       .init(name: "\(module).bias", dtype: dtype, shape: [units]))))
                width = units
                module += activation == .none ? 1 : 2
            case .layerNorm:
                result.append((index, (.init(name: "\(module).weight", dtype: dtype, shape: [width]),
                                       .init(name: "\(module).bias", dtype: dtype, shape: [width]))))
                module += 1
            case .dropout:
                module += 1
            }
        }
        return result
    }

    /// A network of this architecture; its parameters start at zero (dense) or at layer norm's
    /// ones and zeros, to be overwritten.
    func build() throws -> Network {
        do {
            let network = try Network(inputWidth: inputWidth, seed: seed, dtype: dtype)
            for kind in layers {
                switch kind {
                case .dense(let units, let activation):
                    try network.addDense(units: units, activation: activation, initializer: .zeros)
                case .dropout(let p): try network.addDropout(probability: p)
                case .layerNorm(let eps): try network.addLayerNorm(eps: eps)
                }
            }
            try network.setLoss(loss)
            return network
        } catch BackpropError.invalidArgument(let message), BackpropError.shape(let message) {
            throw BackpropError.format("architecture: \(message)")
        }
    }

    static func name(of activation: Activation) -> String {
        switch activation {
        case .none: "none"
        case .relu: "relu"
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        }
    }

    static func name(of loss: LossKind) -> String {
        switch loss {
        case .mse: "mse"
        case .crossEntropy: "cross_entropy"
        }
    }
}

// MARK: - The optimizer

/// An optimizer's algorithm, options, step count and the names of its state buffers, as the
/// "optimizer" metadata records them (options under torch.optim's names).
struct OptimizerDescription {
    var algorithm: OptimizerAlgorithm
    var options: OptimizerOptions
    var step: Int
    var stateNames: [String]

    init(_ optimizer: Optimizer) {
        algorithm = optimizer.algorithm
        options = optimizer.options
        step = optimizer.stepCount
        stateNames = optimizer.state.map(\.name)
    }

    var json: JSON {
        let o = options
        return .object([
            "algorithm": .string(algorithm.name),
            "step": .integer(step),
            "options": .object([
                "lr": .double(o.learningRate),
                "weight_decay": .double(o.weightDecay),
                "momentum": .double(o.momentum),
                "dampening": .double(o.dampening),
                "nesterov": .bool(o.nesterov),
                "betas": .array([.double(o.beta1), .double(o.beta2)]),
                "amsgrad": .bool(o.amsgrad),
                "eps": .double(o.eps),
                "alpha": .double(o.alpha),
                "centered": .bool(o.centered),
                "lr_decay": .double(o.learningRateDecay),
                "initial_accumulator_value": .double(o.initialAccumulatorValue),
            ]),
            "state": .array(stateNames.map { .string($0) }),
        ])
    }

    init(parsing text: String) throws {
        let json: JSON
        do {
            var limits = JSONParser.Limits()
            limits.maxDepth = 3
            json = try JSONParser.parse(text, limits: limits)
        } catch let e as JSONError {
            throw BackpropError.format("optimizer is not valid JSON: \(e)")
        }
        let root = try Fields(json, "optimizer", ["algorithm", "step", "options", "state"])
        let name = try root.string("algorithm")
        guard let algorithm = OptimizerAlgorithm.allCases.first(where: { $0.name == name }) else {
            throw BackpropError.format("optimizer: unknown algorithm \"\(Safetensors.clip(name))\"")
        }
        self.algorithm = algorithm
        step = try root.int("step", minimum: 0)
        let o = try Fields(root["options"], "optimizer options", ["lr", "weight_decay", "momentum", "dampening", "nesterov", "betas",
                                                                  "amsgrad", "eps", "alpha", "centered", "lr_decay", "initial_accumulator_value"])
        var options = OptimizerOptions(learningRate: try o.double("lr"))
        options.weightDecay = try o.double("weight_decay")
        options.momentum = try o.double("momentum")
        options.dampening = try o.double("dampening")
        options.nesterov = try o.bool("nesterov")
        guard let betas = o["betas"].arrayValue, betas.count == 2, let b1 = betas[0].doubleValue, let b2 = betas[1].doubleValue else {
            throw BackpropError.format("optimizer options: betas must be an array of two finite numbers")
        }
        options.beta1 = b1
        options.beta2 = b2
        options.amsgrad = try o.bool("amsgrad")
        options.eps = try o.double("eps")
        options.alpha = try o.double("alpha")
        options.centered = try o.bool("centered")
        options.learningRateDecay = try o.double("lr_decay")
        options.initialAccumulatorValue = try o.double("initial_accumulator_value")
        do {
            try options.validate(for: algorithm)
        } catch BackpropError.invalidArgument(let message) {
            throw BackpropError.format("optimizer options: \(message)")
        }
        self.options = options
        guard let names = root["state"].arrayValue else { throw BackpropError.format("optimizer: state must be an array of names") }
        stateNames = try names.map {
            guard let name = $0.stringValue else { throw BackpropError.format("optimizer: state must be an array of names") }
            return name
        }
        // The state is all the buffers the algorithm keeps, or none before its first step.
        let expected = try build().stateNames
        guard stateNames.isEmpty || stateNames == expected else {
            throw BackpropError.format("optimizer: \(algorithm.name) with these options keeps state \(expected), not \(stateNames)")
        }
        guard !(stateNames.isEmpty && step > 0 && !expected.isEmpty) else {
            throw BackpropError.format("optimizer: \(step) steps taken but no state saved")
        }
    }

    func build() throws -> Optimizer {
        do {
            return try Optimizer(algorithm, options: options)
        } catch BackpropError.invalidArgument(let message) {
            throw BackpropError.format("optimizer options: \(message)")
        }
    }
}

/// An object's members, with exactly the allowed keys, read with format errors that name them.
private struct Fields {
    let json: JSON
    let what: String

    init(_ json: JSON?, _ what: String, _ allowed: [String]) throws {
        guard let json, let members = json.members else { throw BackpropError.format("\(what) must be a JSON object") }
        for member in members where !allowed.contains(member.key) {
            throw BackpropError.format("\(what) has an unknown field \"\(Safetensors.clip(member.key))\"")
        }
        for key in allowed where json[key] == nil {
            throw BackpropError.format("\(what) has no field \"\(key)\"")
        }
        self.json = json
        self.what = what
    }

    subscript(key: String) -> JSON { json[key]! }

    func string(_ key: String) throws -> String {
        guard let value = self[key].stringValue else { throw BackpropError.format("\(what): \(key) must be a string") }
        return value
    }

    func int(_ key: String, minimum: Int) throws -> Int {
        guard let value = self[key].intValue, value >= minimum else {
            throw BackpropError.format("\(what): \(key) must be an integer of at least \(minimum)")
        }
        return value
    }

    func double(_ key: String) throws -> Double {
        guard let value = self[key].doubleValue else { throw BackpropError.format("\(what): \(key) must be a finite number") }
        return value
    }

    func bool(_ key: String) throws -> Bool {
        guard let value = self[key].boolValue else { throw BackpropError.format("\(what): \(key) must be true or false") }
        return value
    }
}
