import BackpropKernels
import CBLAS

/// How many threads the library's products use. A product on more than one thread is cut into
/// ranges of its output, run on the library's own worker threads (thread_pool.c, split_gemm.c)
/// by its own kernel or by OpenBLAS, which is kept at one thread: OpenBLAS's own threading
/// allocates for every product. The core's elementwise loops run on the calling thread.
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
}
