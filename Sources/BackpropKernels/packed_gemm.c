// Single-thread float matrix products for CPUs with AVX2 and FMA, in the blocked layout of
// BLIS (Van Zee and van de Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS
// Functionality", ACM TOMS 2015): op(B) is copied into panels of 16 columns that stay in cache
// while a 6 x 16 block of C is summed in twelve registers. Operands already laid out as the
// kernel reads them are read in place, which saves the copy and its memory.
//
// Inside a training step it runs the products at least as fast as OpenBLAS 0.3.21's kernel
// for this CPU family, except those with a row-major A and 1024 or more columns
// (bpk_sgemm_packed_prefers; benchmarks/results_limits.md). What a kernel of our own adds is
// the moment a block of C sits in registers: there a weight gradient is checked for NaN and
// infinity as it is stored, and stored without zeroing the buffer first, which saves a
// training step two passes over its largest gradients.
#include "BackpropKernels.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define MR 6    // rows of C a kernel call sums
#define NR 16   // columns of C a kernel call sums: two 8-float registers
#define KC 256  // shared-dimension block: a 16-column panel of B is 16 KiB, in L1
#define MC 96   // rows of op(A) copied at a time when A is stored transposed (96 KiB, in L2)
#define NC 2048 // columns of op(B) copied at a time (2 MiB at most, in L3)

#define AVX2_FMA __attribute__((target("avx2,fma")))

static long min_long(long x, long y) { return x < y ? x : y; }
static long round_up(long x, long multiple) { return (x + multiple - 1) / multiple * multiple; }

bool bpk_sgemm_packed_available(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

bool bpk_sgemm_packed_prefers(bool trans_a, long n) {
    // With A read in place and 1024 or more columns, the panels of B outgrow L2, and
    // OpenBLAS's kernel, which packs both operands, keeps ahead (results_limits.md).
    return trans_a || n < 1024;
}

// The packing buffers of the calling thread, kept between products so that a training step
// after the first allocates nothing; freed when the thread exits.
static pthread_key_t workspace_key;
static pthread_once_t workspace_key_once = PTHREAD_ONCE_INIT;
static _Thread_local float *workspace;
static _Thread_local size_t workspace_floats;

static void make_workspace_key(void) {
    // Should this fail, an exiting thread keeps its buffer: a leak, not an error.
    (void)pthread_key_create(&workspace_key, free);
}

// A 64-byte aligned buffer of at least `floats` floats for this thread, or NULL when there is
// no memory (the caller then leaves the product to BLAS).
static float *thread_workspace(size_t floats) {
    if (floats <= workspace_floats) {
        return workspace;
    }
    size_t bytes = (size_t)round_up((long)(floats * sizeof(float)), 64);
    float *grown = aligned_alloc(64, bytes);
    if (grown == NULL) {
        return NULL;
    }
    free(workspace);
    workspace = grown;
    workspace_floats = bytes / sizeof(float);
    pthread_once(&workspace_key_once, make_workspace_key);
    (void)pthread_setspecific(workspace_key, workspace);
    return workspace;
}

// Copies rows [0, mc) x columns [0, kc) of op(A) = A^T (A stored kc x mc, row stride lda) into
// panels of MR rows, each laid out column by column: panel[p * MR + r]. Rows past mc are zero.
static void pack_transposed_a(const float *a, long lda, long mc, long kc, float *restrict out) {
    for (long i = 0; i < mc; i += MR) {
        long rows = min_long(mc - i, MR);
        for (long p = 0; p < kc; p++) {
            const float *source = a + p * lda + i;
            long r = 0;
            for (; r < rows; r++) out[r] = source[r];
            for (; r < MR; r++) out[r] = 0.0f;
            out += MR;
        }
    }
}

// Transposes an 8 x 8 block: row r of the source (8 floats at source + r * stride) becomes
// column r of the destination, whose rows are NR floats apart.
AVX2_FMA static void transpose_8x8(const float *source, long stride, float *destination) {
    __m256 r0 = _mm256_loadu_ps(source), r1 = _mm256_loadu_ps(source + stride),
           r2 = _mm256_loadu_ps(source + 2 * stride), r3 = _mm256_loadu_ps(source + 3 * stride),
           r4 = _mm256_loadu_ps(source + 4 * stride), r5 = _mm256_loadu_ps(source + 5 * stride),
           r6 = _mm256_loadu_ps(source + 6 * stride), r7 = _mm256_loadu_ps(source + 7 * stride);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1),
           t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3),
           t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_store_ps(destination + 0 * NR, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_store_ps(destination + 1 * NR, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_store_ps(destination + 2 * NR, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_store_ps(destination + 3 * NR, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_store_ps(destination + 4 * NR, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_store_ps(destination + 5 * NR, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_store_ps(destination + 6 * NR, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_store_ps(destination + 7 * NR, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// Copies rows [0, kc) x columns [0, nc) of op(B) into panels of NR columns, each laid out row
// by row: panel[p * NR + c]. Columns past nc are zero. op(B)(p, j) is b[p * ldb + j], or
// b[j * ldb + p] when B is stored transposed.
AVX2_FMA static void pack_b(bool trans, const float *b, long ldb, long kc, long nc,
                            float *restrict out) {
    for (long j = 0; j < nc; j += NR) {
        long columns = min_long(nc - j, NR);
        long p = 0;
        if (columns == NR && !trans) {
            for (; p < kc; p++) {
                const float *source = b + p * ldb + j;
                _mm256_store_ps(out, _mm256_loadu_ps(source));
                _mm256_store_ps(out + 8, _mm256_loadu_ps(source + 8));
                out += NR;
            }
        } else if (columns == NR) {
            // Eight rows of the stored B at a time become eight of the panel's columns.
            for (; p + 8 <= kc; p += 8) {
                transpose_8x8(b + j * ldb + p, ldb, out);
                transpose_8x8(b + (j + 8) * ldb + p, ldb, out + 8);
                out += 8 * NR;
            }
        }
        for (; p < kc; p++) {
            long c = 0;
            for (; c < columns; c++) out[c] = trans ? b[(j + c) * ldb + p] : b[p * ldb + j + c];
            for (; c < NR; c++) out[c] = 0.0f;
            out += NR;
        }
    }
}

// The lanes of a row of NR floats that lie within C's first `columns` columns, as masks for
// its left and right halves.
AVX2_FMA static void column_masks(long columns, __m256i *left, __m256i *right) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    *left = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)columns), lanes);
    *right = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)columns - 8), lanes);
}

// Stores alpha * sums + beta * C into the 8 floats of C at `target`, the lanes in `mask` only
// (beta == 0: C is not read, and an exact zero is stored as +0, as BLAS stores it: it zeroes
// C, then adds). Returns x - x for what it stored: 0 where finite, NaN elsewhere, 0 outside
// the mask.
__attribute__((always_inline)) AVX2_FMA static inline __m256
store_lanes(float *target, __m256 sums, float alpha, float beta, __m256i mask, bool whole) {
    __m256 old = _mm256_setzero_ps();
    if (beta != 0.0f) {
        old = whole ? _mm256_loadu_ps(target) : _mm256_maskload_ps(target, mask);
        old = _mm256_mul_ps(_mm256_set1_ps(beta), old);
    }
    __m256 x = _mm256_add_ps(old, _mm256_mul_ps(_mm256_set1_ps(alpha), sums));
    if (whole) {
        _mm256_storeu_ps(target, x);
    } else {
        _mm256_maskstore_ps(target, mask, x);
    }
    return _mm256_and_ps(_mm256_sub_ps(x, x), _mm256_castsi256_ps(mask));
}

// One MR x NR block of C: sums over p < kc of A(r, p) * panel[p * b_step + c], where row r of
// A starts at a_rows[r] and steps by a_step (1 for a row-major A read in place, MR for a packed
// panel), and the panel of B is packed (b_step NR) or a row-major B read in place (b_step
// ldb). Then C = alpha * sums + beta * C for the block's first `rows` x `columns` (see
// store_lanes). Returns whether every value stored is finite. Inlined into each caller so that
// a_step is a constant.
__attribute__((always_inline)) AVX2_FMA static inline bool
block_kernel(long kc, const float *const a_rows[MR], long a_step, const float *restrict panel,
             long b_step, float alpha, float beta, float *c, long ldc, long rows, long columns) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a0 = a_rows[0], *a1 = a_rows[1], *a2 = a_rows[2], *a3 = a_rows[3],
                *a4 = a_rows[4], *a5 = a_rows[5];
    for (long p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(panel), b1 = _mm256_loadu_ps(panel + 8), x;
        x = _mm256_broadcast_ss(a0);
        c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a1);
        c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a2);
        c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a3);
        c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a4);
        c40 = _mm256_fmadd_ps(x, b0, c40), c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a5);
        c50 = _mm256_fmadd_ps(x, b0, c50), c51 = _mm256_fmadd_ps(x, b1, c51);
        a0 += a_step, a1 += a_step, a2 += a_step, a3 += a_step, a4 += a_step, a5 += a_step;
        panel += b_step;
    }
    const __m256 sums[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                {c30, c31}, {c40, c41}, {c50, c51}};
    __m256i left, right;
    column_masks(columns, &left, &right);
    bool whole = columns == NR;
    // OR-ing x - x keeps the bits of any NaN among them.
    __m256 nonfinite = _mm256_setzero_ps();
    for (long r = 0; r < rows; r++) {
        float *row = c + r * ldc;
        nonfinite = _mm256_or_ps(nonfinite, store_lanes(row, sums[r][0], alpha, beta, left, whole));
        if (columns > 8) {
            nonfinite = _mm256_or_ps(nonfinite,
                                     store_lanes(row + 8, sums[r][1], alpha, beta, right, whole));
        }
    }
    return _mm256_movemask_ps(_mm256_cmp_ps(nonfinite, nonfinite, _CMP_UNORD_Q)) == 0;
}

// A read in place, row-major with row stride lda. Rows past `rows` read row 0 again: their
// sums are computed but not stored.
AVX2_FMA static bool block_from_rows(long kc, const float *a, long lda, const float *panel,
                                     long b_step, float alpha, float beta, float *c, long ldc,
                                     long rows, long columns) {
    const float *a_rows[MR];
    for (long r = 0; r < MR; r++) a_rows[r] = a + (r < rows ? r : 0) * lda;
    return block_kernel(kc, a_rows, 1, panel, b_step, alpha, beta, c, ldc, rows, columns);
}

// A from a panel of pack_transposed_a.
AVX2_FMA static bool block_from_panel(long kc, const float *a_panel, const float *panel,
                                      long b_step, float alpha, float beta, float *c, long ldc,
                                      long rows, long columns) {
    const float *a_rows[MR] = {a_panel, a_panel + 1, a_panel + 2, a_panel + 3, a_panel + 4,
                               a_panel + 5};
    return block_kernel(kc, a_rows, MR, panel, b_step, alpha, beta, c, ldc, rows, columns);
}

bool bpk_sgemm_packed(bool trans_a, bool trans_b, long m, long n, long k, float alpha,
                      const float *a, long lda, const float *b, long ldb, float beta, float *c,
                      long ldc, bool *finite) {
    if (m <= 0 || n <= 0 || k <= 0 || alpha == 0.0f || !bpk_sgemm_packed_available()) {
        return false;
    }
    // A row-major B whose rows lie an odd number of cache lines apart is read in place (rows
    // at other distances would share the few cache sets they map to and evict each other),
    // but for a last panel narrower than NR, which is copied, padded with zeros.
    bool b_in_place = !trans_b && ldb % (2 * NR) == NR;
    long b_floats = min_long(k, KC) * (b_in_place ? NR : round_up(min_long(n, NC), NR));
    long a_floats = trans_a ? round_up(min_long(m, MC), MR) * min_long(k, KC) : 0;
    float *b_panels = thread_workspace((size_t)(b_floats + a_floats));
    if (b_panels == NULL) {
        return false;
    }
    float *a_panels = b_panels + b_floats; // b_floats is a multiple of NR: 64-byte aligned
    bool all_finite = true;
    for (long jc = 0; jc < n; jc += NC) {
        long nc = min_long(n - jc, NC);
        for (long pc = 0; pc < k; pc += KC) {
            long kc = min_long(k - pc, KC);
            const float *b_block = trans_b ? b + jc * ldb + pc : b + pc * ldb + jc;
            if (!b_in_place) {
                pack_b(trans_b, b_block, ldb, kc, nc, b_panels);
            } else if (nc % NR != 0) {
                pack_b(false, b_block + nc / NR * NR, ldb, kc, nc % NR, b_panels);
            }
            // The first block of the shared dimension applies beta; later ones add to it. A
            // value that is not finite stays so as later blocks add to it.
            float beta_here = pc == 0 ? beta : 1.0f;
            for (long ic = 0; ic < m; ic += MC) {
                long mc = min_long(m - ic, MC);
                const float *a_block = trans_a ? a + pc * lda + ic : a + ic * lda + pc;
                if (trans_a) pack_transposed_a(a_block, lda, mc, kc, a_panels);
                for (long jr = 0; jr < nc; jr += NR) {
                    long columns = min_long(nc - jr, NR);
                    bool in_place = b_in_place && columns == NR;
                    const float *panel = in_place ? b_block + jr
                                         : b_in_place ? b_panels : b_panels + jr * kc;
                    long b_step = in_place ? ldb : NR;
                    for (long ir = 0; ir < mc; ir += MR) {
                        long rows = min_long(mc - ir, MR);
                        float *c_block = c + (ic + ir) * ldc + jc + jr;
                        all_finite &= trans_a
                            ? block_from_panel(kc, a_panels + ir * kc, panel, b_step, alpha,
                                               beta_here, c_block, ldc, rows, columns)
                            : block_from_rows(kc, a_block + ir * lda, lda, panel, b_step, alpha,
                                              beta_here, c_block, ldc, rows, columns);
                    }
                }
            }
        }
    }
    if (finite) *finite = all_finite;
    return true;
}
