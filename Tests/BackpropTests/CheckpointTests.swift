import Glibc
import Testing
@testable import Backprop

/// The JSON parser is strict and bounded, checkpoints round-trip networks and optimizers
/// exactly, and every damaged checkpoint is refused with a format error.
@Suite struct JSONTests {
    func parse(_ text: String, _ limits: JSONParser.Limits = JSONParser.Limits()) throws -> JSON {
        try JSONParser.parse(text, limits: limits)
    }

    @Test func writtenJSONParsesBackToTheSameValue() throws {
        let value = JSON.object([
            "text": .string("quote \" backslash \\ newline \n tab \t bell \u{07} é 😀"),
            "numbers": .array([.integer(0), .integer(UInt64.max), .double(1e-8), .double(-0.1), .double(5e-324)]),
            "flags": .array([.bool(true), .bool(false), .null]),
            "nested": .object(["empty": .array([]), "none": .object([:])]),
        ])
        #expect(try parse(value.serialized) == value)
    }

    @Test func escapesAndSurrogatePairsDecode() throws {
        #expect(try parse(#""\u00e9\ud83d\ude00\/\b\f""#) == .string("é😀/\u{08}\u{0C}"))
        #expect(try parse(" [1 , 2]\n\t") == .array([.number("1"), .number("2")]))
    }

    @Test func numbersReadBackExactly() throws {
        #expect(try parse("18446744073709551615").uint64Value == UInt64.max)
        #expect(try parse("18446744073709551616").uint64Value == nil)
        #expect(try parse("-1").uint64Value == nil)
        #expect(try parse("1.0").uint64Value == nil)
        #expect(try parse("1e3").uint64Value == nil)
        for x in [0.1, 1.0 / 3, 1e-5, 0.9999, 1.7976931348623157e308, 5e-324, -2.5e-10] {
            #expect(try parse(JSON.double(x).serialized).doubleValue == x)
        }
        #expect(try parse("1e999").doubleValue == nil)  // infinite: not a finite double
    }

    @Test(arguments: [
        "", " ", "[1,]", "{\"a\":1,}", "01", "-", "1.", ".5", "+1", "1e", "NaN", "Infinity", "[1 2]",
        "{a:1}", "'a'", "[1]/*c*/", "// c\n1", "\"tab\there\"", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"",
        "\"\\ud800\\u0041\"", "\"\\u12\"", "\"unterminated", "[", "{\"a\"", "{\"a\":}", "{\"a\":1,\"a\":2}",
        "[1] x", "tru", "nul", "[1]]",
    ])
    func malformedJSONIsRefused(_ text: String) {
        #expect(throws: JSONError.self) { try parse(text) }
    }

    @Test func invalidUTF8IsRefused() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22]] {
            #expect(throws: JSONError.self) { try bytes.withUnsafeBytes { try JSONParser.parse($0) } }
        }
    }

    @Test func limitsBoundDepthStringsAndValueCount() throws {
        var limits = JSONParser.Limits()
        limits.maxDepth = 3
        #expect(try parse("[[[1]]]", limits) == .array([.array([.array([.number("1")])])]))
        #expect(throws: JSONError.self) { try parse("[[[[1]]]]", limits) }
        #expect(throws: JSONError.self) { try parse(String(repeating: "[", count: 100_000), JSONParser.Limits()) }
        limits.maxStringBytes = 4
        #expect(try parse("\"abcd\"", limits) == .string("abcd"))
        #expect(throws: JSONError.self) { try parse("\"abcde\"", limits) }
        limits.maxValues = 3
        #expect(throws: JSONError.self) { try parse("[1,2,3]", limits) }
        #expect(try parse("[1,2]", limits).arrayValue?.count == 2)
        limits = JSONParser.Limits()
        limits.maxNumberBytes = 3
        #expect(throws: JSONError.self) { try parse("1234", limits) }
    }
}

@Suite struct CheckpointTests {
    static let inputs: [Float] = [0.5, -1, 2, 0.25, -0.3, 0.8, 0.1, -1.5, 1.5, 1.5, -2, 0.75]
    static let labels: [Int32] = [0, 2, 1]

    func network(dtype: DType = .float32, dropout: Bool = false) throws -> Network {
        let net = try Network(inputWidth: 4, seed: 9, dtype: dtype)
        try net.addDense(units: 6, activation: .tanh)
        if dropout { try net.addDropout(probability: 0.3) }
        try net.addLayerNorm(eps: 1e-3)
        try net.addDense(units: 5, activation: .sigmoid)
        try net.addDense(units: 3, activation: .none)
        try net.setLoss(.crossEntropy)
        return net
    }

    func step(_ net: Network, _ optimizer: Optimizer) throws {
        var outputs = [Float](repeating: 0, count: 3 * net.outputWidth)
        net.zeroGradients()
        try Self.inputs.withUnsafeBufferPointer { x in
            try outputs.withUnsafeMutableBufferPointer { try net.forward(x, batch: 3, into: $0) }
        }
        _ = try Self.labels.withUnsafeBufferPointer { try net.backward(labels: $0) }
        try optimizer.step(net.graph)
    }

    func parameters(_ net: Network) throws -> [Float] {
        var out = [Float](repeating: 0, count: net.parameterCount)
        try out.withUnsafeMutableBufferPointer { try net.graph.copyParameters(into: $0) }
        return out
    }

    func predictions(_ net: Network) throws -> [Float] {
        var out = [Float](repeating: 0, count: 3 * net.outputWidth)
        try Self.inputs.withUnsafeBufferPointer { x in
            try out.withUnsafeMutableBufferPointer { try net.predict(x, batch: 3, into: $0) }
        }
        return out
    }

    func load(_ bytes: [UInt8]) throws -> (network: Network, optimizer: Optimizer?) {
        try bytes.withUnsafeBytes { try Checkpoint.load(from: $0) }
    }

    func isFormatError(_ error: any Error) -> Bool {
        if case .format = error as? BackpropError { true } else { false }
    }

    @Test(arguments: [DType.float32, .float64])
    func aLoadedNetworkHasTheSameArchitectureParametersAndPredictions(_ dtype: DType) throws {
        let net = try network(dtype: dtype, dropout: true)
        let adam = try Optimizer(.adam)
        for _ in 0..<3 { try step(net, adam) }
        let (loaded, optimizer) = try load(try Checkpoint.encode(net))
        #expect(optimizer == nil)
        #expect(loaded.layers.map(\.kind) == net.layers.map(\.kind))
        #expect(loaded.layers.map(\.moduleIndex) == net.layers.map(\.moduleIndex))
        #expect(loaded.inputWidth == 4 && loaded.seed == 9 && loaded.loss == .crossEntropy)
        #expect(loaded.graph.dtype == dtype)
        #expect(try parameters(loaded) == parameters(net))
        #expect(try predictions(loaded) == predictions(net))
    }

    @Test func theMetadataDescribesTheArchitectureAndOptimizer() throws {
        let net = try network(dropout: true)
        var options = OptimizerOptions.defaults(for: .rmsprop)
        options.momentum = 0.25
        options.centered = true
        let rmsprop = try Optimizer(.rmsprop, options: options)
        try step(net, rmsprop)
        let bytes = try Checkpoint.encode(net, optimizer: rmsprop)
        let header = try bytes.withUnsafeBytes { try Safetensors.readHeader(MemorySource(bytes: $0)) }
        #expect(header.metadata["format"] == "libbackprop")
        #expect(header.metadata["format_version"] == "1")
        let architecture = try JSONParser.parse(header.metadata["architecture"]!)
        #expect(architecture["input_width"]?.intValue == 4)
        #expect(architecture["seed"]?.uint64Value == 9)
        #expect(architecture["dtype"]?.stringValue == "float32")
        #expect(architecture["loss"]?.stringValue == "cross_entropy")
        let layers = try #require(architecture["layers"]?.arrayValue)
        #expect(layers.map { $0["kind"]?.stringValue } == ["dense", "dropout", "layer_norm", "dense", "dense"])
        #expect(layers[0]["activation"]?.stringValue == "tanh" && layers[0]["units"]?.intValue == 6)
        #expect(layers[1]["p"]?.doubleValue == 0.3 && layers[2]["eps"]?.doubleValue == 1e-3)
        let described = try JSONParser.parse(header.metadata["optimizer"]!)
        #expect(described["algorithm"]?.stringValue == "RMSprop" && described["step"]?.intValue == 1)
        #expect(described["options"]?["momentum"]?.doubleValue == 0.25)
        #expect(described["options"]?["centered"]?.boolValue == true)
        #expect(described["state"]?.arrayValue?.compactMap(\.stringValue) == ["square_avg", "momentum_buffer", "grad_avg"])
        // Module numbering: Linear 0, Tanh 1, Dropout 2, LayerNorm 3, Linear 4, Sigmoid 5, Linear 6.
        #expect(header.entries.map(\.name) == ["0.weight", "0.bias", "3.weight", "3.bias", "4.weight", "4.bias",
                                               "6.weight", "6.bias", "optimizer.square_avg",
                                               "optimizer.momentum_buffer", "optimizer.grad_avg"])
        #expect(header.entries[0].shape == [6, 4] && header.entries[8].shape == [net.parameterCount])
    }

    @Test(arguments: OptimizerAlgorithm.allCases)
    func anOptimizerContinuesExactlyAfterLoading(_ algorithm: OptimizerAlgorithm) throws {
        var options = OptimizerOptions.defaults(for: algorithm)
        options.momentum = algorithm == .sgd || algorithm == .rmsprop ? 0.9 : 0
        options.amsgrad = algorithm == .adam
        options.initialAccumulatorValue = algorithm == .adagrad ? 0.1 : 0
        let net = try network()
        let optimizer = try Optimizer(algorithm, options: options)
        for _ in 0..<3 { try step(net, optimizer) }
        let bytes = try Checkpoint.encode(net, optimizer: optimizer)
        for _ in 0..<4 { try step(net, optimizer) }

        let (loaded, resumed) = try load(bytes)
        let restored = try #require(resumed)
        #expect(restored.algorithm == algorithm && restored.options == options && restored.stepCount == 3)
        for _ in 0..<4 { try step(loaded, restored) }
        #expect(restored.stepCount == 7)
        #expect(try parameters(loaded) == parameters(net))
    }

    @Test func everyTruncationIsAFormatError() throws {
        let net = try Network(inputWidth: 2, seed: 1)
        try net.addDense(units: 1, activation: .none)
        let sgd = try Optimizer(.sgd, options: { var o = OptimizerOptions(learningRate: 0.1); o.momentum = 0.5; return o }())
        var outputs: [Float] = [0]
        try [Float](arrayLiteral: 1, 2).withUnsafeBufferPointer { x in
            try outputs.withUnsafeMutableBufferPointer { try net.forward(x, batch: 1, into: $0) }
        }
        _ = try [Float](arrayLiteral: 0.5).withUnsafeBufferPointer { try net.backward(targets: $0) }
        try sgd.step(net.graph)
        let bytes = try Checkpoint.encode(net, optimizer: sgd)
        for n in 0..<bytes.count {
            #expect(performing: { _ = try load(Array(bytes.prefix(n))) }, throws: isFormatError)
        }
        #expect(try load(bytes).optimizer?.stepCount == 1)
    }

    @Test func nonFiniteValuesAreRefusedOnSaveAndLoad() throws {
        let net = try Network(inputWidth: 2, seed: 1)
        try net.addDense(units: 1, activation: .none)
        var bytes = try Checkpoint.encode(net)
        let nan = Float.nan.bitPattern.littleEndian
        withUnsafeBytes(of: nan) { bytes.replaceSubrange((bytes.count - 4)..., with: $0) }
        #expect(throws: BackpropError.self) { _ = try load(bytes) }
        do {
            _ = try load(bytes)
        } catch let error as BackpropError {
            guard case .nonFinite(let message) = error else { Issue.record("expected nonFinite, got \(error)"); return }
            #expect(message.contains("0.bias"))
        }
        try net.graph.setValue(net.layers[0].weight!, from: [Float.infinity, 0], count: 2)
        #expect(throws: BackpropError.nonFinite("layer parameter \"0.weight\" element 0 is not finite; a checkpoint holds finite values only")) {
            _ = try Checkpoint.encode(net)
        }
    }

    @Test func savingWritesAtomicallyAndReportsIOErrors() throws {
        var template = Array("/tmp/bp_swift_checkpoint_XXXXXX".utf8CString)
        let folder = String(cString: try #require(mkdtemp(&template)))
        defer {
            unlink(folder + "/net.safetensors")
            rmdir(folder)
        }
        let path = folder + "/net.safetensors"
        let net = try network()
        try Checkpoint.save(net, to: path)
        let (loaded, _) = try Checkpoint.load(from: path)
        #expect(try predictions(loaded) == predictions(net))

        func isIOError(_ error: any Error) -> Bool {
            if case .io = error as? BackpropError { true } else { false }
        }
        #expect(performing: { try Checkpoint.save(net, to: folder + "/missing/net.safetensors") }, throws: isIOError)
        #expect(performing: { try Checkpoint.save(net, to: folder) }, throws: isIOError)
        #expect(performing: { _ = try Checkpoint.load(from: folder + "/absent") }, throws: isIOError)
        #expect(performing: { _ = try Checkpoint.load(from: folder) }, throws: isIOError)
        // Nothing but the one file is left in the folder.
        let directory = try #require(opendir(folder))
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(directory)
        #expect(names == ["net.safetensors"])
    }

    @Test func theContainerRequiresTheRangesToTileTheData() throws {
        func file(_ header: String, dataBytes: Int) -> [UInt8] {
            var bytes: [UInt8] = []
            withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: header.utf8)
            bytes.append(contentsOf: [UInt8](repeating: 0, count: dataBytes))
            return bytes
        }
        func header(_ bytes: [UInt8]) throws -> Safetensors.Header {
            try bytes.withUnsafeBytes { try Safetensors.readHeader(MemorySource(bytes: $0)) }
        }
        let ok = try header(file(#"{"b":{"dtype":"F64","shape":[1],"data_offsets":[4,12]},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#, dataBytes: 12))
        #expect(ok.entries.map(\.name) == ["a", "b"])  // in data order
        #expect(ok.entries[0].shape == [] && ok.entries[0].count == 1)
        for (text, size) in [
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 12),  // bytes left over
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, 12),  // a gap at the start
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, 8),
            (#"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, 8),
            (#"{"__metadata__":{"k":1}}"#, 0),
            (#"{"a":[]}"#, 0),
            (#"[]"#, 0),
        ] {
            #expect(performing: { _ = try header(file(text, dataBytes: size)) }, throws: isFormatError)
        }
    }
}
