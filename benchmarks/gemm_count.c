/*
 * gemm_count.c: counts the matrix products a process makes, for the benchmark's "GEMMs per
 * training step" figure (which shows work a step does beyond the GEMMs it needs).
 *
 * Loaded with LD_PRELOAD (next to malloc_count.so), it defines cblas_sgemm: libbackprop's calls
 * bind to it, and it counts the call and its 2*m*n*k floating-point operations, then calls the
 * real cblas_sgemm (dlsym RTLD_NEXT). bench_gemm_counts() reads the counters; the benchmark finds
 * it with dlsym(RTLD_DEFAULT, ...). With BENCH_GEMM_TRACE=n set, the first n calls after
 * bench_gemm_trace() print their shapes to stderr.
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*sgemm_fn)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE,
                         const enum CBLAS_TRANSPOSE, const blasint, const blasint, const blasint,
                         const float, const float *, const blasint, const float *, const blasint,
                         const float, float *, const blasint);

static uint64_t calls;
static uint64_t flops;
static int64_t traces_left;

__attribute__((visibility("default"))) void bench_gemm_counts(uint64_t *out_calls,
                                                                uint64_t *out_flops) {
    if (out_calls) *out_calls = __atomic_load_n(&calls, __ATOMIC_RELAXED);
    if (out_flops) *out_flops = __atomic_load_n(&flops, __ATOMIC_RELAXED);
}

/* The next `n` calls print their shapes to stderr. */
__attribute__((visibility("default"))) void bench_gemm_trace(int64_t n) {
    __atomic_store_n(&traces_left, n, __ATOMIC_RELAXED);
}

static const char *transpose_name(enum CBLAS_TRANSPOSE t) { return t == CblasNoTrans ? "N" : "T"; }

void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE transa,
                 const enum CBLAS_TRANSPOSE transb, const blasint m, const blasint n,
                 const blasint k, const float alpha, const float *a, const blasint lda,
                 const float *b, const blasint ldb, const float beta, float *c, const blasint ldc) {
    static sgemm_fn real;
    if (!real) {
        void *symbol = dlsym(RTLD_NEXT, "cblas_sgemm");
        if (!symbol) {
            fputs("gemm_count: no cblas_sgemm to forward to\n", stderr);
            abort();
        }
        *(void **)(&real) = symbol;
    }
    __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&flops, 2 * (uint64_t)m * (uint64_t)n * (uint64_t)k, __ATOMIC_RELAXED);
    if (__atomic_load_n(&traces_left, __ATOMIC_RELAXED) > 0 &&
        __atomic_fetch_sub(&traces_left, 1, __ATOMIC_RELAXED) > 0)
        fprintf(stderr, "sgemm %s%s m=%d n=%d k=%d alpha=%g beta=%g\n", transpose_name(transa),
                transpose_name(transb), (int)m, (int)n, (int)k, (double)alpha, (double)beta);
    real(order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
