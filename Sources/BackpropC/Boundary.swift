import Backprop

/// The shape of every exported function: look up and lock the handle, run the body, and turn
/// any thrown error into a status and a thread-local message. The body validates its own
/// arguments before touching anything, so a failure changes nothing.
func withGraph(_ pointer: OpaquePointer?, _ function: StaticString = #function,
               _ body: (Graph) throws -> Void) -> Int32 {
    guarded(function) { try locked(pointer, "bp_graph", \.graph) { try body($0) } }
}

func withNetwork(_ pointer: OpaquePointer?, _ function: StaticString = #function,
                 _ body: (Network) throws -> Void) -> Int32 {
    guarded(function) { try locked(pointer, "bp_net", \.network) { try body($0) } }
}

func withNetworkHandle(_ pointer: OpaquePointer?, _ function: StaticString = #function,
                       _ body: (Handle) throws -> Void) -> Int32 {
    guarded(function) { try lockedHandle(pointer, "bp_net", \.network, body) }
}

func withOptimizer(_ pointer: OpaquePointer?, _ function: StaticString = #function,
                   _ body: (OptimizerHandle) throws -> Void) -> Int32 {
    guarded(function) { try locked(pointer, "bp_optimizer", \.optimizer) { try body($0) } }
}

/// Looks up a handle of the kind `extract` accepts, holds its lock during `body`, and passes
/// the object. Calls nest to hold two handles at once (an optimizer and a network, say).
func locked<T>(_ pointer: OpaquePointer?, _ kind: String, _ extract: (Handle.Object) -> T?,
               _ body: (T) throws -> Void) throws {
    try lockedHandle(pointer, kind, extract) { try body(extract($0.object)!) }
}

private func lockedHandle<T>(_ pointer: OpaquePointer?, _ kind: String, _ extract: (Handle.Object) -> T?,
                             _ body: (Handle) throws -> Void) throws {
    guard let pointer else { throw BoundaryError.invalidHandle("the \(kind) handle is NULL") }
    guard let handle = Registry.lookup(pointer) else {
        throw BoundaryError.invalidHandle("\(pointer) is not a live \(kind) handle (freed, or never created by this library)")
    }
    guard extract(handle.object) != nil else {
        throw BoundaryError.invalidHandle("\(pointer) is a \(handle.kindName) handle, not a \(kind)")
    }
    try handle.lock.acquire()
    defer { handle.lock.release() }
    try body(handle)
}

/// Frees a handle of the kind `extract` accepts (NULL is a no-op), together with the handles it
/// owns. A borrowed handle is refused.
func freeHandle<T>(_ pointer: OpaquePointer?, _ kind: String, _ function: StaticString,
                   _ extract: (Handle.Object) -> T?) -> Int32 {
    guard pointer != nil else { return Status.ok.rawValue }
    return guarded(function) {
        guard let handle = Registry.lookup(pointer), extract(handle.object) != nil else {
            throw BoundaryError.invalidHandle("not a live \(kind) handle (already freed, or never created by this library)")
        }
        guard !handle.isBorrowed else {
            throw BoundaryError.invalidHandle("this \(kind) belongs to a network: free the network instead")
        }
        try handle.lock.acquire()
        handle.lock.markFreed()
        if let graphHandle = handle.graphHandle { Registry.remove(graphHandle) }
        Registry.remove(handle)
        handle.lock.release()
    }
}

/// Runs `body`, returning BP_OK or the status of what it threw.
func guarded(_ function: StaticString, _ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return Status.ok.rawValue
    } catch {
        return report(error, in: cName("\(function)"))
    }
}

/// "bp_graph_add(_:_:_:_:)" → "bp_graph_add", for messages.
private func cName(_ function: String) -> String {
    String(function.prefix { $0 != "(" })
}

// MARK: - Argument checks

/// The pointee of a required out-pointer, or an error naming it.
func required<T>(_ pointer: UnsafeMutablePointer<T>?, _ name: StaticString) throws -> UnsafeMutablePointer<T> {
    guard let pointer else { throw BoundaryError.invalidArgument("\(name) is NULL") }
    return pointer
}

func required<T>(_ pointer: UnsafePointer<T>?, _ name: StaticString) throws -> UnsafePointer<T> {
    guard let pointer else { throw BoundaryError.invalidArgument("\(name) is NULL") }
    return pointer
}

/// A caller's buffer of `count` elements; NULL is refused even when the count is 0.
func buffer<T>(_ pointer: UnsafePointer<T>?, _ count: UInt, _ name: StaticString) throws -> UnsafeBufferPointer<T> {
    UnsafeBufferPointer(start: try required(pointer, name), count: try bufferCount(count, name))
}

func mutableBuffer<T>(_ pointer: UnsafeMutablePointer<T>?, _ count: UInt, _ name: StaticString) throws -> UnsafeMutableBufferPointer<T> {
    UnsafeMutableBufferPointer(start: try required(pointer, name), count: try bufferCount(count, name))
}

/// Names are static strings so that the common, successful path builds no String.
private func bufferCount(_ count: UInt, _ name: StaticString) throws -> Int {
    guard let result = Int(exactly: count) else {
        throw BoundaryError(status: .outOfMemory, message: "\(name) count \(count) is too large to allocate")
    }
    return result
}

/// An element count from C as a Swift Int. One beyond Int.max is a size no memory can hold:
/// reported as out of memory, as every size too large to represent is.
func elementCount(_ value: UInt, _ name: StaticString) throws -> Int {
    try size(value, name)
}

/// A size from C (units, a batch, a width) as a Swift Int. One beyond Int.max is a size no
/// memory can hold, so it is reported as out of memory, like any size too large to allocate.
func size(_ value: UInt, _ name: StaticString) throws -> Int {
    guard let result = Int(exactly: value) else {
        throw BoundaryError(status: .outOfMemory, message: "\(name) \(value) is too large to allocate")
    }
    return result
}

/// A C enum value as its Swift case, or an error listing the valid ones.
func enumValue<E: RawRepresentable & CaseIterable>(_ raw: Int32, _ name: String) throws -> E where E.RawValue == Int32 {
    guard let value = E(rawValue: raw) else {
        let valid = E.allCases.map { String($0.rawValue) }.joined(separator: ", ")
        throw BoundaryError.invalidArgument("unknown \(name) \(raw) (valid: \(valid))")
    }
    return value
}

/// A shape from a C array of `rank` sizes.
func shape(_ dims: UnsafePointer<UInt>?, _ rank: UInt) throws -> Shape {
    guard rank <= UInt(Shape.maxRank) else {
        throw BoundaryError.invalidArgument("rank \(rank) is larger than BP_MAX_RANK (\(Shape.maxRank))")
    }
    if rank == 0 { return .scalar }
    let dims = try required(dims, "shape")
    return try Shape((0..<Int(rank)).map { Int(exactly: dims[$0]) ?? Int.max })
}
