import CBLAS

/// How many threads the library's kernels use: BLAS's own thread pool. With one, most float32
/// products run in the library's own kernel (packed_gemm.c); the core's elementwise loops
/// always run on the calling thread.
public enum Parallelism {
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// Sets the thread count, clamped to `availableCPUs`: more threads than CPUs only wait for
    /// each other, and OpenBLAS, when it cannot create the threads it is asked for (under a cap
    /// on the address space), spins forever in the next product.
    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(clamping: min(max(count, 1), availableCPUs)))
    }

    /// The CPUs this process may run on (its affinity mask when BLAS started), at least 1.
    public static var availableCPUs: Int { max(Int(openblas_get_num_procs()), 1) }
}
