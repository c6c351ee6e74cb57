import Glibc

/// An array of plain values in `malloc`ed memory, for any size a caller or a file decides: when
/// memory runs out it throws `BackpropError.outOfMemory`, where a Swift `Array` (and
/// `UnsafeMutableBufferPointer.allocate`) would end the process.
final class CheckedArray<Element: BitwiseCopyable> {
    private(set) var pointer: UnsafeMutablePointer<Element>
    private(set) var count: Int
    private var capacity: Int

    /// `count` zeros (`calloc`: the pages of a large block stay untouched until written).
    init(zeros count: Int) throws {
        guard count >= 0, let raw = calloc(max(count, 1), MemoryLayout<Element>.stride) else {
            throw Self.failure(count)
        }
        pointer = raw.bindMemory(to: Element.self, capacity: max(count, 1))
        self.count = count
        capacity = max(count, 1)
    }

    /// An empty array that grows with `append`.
    convenience init() throws { try self.init(zeros: 0) }

    deinit { free(pointer) }

    /// A reused buffer sized by each call (a batch): `existing` when it holds `count` elements,
    /// else new zeros. The old one is released first, so the two never take memory together;
    /// on failure `existing` is nil and the error is thrown.
    static func resize(_ existing: inout CheckedArray?, to count: Int) throws -> CheckedArray {
        if let existing, existing.count == count { return existing }
        existing = nil
        let resized = try CheckedArray(zeros: count)
        existing = resized
        return resized
    }

    var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    subscript(index: Int) -> Element {
        get { buffer[index] }
        set { buffer[index] = newValue }
    }

    /// Appends `value`, doubling the capacity when it is full; on failure nothing changes.
    func append(_ value: Element) throws {
        if count == capacity {
            let (doubled, overflow) = capacity.multipliedReportingOverflow(by: 2)
            let (bytes, tooLarge) = doubled.multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
            guard !overflow, !tooLarge, let raw = realloc(pointer, bytes) else {
                throw Self.failure(overflow ? Int.max : doubled)
            }
            pointer = raw.bindMemory(to: Element.self, capacity: doubled)
            capacity = doubled
        }
        pointer[count] = value
        count += 1
    }

    private static func failure(_ count: Int) -> BackpropError {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        return .outOfMemory("could not allocate \(overflow ? "more than \(Int.max)" : "\(bytes)") bytes")
    }
}
