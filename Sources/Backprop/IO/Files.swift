import Glibc
import Synchronization

/// Reading byte ranges from a file or from memory, and writing files atomically.
///
/// Failures of the operating system are `BackpropError.io`, with the path and the system's
/// message; data that ends early is `BackpropError.format`.

/// Bytes that can be read by range: a caller's buffer or an open file.
protocol ByteSource {
    /// The total number of bytes.
    var count: Int { get }
    /// Copies bytes `range` (within 0..<count) to `destination`.
    func read(_ range: Range<Int>, into destination: UnsafeMutableRawPointer) throws
}

struct MemorySource: ByteSource {
    let bytes: UnsafeRawBufferPointer

    var count: Int { bytes.count }

    func read(_ range: Range<Int>, into destination: UnsafeMutableRawPointer) throws {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else {
            throw BackpropError.format("read of bytes \(range) past the end of \(bytes.count) bytes")
        }
        guard !range.isEmpty else { return }
        destination.copyMemory(from: bytes.baseAddress! + range.lowerBound, byteCount: range.count)
    }
}

/// A regular file opened for reading; its size is taken once, when it is opened.
final class FileSource: ByteSource {
    let path: String
    let count: Int
    private let fd: Int32

    /// Anything but a regular file is refused. The file is opened with O_NONBLOCK, so that a
    /// FIFO without a writer (whose open(2) would wait for one forever) is refused like the rest;
    /// on a regular file the flag changes nothing.
    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw BackpropError.io("cannot open \(path): \(systemError())") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let message = systemError()
            close(fd)
            throw BackpropError.io("cannot read \(path): \(message)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw BackpropError.io("cannot read \(path): not a regular file")
        }
        self.path = path
        self.fd = fd
        self.count = Int(info.st_size)
    }

    deinit { close(fd) }

    func read(_ range: Range<Int>, into destination: UnsafeMutableRawPointer) throws {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw BackpropError.format("read of bytes \(range) past the end of \(path) (\(count) bytes)")
        }
        var done = 0
        while done < range.count {
            let n = pread(fd, destination + done, range.count - done, off_t(range.lowerBound + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw BackpropError.io("cannot read \(path): \(systemError())")
            }
            if n == 0 {
                throw BackpropError.format("\(path) ended after \(range.lowerBound + done) bytes, expected \(count) (did it change while being read?)")
            }
            done += n
        }
    }

    /// The whole file, for readers that parse everything anyway (CSV).
    func readAll() throws -> CheckedArray<UInt8> {
        let bytes = try CheckedArray<UInt8>(zeros: count)
        if count > 0 { try read(0..<count, into: bytes.pointer) }
        return bytes
    }
}

/// The message of the current `errno`.
func systemError() -> String {
    String(cString: strerror(errno))
}

/// Writes a file so that readers see either the old contents or the new, never a mix: the
/// bytes go to a new temporary file in the same directory, which is flushed to disk (fsync) and
/// then renamed over the target. If anything fails, the temporary file is removed and the
/// previous file at `path` is left as it was.
enum AtomicFile {
    /// Runs `write` with a function that appends bytes to the temporary file, then commits it.
    static func write(to path: String, _ body: (_ append: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        guard !path.isEmpty else { throw BackpropError.io("cannot write to an empty path") }
        let target = try resolvedTarget(path)
        let (fd, temporary) = try createTemporary(next: target)
        var committed = false
        defer {
            if !committed { unlink(temporary) }
        }
        do {
            try body { chunk in try writeAll(fd, chunk, path: path) }
            guard fsync(fd) == 0 else { throw BackpropError.io("cannot write \(path): \(systemError())") }
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw BackpropError.io("cannot write \(path): \(systemError())") }
        guard rename(temporary, target) == 0 else {
            throw BackpropError.io("cannot replace \(path): \(systemError())")
        }
        committed = true
        syncDirectory(of: target)
    }

    /// The path to replace: `path` itself, or the file a symbolic link at `path` points to, so
    /// that saving through a link updates the file and keeps the link. Anything other than a
    /// regular file (a directory, a device such as /dev/full) is refused.
    private static func resolvedTarget(_ path: String) throws -> String {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            guard errno == ENOENT else { throw BackpropError.io("cannot write \(path): \(systemError())") }
            return path  // a new file
        }
        var target = path
        if (info.st_mode & S_IFMT) == S_IFLNK {
            guard let resolved = realpath(path, nil) else {
                throw BackpropError.io("cannot write \(path): \(systemError())")
            }
            target = String(cString: resolved)
            free(resolved)
            guard stat(target, &info) == 0 else { throw BackpropError.io("cannot write \(path): \(systemError())") }
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw BackpropError.io("cannot write \(path): it exists and is not a regular file")
        }
        return target
    }

    private static let counter = AtomicCounter()

    /// Creates "<target>.tmp-<pid>-<n>" exclusively (O_EXCL), mode 0666 less the umask.
    private static func createTemporary(next target: String) throws -> (Int32, String) {
        for _ in 0..<100 {
            let name = "\(target).tmp-\(getpid())-\(counter.next())"
            let fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 { return (fd, name) }
            if errno != EEXIST { throw BackpropError.io("cannot write \(target): \(systemError())") }
        }
        throw BackpropError.io("cannot write \(target): could not create a temporary file beside it")
    }

    private static func writeAll(_ fd: Int32, _ chunk: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < chunk.count {
            let n = Glibc.write(fd, chunk.baseAddress! + done, chunk.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw BackpropError.io("cannot write \(path): \(systemError())")
            }
            done += n
        }
    }

    /// Flushes the directory entry of the rename; a failure here cannot undo the rename, and
    /// the data itself is already on disk, so it is not reported.
    private static func syncDirectory(of path: String) {
        let directory: String
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            directory = "."
        }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }
}

/// A process-wide counter for unique temporary names.
final class AtomicCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).newValue }
}
