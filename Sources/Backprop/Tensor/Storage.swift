import Glibc

/// Zero-filled, 64-byte aligned memory for `count` elements of one dtype. Allocation goes through
/// `posix_memalign` so that a failure is reported as an error instead of ending the process.
final class Storage {
    let pointer: UnsafeMutableRawPointer
    let count: Int
    let dtype: DType

    init(count: Int, dtype: DType) throws {
        let bytes = max(count, 1) * dtype.size  // Shape keeps count * 8 from overflowing
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            throw BackpropError.outOfMemory("could not allocate \(bytes) bytes")
        }
        memset(raw, 0, bytes)
        self.pointer = raw
        self.count = count
        self.dtype = dtype
    }

    deinit { free(pointer) }

    func typed<T: Scalar>(_: T.Type = T.self) -> UnsafeMutablePointer<T> {
        pointer.assumingMemoryBound(to: T.self)
    }

    func zero() { memset(pointer, 0, count * dtype.size) }
    func zero(_ elements: Range<Int>) {
        memset(pointer + elements.lowerBound * dtype.size, 0, elements.count * dtype.size)
    }
}

/// Where a node's values (or gradients) live: a whole storage block, or a range inside the
/// graph's flat parameter block.
struct Slot {
    var storage: Storage
    var offset: Int

    var pointer: UnsafeMutableRawPointer { storage.pointer + offset * storage.dtype.size }
}
