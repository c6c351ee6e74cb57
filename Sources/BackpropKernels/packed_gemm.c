// Single-thread float matrix products for CPUs with AVX2 and FMA, in the blocked layout of
// BLIS (Van Zee and van de Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS
// Functionality", ACM TOMS 2015): op(A) is read in panels of a few rows and op(B) in panels of
// 16 columns that stay in cache while a block of C is summed in registers. Panels are copied
// into that layout, except from a row-major A, and from a row-major B already laid out as the
// kernel reads it: those are read in place, which saves the copy and its memory.
//
// Two kernels sum the same values in the same order, so they store the same bits: with AVX2,
// 6 x 16 blocks in twelve 8-float registers; with AVX-512, 8 x 16 blocks in eight 16-float
// registers. The second runs 40% as many instructions for the same arithmetic, which on a
// busy host kept it near the multiply-add peak where the first lost 5-15%; and 8 rows divide
// the usual batch sizes and layer widths, where 6 leave a partial panel (results_limits.md).
//
// Inside a training step it runs the products at least as fast as OpenBLAS 0.3.21's kernel
// for this CPU family, except, without AVX-512, those with a row-major A and 1024 or more
// columns (bpk_sgemm_packed_prefers; benchmarks/results_limits.md). What a kernel of our own
// adds is the moment a block of C sits in registers: there a weight gradient is checked for NaN
// and infinity as it is stored, and stored without zeroing the buffer first, which saves a
// training step two passes over its largest gradients.
#include "BackpropKernels.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define MR_AVX2 6   // rows of C a call of block_kernel_avx2 sums
#define MR_AVX512 8 // rows of C a call of block_kernel_avx512 sums
#define NR 16       // columns of C a kernel call sums: two 8-float registers, or one of 16
#define KC 256      // shared-dimension block, near enough (bpk_sgemm_packed_shared_block): a
                    // 16-column panel of B is 16 KiB, in L1
#define MC 96       // rows of op(A) copied at a time (96 KiB, in L2), a multiple of both MRs
// Columns of op(B) copied at a time. For a row-major A, 256: the copied block of B (256 KiB)
// stays in L2 beside the rows of A, so that a panel the kernel moves on to comes from L2, not
// L3 (it measured 10-20% faster on wide products than a 2 MiB block). A transposed A, the
// upstream gradient of a weight gradient, is copied again for each block of B, and copying it
// costs more than the L3 reads it would save: there, 2048.
#define NC_ROW_MAJOR_A 256
#define NC_TRANSPOSED_A 2048
#define PREFETCH_MIN_FLOATS (1L << 20) // see prefetch_b

#define AVX2_FMA __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f")))

static long min_long(long x, long y) { return x < y ? x : y; }
static long round_up(long x, long multiple) { return (x + multiple - 1) / multiple * multiple; }
// Whether rows `ld` floats apart start an odd number of 64-byte cache lines apart.
static bool odd_cache_lines(long ld) { return ld % 32 == 16; }

// The shared dimension's block: k cut into the number of blocks of KC nearest k / KC, all but
// the last of this size, the last at most as large. Blocks of KC and a remainder would leave
// a short last block (784 is 3 x 256 + 16): the kernel's stores into C then cost as much as its
// few sums, and a block of C is read and stored once more.
long bpk_sgemm_packed_shared_block(long k) {
    long blocks = (k + KC / 2) / KC;
    return blocks <= 1 ? k : (k + blocks - 1) / blocks;
}

bool bpk_sgemm_packed_available(void) { return bpk_has_avx2_fma(); }

bool bpk_sgemm_packed_prefers(bool trans_a, long n) {
    // With a row-major A and 1024 or more columns, B is a wide layer's weights, copied from
    // memory at every product; there OpenBLAS 0.3.21's AVX2 kernel measured 4-17% faster than
    // ours in AVX2, and ours in AVX-512 8-16% faster than its AVX-512 one (results_limits.md).
    return trans_a || n < 1024 || bpk_avx512_in_use();
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
float *bpk_thread_workspace(size_t floats) {
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

void bpk_poison_workspace(void) {
    for (size_t i = 0; i < workspace_floats; i++) workspace[i] = __builtin_nanf("");
}

// Writes the 8 x 8 block whose rows are r[0..7] transposed: column c of the block becomes the 8
// floats at destination + c * step (step 8 or more).
AVX2_FMA static void store_transposed(const __m256 r[8], float *destination, long step) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]),
           t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]),
           t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]),
           t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(destination + 0 * step, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(destination + 1 * step, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(destination + 2 * step, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(destination + 3 * step, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(destination + 4 * step, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(destination + 5 * step, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(destination + 6 * step, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(destination + 7 * step, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// Copies rows [0, mc) x columns [0, kc) of op(A) into panels of mr rows (6 or 8), each laid
// out column by column: panel[p * mr + r]. Rows past mc are zero. op(A)(i, p) is
// a[i * lda + p], or a[p * lda + i] when A is stored transposed. A transposed A is always
// copied; a row-major one only for a last panel of fewer than mr rows (see bpk_sgemm_packed),
// which the plain loop below copies. Writes up to 8 - mr floats past the last panel.
AVX2_FMA static void pack_a(bool trans, const float *a, long lda, long mc, long kc, long mr,
                            float *restrict out) {
    const __m256i first_rows = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)mr),
                                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (long i = 0; i < mc; i += mr) {
        long rows = min_long(mc - i, mr), p = 0;
        if (rows == mr && trans) {
            // Each column of the panel is mr floats in a row of the stored A.
            for (; p < kc; p++) {
                _mm256_storeu_ps(out + p * mr, _mm256_maskload_ps(a + p * lda + i, first_rows));
            }
        }
        for (; p < kc; p++) {
            long r = 0;
            for (; r < rows; r++) out[p * mr + r] = trans ? a[p * lda + i + r] : a[(i + r) * lda + p];
            for (; r < mr; r++) out[p * mr + r] = 0.0f;
        }
        out += kc * mr;
    }
}

// Copies rows [0, kc) x columns [0, nc) of op(B) into panels of NR columns, each laid out row
// by row: panel[p * NR + c]. Columns past nc are zero. op(B)(p, j) is b[p * ldb + j], or
// b[j * ldb + p] when B is stored transposed.
AVX2_FMA static void pack_b(bool trans, const float *b, long ldb, long kc, long nc,
                            float *restrict out) {
    if (!trans) {
        // Panel by panel, each written as one run. Row by row, which reads B as the runs it is
        // stored in but writes to every panel in turn (16 KiB apart), ran at about half the
        // speed on a block in cache (0.136 against 0.074 ns a float). Then the last, narrower
        // panel, below.
        long whole = nc / NR * NR;
        for (long j = 0; j < whole; j += NR) {
            const float *source = b + j;
            float *target = out + j * kc;
            for (long p = 0; p < kc; p++, source += ldb, target += NR) {
                _mm256_store_ps(target, _mm256_loadu_ps(source));
                _mm256_store_ps(target + 8, _mm256_loadu_ps(source + 8));
            }
        }
        b += whole;
        out += whole * kc;
        nc -= whole;
    }
    for (long j = 0; j < nc; j += NR) {
        long columns = min_long(nc - j, NR);
        long p = 0;
        if (columns == NR && trans) {
            // Eight rows of the stored B at a time become eight of the panel's columns.
            for (; p + 8 <= kc; p += 8) {
                for (long half = 0; half < NR; half += 8) {
                    __m256 r[8];
                    for (long row = 0; row < 8; row++) r[row] = _mm256_loadu_ps(b + (j + half + row) * ldb + p);
                    store_transposed(r, out + half, NR);
                }
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

// How a kernel call stores its block of C (its first `rows` x `columns`): x = alpha * sums +
// beta * C, or, with a bias, x = bias + alpha * sums, C not read (the bits of C holding the bias
// in every row, with beta 1). With relu, max(x, 0) is stored there too (+0 for NaN and -0, as
// the ReLU op's x > 0 ? x : 0).
struct block_store {
    float *c;
    long ldc;
    float alpha, beta;
    const float *bias; // NULL, or the bias of the block's first column
    float *relu;       // NULL, or where the block's first ReLU output goes
    long ldr, rows, columns;
};

// Stores x (see block_store) into the 8 floats of C at `target`, and ReLU of it at
// `relu_target` when not NULL, the lanes in `mask` only (beta == 0: C is not read, and an
// exact zero is stored as +0, as BLAS stores it: it zeroes C, then adds). Returns x - x: 0
// where finite, NaN elsewhere, 0 outside the mask.
__attribute__((always_inline)) AVX2_FMA static inline __m256
store_lanes(float *target, float *relu_target, const float *bias, __m256 sums, float alpha, float beta,
            __m256i mask, bool whole) {
    __m256 old = _mm256_setzero_ps();
    if (bias) {
        old = whole ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, mask);
    } else if (beta != 0.0f) {
        old = whole ? _mm256_loadu_ps(target) : _mm256_maskload_ps(target, mask);
        old = _mm256_mul_ps(_mm256_set1_ps(beta), old);
    }
    __m256 x = _mm256_add_ps(old, _mm256_mul_ps(_mm256_set1_ps(alpha), sums));
    // max returns its second operand, +0, for a NaN or a zero of either sign.
    __m256 relu = _mm256_max_ps(x, _mm256_setzero_ps());
    if (whole) {
        _mm256_storeu_ps(target, x);
        if (relu_target) _mm256_storeu_ps(relu_target, relu);
    } else {
        _mm256_maskstore_ps(target, mask, x);
        if (relu_target) _mm256_maskstore_ps(relu_target, mask, relu);
    }
    return _mm256_and_ps(_mm256_sub_ps(x, x), _mm256_castsi256_ps(mask));
}

// One 6 x NR block of C: sums over p < kc of a[p * a_step + r * a_row] * panel[p * b_step + c],
// where op(A) is a packed panel (a_row 1, a_step 6) or a row-major A read in place (a_row lda,
// a_step 1), and the panel of B is packed (b_step NR) or a row-major B read in place (b_step
// ldb). Then stores the block as `out` says. Returns whether every value stored in C is finite.
// Inlined twice into kernel_avx2, once for each way of reading A, so that a packed panel's
// offsets stay constants.
__attribute__((always_inline)) AVX2_FMA static inline bool
block_kernel_avx2(long kc, const float *restrict a, long a_row, long a_step, const float *restrict panel,
                  long b_step, const struct block_store *store) {
    // A copy, which the stores into C cannot be taken to change: its fields stay in registers.
    const struct block_store out = *store;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (long p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(panel), b1 = _mm256_loadu_ps(panel + 8), x;
        x = _mm256_broadcast_ss(a + 0 * a_row);
        c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a + 1 * a_row);
        c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a + 2 * a_row);
        c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a + 3 * a_row);
        c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a + 4 * a_row);
        c40 = _mm256_fmadd_ps(x, b0, c40), c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a + 5 * a_row);
        c50 = _mm256_fmadd_ps(x, b0, c50), c51 = _mm256_fmadd_ps(x, b1, c51);
        a += a_step;
        panel += b_step;
    }
    const __m256 sums[MR_AVX2][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                     {c30, c31}, {c40, c41}, {c50, c51}};
    __m256i left, right;
    column_masks(out.columns, &left, &right);
    bool whole = out.columns == NR;
    // OR-ing x - x keeps the bits of any NaN among them.
    __m256 nonfinite = _mm256_setzero_ps();
    for (long r = 0; r < out.rows; r++) {
        float *row = out.c + r * out.ldc, *relu = out.relu ? out.relu + r * out.ldr : NULL;
        nonfinite = _mm256_or_ps(nonfinite, store_lanes(row, relu, out.bias, sums[r][0], out.alpha,
                                                        out.beta, left, whole));
        if (out.columns > 8) {
            nonfinite = _mm256_or_ps(nonfinite, store_lanes(row + 8, relu ? relu + 8 : NULL,
                                                            out.bias ? out.bias + 8 : NULL, sums[r][1],
                                                            out.alpha, out.beta, right, whole));
        }
    }
    return _mm256_movemask_ps(_mm256_cmp_ps(nonfinite, nonfinite, _CMP_UNORD_Q)) == 0;
}

// Stores row r of an AVX-512 block (see block_store): its sums in the `lanes` of C, and ReLU of
// them where asked. Returns the lanes whose value is not finite.
__attribute__((always_inline)) AVX512 static inline __mmask16
store_row_avx512(const struct block_store *out, long r, __m512 sums, __mmask16 lanes, __m512 bias) {
    const __m512 zero = _mm512_setzero_ps();
    float *row = out->c + r * out->ldc;
    __m512 old = bias;
    if (!out->bias && out->beta != 0.0f) {
        old = _mm512_mul_ps(_mm512_set1_ps(out->beta), _mm512_maskz_loadu_ps(lanes, row));
    }
    __m512 x = _mm512_add_ps(old, _mm512_mul_ps(_mm512_set1_ps(out->alpha), sums));
    _mm512_mask_storeu_ps(row, lanes, x);
    if (out->relu) _mm512_mask_storeu_ps(out->relu + r * out->ldr, lanes, _mm512_max_ps(x, zero));
    __m512 zero_if_finite = _mm512_sub_ps(x, x);
    return _mm512_mask_cmp_ps_mask(lanes, zero_if_finite, zero_if_finite, _CMP_UNORD_Q);
}

// block_kernel_avx2 for 8 x NR blocks in AVX-512, a row of the block in one register: the same
// sums in the same order, stored as store_lanes stores them. With `half` (a constant where it
// is inlined), only the first 4 rows are summed: a last block of 4 rows or fewer (10 units are
// blocks of 8 and 2) then costs half a block, not a whole one.
__attribute__((always_inline)) AVX512 static inline bool
block_kernel_avx512(long kc, const float *restrict a, long a_row, long a_step, const float *restrict panel,
                    long b_step, const struct block_store *store, bool half) {
    const struct block_store out = *store; // see block_kernel_avx2
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    for (long p = 0; p < kc; p++) {
        __m512 b = _mm512_loadu_ps(panel);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[0 * a_row]), b, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a[1 * a_row]), b, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a[2 * a_row]), b, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a[3 * a_row]), b, c3);
        if (!half) {
            c4 = _mm512_fmadd_ps(_mm512_set1_ps(a[4 * a_row]), b, c4);
            c5 = _mm512_fmadd_ps(_mm512_set1_ps(a[5 * a_row]), b, c5);
            c6 = _mm512_fmadd_ps(_mm512_set1_ps(a[6 * a_row]), b, c6);
            c7 = _mm512_fmadd_ps(_mm512_set1_ps(a[7 * a_row]), b, c7);
        }
        a += a_step;
        panel += b_step;
    }
    __mmask16 lanes = out.columns >= NR ? 0xFFFF : (__mmask16)((1u << out.columns) - 1);
    const __m512 bias = out.bias ? _mm512_maskz_loadu_ps(lanes, out.bias) : _mm512_setzero_ps();
    // Row by row by name, not from an array indexed in a loop, which the compiler kept on the
    // stack: a store and a load of each register per call, which tells where the shared
    // dimension is short (10, in a 10-unit layer's input gradient: 8.1 -> 7.1 us). The AVX2
    // kernel keeps its loop: with 16 registers, the same change spilled more and measured the
    // same.
    __mmask16 nonfinite = store_row_avx512(&out, 0, c0, lanes, bias);
    if (out.rows > 1) nonfinite |= store_row_avx512(&out, 1, c1, lanes, bias);
    if (out.rows > 2) nonfinite |= store_row_avx512(&out, 2, c2, lanes, bias);
    if (out.rows > 3) nonfinite |= store_row_avx512(&out, 3, c3, lanes, bias);
    if (out.rows > 4) nonfinite |= store_row_avx512(&out, 4, c4, lanes, bias);
    if (out.rows > 5) nonfinite |= store_row_avx512(&out, 5, c5, lanes, bias);
    if (out.rows > 6) nonfinite |= store_row_avx512(&out, 6, c6, lanes, bias);
    if (out.rows > 7) nonfinite |= store_row_avx512(&out, 7, c7, lanes, bias);
    return nonfinite == 0;
}

// The kernels the loops call, one per instruction set: `a` is a copied panel of op(A) when lda
// is 0, else mr rows of a row-major A read in place, lda floats apart.
AVX2_FMA static bool kernel_avx2(long kc, const float *a, long lda, const float *panel, long b_step,
                                 const struct block_store *out) {
    return lda == 0 ? block_kernel_avx2(kc, a, 1, MR_AVX2, panel, b_step, out)
                    : block_kernel_avx2(kc, a, lda, 1, panel, b_step, out);
}
AVX512 static bool kernel_avx512(long kc, const float *a, long lda, const float *panel, long b_step,
                                 const struct block_store *out) {
    if (lda != 0) {
        // Rows read in place are always a whole block (a partial one is copied).
        return block_kernel_avx512(kc, a, lda, 1, panel, b_step, out, false);
    }
    bool half = out->rows <= MR_AVX512 / 2;
    return half ? block_kernel_avx512(kc, a, 1, MR_AVX512, panel, b_step, out, true)
                : block_kernel_avx512(kc, a, 1, MR_AVX512, panel, b_step, out, false);
}

// The rows of a block of B still to be asked into cache: `rows` rows of `row_bytes` bytes from
// `row`, `stride` bytes apart, `per_call` of them at a time.
struct rows_to_fetch {
    const char *row;
    long rows, row_bytes, stride, per_call;
};

// The block of B that pack_b copies after block (jc, pc) (the next block of the shared
// dimension, or the first of the next columns), spread over `calls` kernel calls.
static struct rows_to_fetch block_after(bool trans, const float *b, long ldb, long n, long k,
                                        long kc_max, long nc_max, long jc, long pc, long calls) {
    pc += kc_max;
    if (pc >= k) {
        pc = 0;
        jc += nc_max;
    }
    if (jc >= n) return (struct rows_to_fetch){NULL, 0, 0, 0, 0};
    long kc = min_long(k - pc, kc_max), nc = min_long(n - jc, nc_max);
    const float *origin = trans ? b + jc * ldb + pc : b + pc * ldb + jc;
    long rows = trans ? nc : kc;
    return (struct rows_to_fetch){(const char *)origin, rows, (trans ? kc : nc) * (long)sizeof(float),
                                  ldb * (long)sizeof(float), (rows + calls - 1) / calls};
}

// Asks for the next rows of `block` to be brought into cache. A wide layer's weights come from
// memory, and copying them cost 8% of wide's forward product (a probe that skipped the copy);
// asked for a few rows per kernel call, as the block before is being summed, they arrive
// while the arithmetic runs. All at once, the requests overflowed the queue for misses and
// gained nothing.
static void prefetch_rows(struct rows_to_fetch *block) {
    for (long r = min_long(block->per_call, block->rows); r > 0; r--, block->rows--) {
        for (long byte = 0; byte < block->row_bytes; byte += 64) _mm_prefetch(block->row + byte, _MM_HINT_T1);
        block->row += block->stride;
    }
}

bool bpk_sgemm_packed(bool trans_a, bool trans_b, long m, long n, long k, float alpha,
                      const float *a, long lda, const float *b, long ldb, float beta, float *c,
                      long ldc, bool *finite) {
    return bpk_sgemm_packed_layer(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                                  NULL, NULL, 0, finite);
}

bool bpk_sgemm_packed_layer(bool trans_a, bool trans_b, long m, long n, long k, float alpha,
                            const float *a, long lda, const float *b, long ldb, float beta, float *c,
                            long ldc, const float *bias, float *relu, long ldr, bool *finite) {
    if (m <= 0 || n <= 0 || k <= 0 || alpha == 0.0f || !bpk_sgemm_packed_available()) {
        return false;
    }
    // A row-major B whose rows lie an odd number of cache lines apart is read in place (rows
    // at other distances would share the few cache sets they map to and evict each other),
    // but for a last panel narrower than NR, which is copied, padded with zeros. A row-major A
    // is read in place at any distance, but for a last panel of fewer than mr rows: the kernel
    // broadcasts its values one by one, from mr rows as well as from one panel, and the copy,
    // which transposes, is saved. The kernel reads a panel of B as kc lines at once, which
    // must not share sets, but only mr lines of A at a time, one per row.
    // With 16 rows or fewer (the weight gradient of a layer of 10 units), a panel of B serves
    // two or three kernel calls, which do not pay for its copy: it is read in place, unless
    // its rows start at the same offset in every 4 KiB page, where they share sets in L2 as
    // well (mnist's 10 x 128 x 256 product: 13.8 -> 10.3 us; 10 x 2048 x 128 stays copied).
    bool few_rows = m <= 2 * MR_AVX512 && ldb % 1024 != 0;
    bool b_in_place = !trans_b && (odd_cache_lines(ldb) || few_rows);
    bool a_in_place = !trans_a;
    long nc_max = trans_a ? NC_TRANSPOSED_A : NC_ROW_MAJOR_A;
    long kc_max = bpk_sgemm_packed_shared_block(k);
    long b_floats = kc_max * (b_in_place ? NR : round_up(min_long(n, nc_max), NR));
    bool avx512 = bpk_avx512_in_use();
    long mr = avx512 ? MR_AVX512 : MR_AVX2;
    long a_floats = round_up(min_long(m, MC), mr) * kc_max + 8; // pack_a writes past
    float *b_panels = bpk_thread_workspace((size_t)(b_floats + a_floats));
    if (b_panels == NULL) {
        return false;
    }
    float *a_panels = b_panels + b_floats; // b_floats is a multiple of NR: 64-byte aligned
    // A B of 4 MiB or more comes from memory (beyond L2, and the L3 is shared). A smaller one
    // is likely still in cache from the step's previous use: on mnist's, the requests moved
    // whole steps by -1% to +0.5%, within noise.
    bool prefetch_b = !b_in_place && k * n >= PREFETCH_MIN_FLOATS;
    bool all_finite = true;
    for (long jc = 0; jc < n; jc += nc_max) {
        long nc = min_long(n - jc, nc_max);
        for (long pc = 0; pc < k; pc += kc_max) {
            long kc = min_long(k - pc, kc_max);
            const float *b_block = trans_b ? b + jc * ldb + pc : b + pc * ldb + jc;
            if (!b_in_place) {
                pack_b(trans_b, b_block, ldb, kc, nc, b_panels);
            } else if (nc % NR != 0) {
                pack_b(false, b_block + nc / NR * NR, ldb, kc, nc % NR, b_panels);
            }
            // The first block of the shared dimension applies beta, or starts from the bias;
            // later ones add to it, and the last stores ReLU of it. A value that is not finite
            // stays so as later blocks add to it.
            float beta_here = pc == 0 ? beta : 1.0f;
            bool first = pc == 0, last = pc + kc >= k;
            long calls = (m + mr - 1) / mr * ((nc + NR - 1) / NR);
            struct rows_to_fetch next = prefetch_b ? block_after(trans_b, b, ldb, n, k, kc_max, nc_max, jc, pc, calls)
                                                   : (struct rows_to_fetch){NULL, 0, 0, 0, 0};
            for (long ic = 0; ic < m; ic += MC) {
                long mc = min_long(m - ic, MC);
                // Rows [0, rows_in_place) of the block are read in place; the others are copied.
                long rows_in_place = a_in_place ? mc / mr * mr : 0;
                if (rows_in_place < mc) {
                    long i = ic + rows_in_place;
                    pack_a(trans_a, trans_a ? a + pc * lda + i : a + i * lda + pc, lda, mc - rows_in_place,
                           kc, mr, a_panels);
                }
                for (long jr = 0; jr < nc; jr += NR) {
                    long columns = min_long(nc - jr, NR);
                    bool in_place = b_in_place && columns == NR;
                    const float *panel = in_place ? b_block + jr
                                         : b_in_place ? b_panels : b_panels + jr * kc;
                    long b_step = in_place ? ldb : NR;
                    for (long ir = 0; ir < mc; ir += mr) {
                        long i = ic + ir, j = jc + jr;
                        struct block_store out = {
                            .c = c + i * ldc + j, .ldc = ldc, .alpha = alpha, .beta = beta_here,
                            .bias = bias && first ? bias + j : NULL,
                            .relu = relu && last ? relu + i * ldr + j : NULL, .ldr = ldr,
                            .rows = min_long(mc - ir, mr), .columns = columns,
                        };
                        bool a_rows_in_place = ir < rows_in_place;
                        const float *a_here = a_rows_in_place ? a + i * lda + pc
                                                              : a_panels + (ir - rows_in_place) * kc;
                        long a_stride = a_rows_in_place ? lda : 0;
                        prefetch_rows(&next);
                        all_finite &= avx512 ? kernel_avx512(kc, a_here, a_stride, panel, b_step, &out)
                                             : kernel_avx2(kc, a_here, a_stride, panel, b_step, &out);
                    }
                }
            }
        }
    }
    if (finite) *finite = all_finite;
    return true;
}
