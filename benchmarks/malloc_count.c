/*
 * malloc_count.c: counts heap allocations of a whole process, for the benchmark's
 * "allocations per training step" figure.
 *
 * Built as a shared object and loaded with LD_PRELOAD, it defines malloc and its relatives. The
 * dynamic linker resolves every library's malloc to the first definition in load order, so the
 * calls of the Swift runtime inside libbackprop, of libstdc++ (operator new ends in malloc), of
 * OpenBLAS and of its threads all land here. Each definition bumps a counter and forwards to
 * glibc's own allocator through its exported __libc_* entry points, so blocks stay ordinary
 * glibc blocks (free, realloc and malloc_usable_size keep working on them) and no dlsym
 * bootstrap is needed. The counters are read through bench_alloc_counts(), which the benchmark
 * looks up with dlsym(RTLD_DEFAULT, ...): a program run without the shim finds no such symbol
 * and reports that it cannot count.
 *
 * Counted as allocations: malloc, calloc, realloc with a non-zero size, and the aligned forms
 * (posix_memalign, aligned_alloc, memalign, valloc, pvalloc). Frees are counted separately.
 * Counters are atomic: OpenBLAS threads may allocate at the same time as the caller.
 *
 * To find where allocations come from, bench_alloc_trace(n) makes the next n allocations print
 * a backtrace to stderr (glibc's backtrace_symbols_fd; pipe through `swift demangle`). The
 * benchmark's alloc mode calls it after the first step when BENCH_ALLOC_TRACE=n is set.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);
extern void __libc_free(void *pointer);

static uint64_t allocations;
static uint64_t allocated_bytes;
static uint64_t frees;

static int64_t traces_left;
static _Thread_local int tracing; /* backtrace() itself may allocate: no recursion */

static void trace(size_t size) {
    if (tracing || __atomic_load_n(&traces_left, __ATOMIC_RELAXED) <= 0) return;
    if (__atomic_fetch_sub(&traces_left, 1, __ATOMIC_RELAXED) <= 0) return;
    tracing = 1;
    void *frames[32];
    int depth = backtrace(frames, 32);
    char line[64];
    int n = snprintf(line, sizeof line, "allocation of %zu bytes:\n", size);
    if (n > 0) (void)!write(2, line, (size_t)n);
    backtrace_symbols_fd(frames, depth, 2);
    tracing = 0;
}

static void count(size_t size) {
    __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&allocated_bytes, (uint64_t)size, __ATOMIC_RELAXED);
    trace(size);
}

/* The next `n` allocations print a backtrace to stderr. */
__attribute__((visibility("default"))) void bench_alloc_trace(int64_t n) {
    __atomic_store_n(&traces_left, n, __ATOMIC_RELAXED);
}

/* Allocation calls, bytes asked for, and frees of non-NULL pointers since the process started. */
__attribute__((visibility("default"))) void bench_alloc_counts(uint64_t *calls, uint64_t *bytes,
                                                                 uint64_t *free_calls) {
    if (calls) *calls = __atomic_load_n(&allocations, __ATOMIC_RELAXED);
    if (bytes) *bytes = __atomic_load_n(&allocated_bytes, __ATOMIC_RELAXED);
    if (free_calls) *free_calls = __atomic_load_n(&frees, __ATOMIC_RELAXED);
}

void *malloc(size_t size) {
    count(size);
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
    count(n * size);
    return __libc_calloc(n, size);
}

void *realloc(void *pointer, size_t size) {
    if (size != 0) count(size);
    return __libc_realloc(pointer, size);
}

void free(void *pointer) {
    if (pointer) __atomic_fetch_add(&frees, 1, __ATOMIC_RELAXED);
    __libc_free(pointer);
}

void *memalign(size_t alignment, size_t size) {
    count(size);
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count(size);
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    count(size);
    void *pointer = __libc_memalign(alignment, size);
    if (!pointer) return ENOMEM;
    *out = pointer;
    return 0;
}

void *valloc(size_t size) {
    count(size);
    return __libc_valloc(size);
}

void *pvalloc(size_t size) {
    count(size);
    return __libc_pvalloc(size);
}
