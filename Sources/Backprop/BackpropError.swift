/// What the core throws. Each case carries a message meant for the person calling the library;
/// the C layer maps the case to a `bp_status` and the message to `bp_last_error()`.
public enum BackpropError: Error, Equatable, CustomStringConvertible {
    /// An argument the caller can fix: a wrong count, an unknown option, an invalid label.
    case invalidArgument(String)
    /// Shapes that an op cannot combine.
    case shape(String)
    /// A call out of order, such as backward before forward.
    case state(String)
    /// NaN or infinity where a finite number is required.
    case nonFinite(String)
    /// An allocation failed, or a size does not fit in memory's address range.
    case outOfMemory(String)
    /// A file could not be opened, read or written.
    case io(String)
    /// A checkpoint or data file that is malformed, truncated or inconsistent.
    case format(String)

    public var message: String {
        switch self {
        case .invalidArgument(let m), .shape(let m), .state(let m), .nonFinite(let m),
             .outOfMemory(let m), .io(let m), .format(let m):
            m
        }
    }

    public var description: String { message }
}
