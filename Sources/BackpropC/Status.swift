import Backprop

/// The C API's status codes; the values are those of `bp_status` in backprop.h.
enum Status: Int32, CaseIterable {
    case ok = 0
    case invalidArgument = 1
    case invalidHandle = 2
    case shape = 3
    case state = 4
    case busy = 5
    case outOfMemory = 6
    case nonFinite = 7
    case io = 8
    case format = 9
    case `internal` = 10

    /// Static C strings, so `bp_status_string` can return them without owning memory.
    var cString: StaticString {
        switch self {
        case .ok: "BP_OK: success"
        case .invalidArgument: "BP_ERR_INVALID_ARGUMENT: invalid argument"
        case .invalidHandle: "BP_ERR_INVALID_HANDLE: invalid handle or node"
        case .shape: "BP_ERR_SHAPE: shape mismatch"
        case .state: "BP_ERR_STATE: call out of order"
        case .busy: "BP_ERR_BUSY: handle in use by another thread"
        case .outOfMemory: "BP_ERR_OUT_OF_MEMORY: out of memory"
        case .nonFinite: "BP_ERR_NONFINITE: NaN or infinity"
        case .io: "BP_ERR_IO: input/output error"
        case .format: "BP_ERR_FORMAT: malformed data"
        case .internal: "BP_ERR_INTERNAL: internal error"
        }
    }
}

/// A failure detected at the boundary, before the core is called.
struct BoundaryError: Error {
    let status: Status
    let message: String

    static func invalidArgument(_ message: String) -> BoundaryError { .init(status: .invalidArgument, message: message) }
    static func invalidHandle(_ message: String) -> BoundaryError { .init(status: .invalidHandle, message: message) }
    static func busy(_ message: String) -> BoundaryError { .init(status: .busy, message: message) }
}

/// Records `error` as the thread's last error and returns its status.
func report(_ error: Error, in function: String) -> Int32 {
    let (status, message): (Status, String) = switch error {
    case let e as BoundaryError: (e.status, e.message)
    case let e as BackpropError: (status(of: e), e.message)
    default: (.internal, "unexpected error: \(error)")
    }
    LastError.set("\(function): \(message)")
    return status.rawValue
}

private func status(of error: BackpropError) -> Status {
    switch error {
    case .invalidArgument: .invalidArgument
    case .shape: .shape
    case .state: .state
    case .nonFinite: .nonFinite
    case .outOfMemory: .outOfMemory
    case .io: .io
    case .format: .format
    }
}
