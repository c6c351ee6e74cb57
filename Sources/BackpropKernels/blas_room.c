// Whether OpenBLAS may be called without hanging the process under a cap on its address space.
//
// OpenBLAS reserves a 128 MiB buffer the first time a thread runs a product through it, and when
// the reservation fails (setrlimit(RLIMIT_AS) leaves too little room) blas_memory_alloc retries
// forever. The check below runs until OpenBLAS has completed a product with the current thread
// count (its buffers exist from then on); until then, a cap that leaves too little room sends
// products to plain loops instead. getrlimit costs about half a microsecond, so it is not paid
// on every product.
#include "BackpropKernels.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

// The buffer OpenBLAS reserves per thread (BUFFER_SIZE in Debian's build), and a margin for
// everything else a product may map.
#define BLAS_BUFFER_BYTES (128ull << 20)
#define MARGIN_BYTES (64ull << 20)

// The largest thread count OpenBLAS has completed a product with: its buffers exist.
static atomic_int ready_threads;

// The address space the process maps now (the first field of /proc/self/statm, in pages), read
// without allocating; 0 when it cannot be read.
static unsigned long long address_space_in_use(void) {
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char text[64];
    ssize_t length = read(fd, text, sizeof text - 1);
    close(fd);
    if (length <= 0) {
        return 0;
    }
    text[length] = '\0';
    return strtoull(text, NULL, 10) * (unsigned long long)sysconf(_SC_PAGESIZE);
}

bool bpk_blas_has_room(int threads) {
    if (atomic_load_explicit(&ready_threads, memory_order_relaxed) >= threads) {
        return true;
    }
    struct rlimit limit;
    if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
        return true;
    }
    unsigned long long used = address_space_in_use();
    // The calling thread's buffer and one per OpenBLAS worker.
    unsigned long long needed = (unsigned long long)(threads + 1) * BLAS_BUFFER_BYTES + MARGIN_BYTES;
    return used > 0 && limit.rlim_cur > used && limit.rlim_cur - used >= needed;
}

void bpk_blas_did_run(int threads) {
    int seen = atomic_load_explicit(&ready_threads, memory_order_relaxed);
    while (seen < threads &&
           !atomic_compare_exchange_weak_explicit(&ready_threads, &seen, threads,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}
