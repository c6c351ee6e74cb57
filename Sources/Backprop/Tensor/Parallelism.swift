import BackpropKernels
import CBLAS

/// How many threads the library's products use. A product on more than one thread is cut into
/// ranges of its output, run on the library's own worker threads (thread_pool.c, split_gemm.c)
/// by its own kernel or by OpenBLAS, which is kept at one thread: OpenBLAS's own threading
/// allocates for every product. Of the elementwise loops, an optimizer's update is cut the same
/// way (`forEachRange`); the rest run on the calling thread.
public enum Parallelism {
    public static var threadCount: Int {
        _ = takeOverFromBLAS
        return Int(bpk_threads())
    }

    /// Sets the thread count, clamped to `availableCPUs`: more threads than CPUs only wait for
    /// each other.
    public static func setThreadCount(_ count: Int) {
        _ = takeOverFromBLAS
        bpk_set_threads(Int32(clamping: min(max(count, 1), availableCPUs)))
    }

    /// The CPUs this process may run on (its affinity mask when BLAS started), at least 1.
    public static var availableCPUs: Int { max(Int(openblas_get_num_procs()), 1) }

    /// On first use, the library starts with the thread count OpenBLAS chose (one per CPU, or
    /// what OPENBLAS_NUM_THREADS says), and OpenBLAS runs on one thread from then on.
    private static let takeOverFromBLAS: Void = {
        bpk_set_threads(Int32(clamping: min(max(Int(openblas_get_num_threads()), 1), availableCPUs)))
        openblas_set_num_threads(1)
    }()

    /// Runs `loop` on consecutive ranges that cover 0..<count, at once on the library's threads
    /// when each range gets at least `minimumPerRange` elements, else on the calling thread as
    /// one range. Ranges start at multiples of 16 (a cache line of floats), so that no two
    /// threads write one line.
    ///
    /// A protocol rather than a closure: a closure handed to other threads must be made
    /// escaping, and the context of one that captures allocates. The loop is passed by address
    /// with a function that captures nothing (the loop's type is known where it is made: no
    /// context to allocate, and `run` is the specialized one, not a generic witness).
    @inline(__always)
    static func forEachRange<Loop: RangeLoop>(_ count: Int, minimumPerRange: Int, _ loop: Loop) {
        let parts = count < 2 * minimumPerRange ? 1 : min(threadCount, count / max(minimumPerRange, 1))
        guard parts > 1 else {
            loop.run(0..<count)
            return
        }
        withUnsafePointer(to: loop) { loop in
            var job = RangeJob(loop: UnsafeRawPointer(loop), count: count, parts: parts) { loop, range in
                loop.assumingMemoryBound(to: Loop.self).pointee.run(range)
            }
            withUnsafeMutablePointer(to: &job) { job in
                _ = bpk_parallel_for(Int32(parts), { context, part in
                    let job = context!.assumingMemoryBound(to: RangeJob.self)
                    job.pointee.run(job.pointee.loop, job.pointee.range(Int(part)))
                }, job)
            }
        }
    }
}

/// Work over a range of elements that may run on several threads at once for disjoint ranges.
protocol RangeLoop {
    func run(_ range: Range<Int>)
}

/// What each thread of `Parallelism.forEachRange` needs: the loop and where its range lies.
private struct RangeJob {
    let loop: UnsafeRawPointer
    let count, parts: Int
    let run: (UnsafeRawPointer, Range<Int>) -> Void

    func range(_ part: Int) -> Range<Int> {
        func start(_ part: Int) -> Int { min(count * part / parts / 16 * 16, count) }
        return start(part)..<(part == parts - 1 ? count : start(part + 1))
    }
}
