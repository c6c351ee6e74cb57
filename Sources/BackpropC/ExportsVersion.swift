import Backprop

// Version and errors: these never fail.

let versionMajor: UInt32 = 0, versionMinor: UInt32 = 1, versionPatch: UInt32 = 0

@_cdecl("bp_version")
public func bp_version() -> UnsafePointer<CChar> {
    cString("0.1.0")
}

@_cdecl("bp_version_number")
public func bp_version_number() -> UInt32 {
    versionMajor * 10000 + versionMinor * 100 + versionPatch
}

@_cdecl("bp_status_string")
public func bp_status_string(_ status: Int32) -> UnsafePointer<CChar> {
    guard let known = Status(rawValue: status) else { return cString("unknown status") }
    return cString(known.cString)
}

@_cdecl("bp_last_error")
public func bp_last_error() -> UnsafePointer<CChar> {
    LastError.current
}

/// A static string's bytes as a C string; StaticString literals are NUL-terminated.
func cString(_ string: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(string.utf8Start).assumingMemoryBound(to: CChar.self)
}

// Library-wide settings.

@_cdecl("bp_set_num_threads")
public func bp_set_num_threads(_ threads: Int32) -> Int32 {
    guarded(#function) {
        guard threads >= 1 else { throw BoundaryError.invalidArgument("threads must be at least 1, got \(threads)") }
        Parallelism.setThreadCount(Int(threads))
    }
}

@_cdecl("bp_get_num_threads")
public func bp_get_num_threads() -> Int32 {
    Int32(Parallelism.threadCount)
}
