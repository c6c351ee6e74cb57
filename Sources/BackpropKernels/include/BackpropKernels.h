// The parts of the core written in C: small loops whose speed depends on the exact code the C
// compiler makes, and the checks around OpenBLAS that need C's view of the process. Internal to
// the library: nothing here is exported from libbackprop.so.
#ifndef BACKPROP_KERNELS_H
#define BACKPROP_KERNELS_H

#include <stdbool.h>

// Products at most this many multiply-adds (m * n * k) go to bpk_sgemm_small rather than BLAS.
#define BPK_SMALL_GEMM_LIMIT 4096

// C = alpha * op(A) * op(B) + beta * C for row-major float matrices, as cblas_sgemm with
// CblasRowMajor: op(A) is m x k, op(B) is k x n, and trans_a / trans_b say that A / B is stored
// transposed. With beta == 0, C is not read (it may hold NaN). Plain loops with no setup, for
// products so small that a BLAS call's fixed cost (argument checks, buffer management, packing)
// would outweigh the arithmetic.
void bpk_sgemm_small(bool trans_a, bool trans_b, long m, long n, long k, float alpha,
                     const float *a, long lda, const float *b, long ldb,
                     float beta, float *c, long ldc);

// Whether a product may go to OpenBLAS with `threads` threads: false while OpenBLAS has not yet
// completed a product with that many threads and a cap on the address space (RLIMIT_AS) leaves
// less room than its buffers need, since it would then retry its reservation forever. After
// each product through OpenBLAS, call bpk_blas_did_run with the thread count it ran with.
bool bpk_blas_has_room(int threads);
void bpk_blas_did_run(int threads);

#endif
