/// The element type of a graph's values and gradients.
public enum DType: Int32, Sendable, CaseIterable {
    case float32 = 0
    case float64 = 1

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float32: MemoryLayout<Float>.size
        case .float64: MemoryLayout<Double>.size
        }
    }

    public var name: String {
        switch self {
        case .float32: "float32"
        case .float64: "float64"
        }
    }
}
