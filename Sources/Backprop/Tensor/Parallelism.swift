import CBLAS

/// How many threads the library's kernels use. Today that is BLAS's own thread pool; the
/// core's elementwise loops run on the calling thread.
public enum Parallelism {
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(clamping: count))
    }
}
