// The parts of the core written in C: small loops whose speed depends on the exact code the C
// compiler makes, and the checks around OpenBLAS that need C's view of the process. Internal to
// the library: nothing here is exported from libbackprop.so.
#ifndef BACKPROP_KERNELS_H
#define BACKPROP_KERNELS_H

#include <stdbool.h>
#include <stddef.h>

// Whether the CPU has AVX2 and FMA; whether it has AVX-512 (avx512f); whether the calling
// thread's kernels use AVX-512: when the CPU has it, unless bpk_allow_avx512(false) said not to
// on this thread (tests run every kernel on one CPU). cpu_features.c.
bool bpk_has_avx2_fma(void);
bool bpk_has_avx512(void);
void bpk_allow_avx512(bool allowed);
bool bpk_avx512_in_use(void);

// The SGD update with momentum of float32 parameters, element by element, in torch.optim's
// formula: buffer = keep * buffer + take * (gradient + weight_decay * parameter), then
// parameter -= learning_rate * buffer. The same bits as that loop written plainly (no fused
// multiply-adds), in AVX-512 or AVX2 where the CPU has them (update_loops.c).
void bpk_sgd_momentum(float *parameters, const float *gradients, float *buffer, long count,
                      float learning_rate, float weight_decay, float keep, float take);

// ReLU's backward pass in a dense layer, for ReLU's output y, upstream and gradient of rows x
// columns (row-major, no padding): stores gradient = 0 + (upstream == 0 ? 0 : upstream * (y > 0
// ? 1 : 0)), the bits of the graph's ReLU backward adding to a zeroed gradient (y > 0 exactly
// where ReLU's input is). Then adds each row of it to bias_gradient (columns floats), rows in
// order: the bits of the bias gradient's column sums. In AVX-512 or AVX2 where the CPU has them
// (activation_loops.c).
void bpk_relu_backward(const float *y, const float *upstream, float *gradient, float *bias_gradient,
                       long rows, long columns);

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

// C = alpha * op(A) * op(B) + beta * C as bpk_sgemm_small, on the calling thread in AVX-512
// where the CPU has it, else in AVX2 and FMA (packed_gemm.c): the same bits either way. With
// beta == 0, C is not read and an exact zero is stored as +0, as BLAS stores it. When `finite`
// is not NULL, *finite tells whether every value stored is finite. Returns false, having done
// nothing, when the CPU lacks AVX2 or FMA, when m, n or k is 0 or alpha is 0, or when there is
// no memory for its buffers (a few MiB per thread, kept for the thread's next products): the
// caller then uses BLAS.
bool bpk_sgemm_packed(bool trans_a, bool trans_b, long m, long n, long k, float alpha,
                      const float *a, long lda, const float *b, long ldb,
                      float beta, float *c, long ldc, bool *finite);
// bpk_sgemm_packed with a dense layer's forward pass folded into its stores. With a bias (n
// floats), C starts from the bias in every row rather than from beta * C, and C is not read:
// the bits of copying the bias into each row of C and running bpk_sgemm_packed with beta 1.
// With relu, relu[i * ldr + j] = max(C(i, j), 0) too, +0 for NaN and -0: the bits of ReLU's op
// on C. That saves the passes that copy the bias and compute ReLU apart from the product.
bool bpk_sgemm_packed_layer(bool trans_a, bool trans_b, long m, long n, long k, float alpha,
                            const float *a, long lda, const float *b, long ldb, float beta, float *c,
                            long ldc, const float *bias, float *relu, long ldr, bool *finite);
// The block of the shared dimension k that bpk_sgemm_packed sums in registers before adding to
// C: k itself when the product sums each value of C as one chain of multiply-adds.
long bpk_sgemm_packed_shared_block(long k);
// The calling thread's buffer for the products' copies and lists, 64-byte aligned, grown to at
// least `floats` floats and kept for the thread's next products (freed when it exits); NULL
// when there is no memory.
float *bpk_thread_workspace(size_t floats);
// C = Aᵀ B, the weight gradient of a dense layer (A is k x m, the upstream gradient; B is k x n,
// the layer's inputs; row-major), skipping A's zeros, on the calling thread in AVX-512 where the
// CPU has it, else in AVX2 and FMA: the bits of bpk_sgemm_packed(true, false, m, n, k, 1, a, lda,
// b, ldb, 0, c, ldc, finite) when every value of B is finite, which the caller must know
// (sparse_gemm.c). Returns false, having stored nothing, where it would not be faster or cannot
// run: without AVX2 and FMA, when k is more than one block of the packed kernel, when C has more
// than 2^18 values, when more than 60% of A is not zero, or without memory.
bool bpk_sgemm_sparse_at(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                         float *c, long ldc, bool *finite);
// Fills the calling thread's packing buffers with NaN. For tests: a product that reads a part
// of them it did not write then shows, where a copy left there by an earlier product of the
// same matrices can hide it.
void bpk_poison_workspace(void);
// Whether this CPU can run bpk_sgemm_packed.
bool bpk_sgemm_packed_available(void);
// Whether bpk_sgemm_packed is the faster choice on one thread for a product with n columns.
bool bpk_sgemm_packed_prefers(bool trans_a, long n);

// Whether a product may go to OpenBLAS with `threads` threads: false while OpenBLAS has not yet
// completed a product with that many threads and a cap on the address space (RLIMIT_AS) leaves
// less room than its buffers need, since it would then retry its reservation forever. After
// each product through OpenBLAS, call bpk_blas_did_run with the thread count it ran with.
bool bpk_blas_has_room(int threads);
void bpk_blas_did_run(int threads);

// The most threads the library runs a product on (bpk_set_threads clamps to it).
#define BPK_MAX_THREADS 64

// The number of threads products may use (thread_pool.c); 1 until bpk_set_threads says more.
int bpk_threads(void);
void bpk_set_threads(int threads);

// Runs work(context, part) for every part in [0, parts) and returns when all have returned:
// part 0 on the calling thread, the others on the library's worker threads (started the first
// time they are needed). When another caller's product holds the workers, or no thread can be
// started, every part runs on the calling thread, one after another. Returns the number of
// threads that ran parts.
int bpk_parallel_for(int parts, void (*work)(void *context, int part), void *context);

// Who computes each part of a split product.
enum bpk_gemm_kernel {
    BPK_OWN_FLOAT,   // bpk_sgemm_packed (the caller checked bpk_sgemm_packed_available)
    BPK_BLAS_FLOAT,  // cblas_sgemm, with OpenBLAS set to one thread
    BPK_BLAS_DOUBLE, // cblas_dgemm, likewise
};

// C = alpha * op(A) * op(B) + beta * C as bpk_sgemm_small (in doubles for BPK_BLAS_DOUBLE, floats
// otherwise), cut into at most `threads` ranges of C's columns (or rows) run by
// bpk_parallel_for (split_gemm.c); products too small to gain run whole on the calling thread.
// For BPK_OWN_FLOAT, when `finite` is not NULL, *finite is true when every value stored was
// checked finite; false when one is not, or when a thread without memory for the kernel's
// buffers computed its part in plain loops, unchecked. Returns the number of threads that ran
// parts.
int bpk_gemm_split(enum bpk_gemm_kernel kernel, int threads, bool trans_a, bool trans_b, long m,
                    long n, long k, double alpha, const void *a, long lda, const void *b, long ldb,
                    double beta, void *c, long ldc, bool *finite);
// bpk_gemm_split for BPK_OWN_FLOAT with a dense layer's forward stores (bpk_sgemm_packed_layer).
int bpk_gemm_split_layer(int threads, bool trans_a, bool trans_b, long m, long n, long k, float alpha,
                         const float *a, long lda, const float *b, long ldb, float beta, float *c,
                         long ldc, const float *bias, float *relu, long ldr, bool *finite);

#endif
