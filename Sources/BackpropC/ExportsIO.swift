import Backprop

// Checkpoints (bp_net_save / bp_net_load and their buffer forms) and data files (bp_dataset_*).

// MARK: - Checkpoints

@_cdecl("bp_net_save")
public func bp_net_save(_ net: OpaquePointer?, _ optimizer: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded(#function) {
        let path = try cPath(path)
        try withNetworkAndOptimizer(net, optimizer) { try Checkpoint.save($0, optimizer: $1, to: path) }
    }
}

@_cdecl("bp_net_load")
public func bp_net_load(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                        _ optimizerOut: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded(#function) {
        let out = try required(out, "out")
        let loaded = try Checkpoint.load(from: try cPath(path))
        publish(loaded, out, optimizerOut)
    }
}

@_cdecl("bp_net_save_buffer")
public func bp_net_save_buffer(_ net: OpaquePointer?, _ optimizer: OpaquePointer?, _ buffer: UnsafeMutableRawPointer?,
                               _ capacity: UInt, _ size: UnsafeMutablePointer<UInt>?) -> Int32 {
    guarded(#function) {
        let sizeOut = try required(size, "size")
        guard buffer != nil || capacity == 0 else {
            throw BoundaryError.invalidArgument("buffer is NULL but capacity is \(capacity)")
        }
        try withNetworkAndOptimizer(net, optimizer) { network, optimizer in
            let needed = try Checkpoint.encodedSize(network, optimizer: optimizer)
            guard let buffer else {
                sizeOut.pointee = UInt(needed)
                return
            }
            guard capacity >= UInt(needed) else {
                sizeOut.pointee = UInt(needed)
                throw BoundaryError.invalidArgument("capacity \(capacity) is smaller than the \(needed) bytes the checkpoint needs (written to *size)")
            }
            let room = UnsafeMutableRawBufferPointer(start: buffer, count: Int(clamping: capacity))
            sizeOut.pointee = UInt(try Checkpoint.encode(network, optimizer: optimizer, into: room))
        }
    }
}

@_cdecl("bp_net_load_buffer")
public func bp_net_load_buffer(_ data: UnsafeRawPointer?, _ size: UInt, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                               _ optimizerOut: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded(#function) {
        let out = try required(out, "out")
        guard let data else { throw BoundaryError.invalidArgument("data is NULL") }
        let bytes = UnsafeRawBufferPointer(start: data, count: try elementCount(size, "size"))
        publish(try Checkpoint.load(from: bytes), out, optimizerOut)
    }
}

/// Holds the network's lock, and the optimizer's when one is given, during `body`.
private func withNetworkAndOptimizer(_ net: OpaquePointer?, _ optimizer: OpaquePointer?,
                                     _ body: (Network, Optimizer?) throws -> Void) throws {
    guard optimizer != nil else {
        try locked(net, "bp_net", \.network) { try body($0, nil) }
        return
    }
    try locked(optimizer, "bp_optimizer", \.optimizer) { o in
        try locked(net, "bp_net", \.network) { try body($0, o.optimizer) }
    }
}

/// Registers a loaded network (and optimizer) as new handles and writes them out.
private func publish(_ loaded: (network: Network, optimizer: Optimizer?), _ out: UnsafeMutablePointer<OpaquePointer?>,
                     _ optimizerOut: UnsafeMutablePointer<OpaquePointer?>?) {
    out.pointee = OpaquePointer(Registry.register(Handle(network: loaded.network)))
    if let optimizerOut {
        optimizerOut.pointee = loaded.optimizer.map { OpaquePointer(Registry.register(Handle(optimizer: OptimizerHandle($0)))) }
    }
}

/// A path from C. Linux paths are bytes; ones that are not UTF-8 are refused rather than
/// silently changed into another path.
private func cPath(_ path: UnsafePointer<CChar>?) throws -> String {
    guard let path else { throw BoundaryError.invalidArgument("path is NULL") }
    guard let text = String(validatingCString: path) else {
        throw BoundaryError.invalidArgument("path is not valid UTF-8")
    }
    return text
}

// MARK: - Data files

/// `bp_csv_options` from backprop.h, field for field.
struct CCSVOptions {
    var size: UInt
    var delimiter: CChar
    var hasHeader: Int32
    var hasLabel: Int32
    var labelColumn: Int64
    var maxBytes: UInt

    init(_ o: CSVOptions) {
        size = UInt(MemoryLayout<CCSVOptions>.size)
        delimiter = CChar(bitPattern: o.delimiter)
        hasHeader = o.hasHeader ? 1 : 0
        hasLabel = o.labelColumn == nil ? 0 : 1
        labelColumn = Int64(o.labelColumn ?? -1)
        maxBytes = UInt(o.maxBytes)
    }

    var options: CSVOptions {
        var o = CSVOptions()
        o.delimiter = UInt8(bitPattern: delimiter)
        o.hasHeader = hasHeader != 0
        o.labelColumn = hasLabel != 0 ? Int(labelColumn) : nil
        o.maxBytes = Int(clamping: maxBytes)
        return o
    }
}

@_cdecl("bp_csv_options_default")
public func bp_csv_options_default(_ out: UnsafeMutableRawPointer?) -> Int32 {
    guarded(#function) {
        guard let out else { throw BoundaryError.invalidArgument("out is NULL") }
        out.storeBytes(of: CCSVOptions(CSVOptions()), as: CCSVOptions.self)
    }
}

@_cdecl("bp_dataset_load_csv")
public func bp_dataset_load_csv(_ path: UnsafePointer<CChar>?, _ options: UnsafeRawPointer?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded(#function) {
        let out = try required(out, "out")
        let path = try cPath(path)
        var settings = CSVOptions()
        if let options {
            let declared = options.load(as: UInt.self)
            guard declared >= UInt(MemoryLayout<CCSVOptions>.size) else {
                throw BoundaryError.invalidArgument("options->size is \(declared): fill the struct with bp_csv_options_default first")
            }
            settings = options.load(as: CCSVOptions.self).options
        }
        let dataset = try Dataset.loadCSV(path: path, options: settings)
        out.pointee = OpaquePointer(Registry.register(Handle(dataset: dataset)))
    }
}

@_cdecl("bp_dataset_free")
public func bp_dataset_free(_ dataset: OpaquePointer?) -> Int32 {
    freeHandle(dataset, "bp_dataset", #function, \.dataset)
}

@_cdecl("bp_dataset_size")
public func bp_dataset_size(_ dataset: OpaquePointer?, _ rows: UnsafeMutablePointer<UInt>?,
                            _ features: UnsafeMutablePointer<UInt>?) -> Int32 {
    withDataset(dataset) { data in
        rows?.pointee = UInt(data.rows)
        features?.pointee = UInt(data.featureCount)
    }
}

@_cdecl("bp_dataset_features")
public func bp_dataset_features(_ dataset: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ count: UInt) -> Int32 {
    withDataset(dataset) { try $0.features(into: mutableBuffer(out, count, "out")) }
}

@_cdecl("bp_dataset_labels")
public func bp_dataset_labels(_ dataset: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?, _ count: UInt) -> Int32 {
    withDataset(dataset) { try $0.labels(into: mutableBuffer(out, count, "out")) }
}

@_cdecl("bp_dataset_targets")
public func bp_dataset_targets(_ dataset: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ count: UInt) -> Int32 {
    withDataset(dataset) { try $0.floatTargets(into: mutableBuffer(out, count, "out")) }
}

/// Datasets are read-only once loaded, so calls on one need no lock: any number of threads may
/// read the same dataset at once. The lookup keeps the dataset alive during the call even if
/// another thread frees the handle meanwhile.
private func withDataset(_ pointer: OpaquePointer?, _ function: StaticString = #function,
                         _ body: (Dataset) throws -> Void) -> Int32 {
    guarded(function) {
        guard let pointer else { throw BoundaryError.invalidHandle("the bp_dataset handle is NULL") }
        guard let handle = Registry.lookup(pointer) else {
            throw BoundaryError.invalidHandle("\(pointer) is not a live bp_dataset handle (freed, or never created by this library)")
        }
        guard let dataset = handle.object.dataset else {
            throw BoundaryError.invalidHandle("\(pointer) is a \(handle.kindName) handle, not a bp_dataset")
        }
        try body(dataset)
    }
}
