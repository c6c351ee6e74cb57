// Weight gradients that skip the upstream gradient's zeros. Behind ReLU, about half of a dense
// layer's upstream gradient is exactly zero (every unit whose input was not positive), and the
// weight gradient dW = upstreamᵀ x spends half its multiply-adds on them.
//
// The packed kernel sums each value of C as one chain of multiply-adds, shared index ascending,
// starting from +0. Adding a product of zero and a finite number leaves such a chain as it was
// (the chain is never -0: it starts at +0, and in round-to-nearest x + -x is +0), so a chain
// that skips those products ends on the same bits. Hence the condition that B be finite, which
// the caller knows (the network's checked inputs, or a layer's outputs whose sums were checked
// as they were stored); NaN and infinity in A are kept, as they are not zero.
//
// Each unit (a row of C) then sums its own rows of B: every multiply-add loads its own 16
// floats of B, where the packed kernel shares each load among 8 rows of C. So B is taken in
// blocks of 64 rows x 64 columns (16 KiB), kept in L1 while every unit sums its rows in the block
// into four registers; a unit's chains are carried from block to block through C. At half
// zeros this ran the mnist weight gradient (256 x 784 x 256) in 745 us against the packed
// kernel's 905, the lists included; with no zeros it takes 1.5x as long, hence the density
// limit.
#include "BackpropKernels.h"

#include <immintrin.h>
#include <stdint.h>

#define AVX512 __attribute__((target("avx512f")))

#define BLOCK_ROWS 64    // rows of B in a block
#define BLOCK_COLUMNS 64 // columns of C a unit sums at a time: four 16-float registers
#define LIST_SLACK 16    // a list is written 16 entries at a time, up to 15 past its end
// Above this share of nonzero values in A, the packed kernel is faster.
#define MAX_DENSITY 0.6
// C is read and stored again for every block of rows, 256 bytes of a row at a time; beyond
// L2's size that traffic goes to memory, and wide's 2048 x 2048 weight gradient made its steps
// 0.70x as fast (mnist's first layer, 800 KB, 1.06x).
#define MAX_C_FLOATS (1L << 18)

// Where a unit's nonzero values are listed: for each, the byte offset of its row of B and the
// value, shared index ascending; `starts` gives, for each block of rows, where its entries
// begin (and, last, where the list ends).
struct unit_list {
    int32_t *offsets;
    float *values;
    int32_t *starts;
};

// Transposes 16 rows of 16 floats in place: r[i] becomes what was column i.
AVX512 static inline void transpose_16x16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 16; i += 8) {
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xDD);
        }
    }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
    }
}

// Copies columns [u, u + units) of A (k rows, lda floats apart; units <= 16) into `columns`,
// column i at columns + i * stride (stride >= k rounded up to 16), rows past k as zeros. Read
// down a column, A's rows 1 KiB apart (256 units) fall in few sets of L1 and evict each other;
// 16 x 16 blocks turned in registers read each row's 64 bytes once.
AVX512 static void copy_columns(const float *a, long lda, long k, long u, long units, float *columns,
                                long stride) {
    __mmask16 lanes = units >= 16 ? 0xFFFF : (__mmask16)((1u << units) - 1);
    for (long p = 0; p < k; p += 16) {
        __m512 r[16];
        for (long i = 0; i < 16; i++) {
            r[i] = p + i < k ? _mm512_maskz_loadu_ps(lanes, a + (p + i) * lda + u) : _mm512_setzero_ps();
        }
        transpose_16x16(r);
        for (long i = 0; i < units; i++) _mm512_storeu_ps(columns + i * stride + p, r[i]);
    }
}

// Lists the nonzero values of `column` (k floats, then zeros to a multiple of 16) in `list`.
// Returns how many there are.
AVX512 static long list_column(const float *column, long k, long ldb, struct unit_list list) {
    const __m512i step = _mm512_set1_epi32((int32_t)(16 * ldb * (long)sizeof(float)));
    __m512i offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32((int32_t)(ldb * (long)sizeof(float))));
    long count = 0;
    for (long p = 0; p < k; p += 16) {
        if (p % BLOCK_ROWS == 0) list.starts[p / BLOCK_ROWS] = (int32_t)count;
        __m512 v = _mm512_loadu_ps(column + p);
        // Not equal, unordered: NaN is listed. The zeros past k are not.
        __mmask16 listed = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        _mm512_storeu_ps(list.values + count, _mm512_maskz_compress_ps(listed, v));
        _mm512_storeu_si512(list.offsets + count, _mm512_maskz_compress_epi32(listed, offsets));
        count += __builtin_popcount(listed);
        offsets = _mm512_add_epi32(offsets, step);
    }
    list.starts[(k + BLOCK_ROWS - 1) / BLOCK_ROWS] = (int32_t)count;
    return count;
}

// The lanes of x that are NaN or infinite (x - x is NaN there, 0 elsewhere).
AVX512 static inline __mmask16 nonfinite_lanes(__m512 x) {
    __m512 zero_if_finite = _mm512_sub_ps(x, x);
    return _mm512_cmp_ps_mask(zero_if_finite, zero_if_finite, _CMP_UNORD_Q);
}

// Sums unit u's entries of one block into C's row at `c` (4 x 16 columns of B at `b`), carrying
// the chains from C unless this is the first block; the last block checks what it stores.
AVX512 static __mmask16 sum_block(const char *b, const int32_t *offsets, const float *values, long entries,
                                  float *c, bool first, bool last) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    if (!first) {
        s0 = _mm512_loadu_ps(c), s1 = _mm512_loadu_ps(c + 16);
        s2 = _mm512_loadu_ps(c + 32), s3 = _mm512_loadu_ps(c + 48);
    }
    for (long e = 0; e < entries; e++) {
        const float *row = (const float *)(b + offsets[e]);
        __m512 v = _mm512_set1_ps(values[e]);
        s0 = _mm512_fmadd_ps(v, _mm512_loadu_ps(row), s0);
        s1 = _mm512_fmadd_ps(v, _mm512_loadu_ps(row + 16), s1);
        s2 = _mm512_fmadd_ps(v, _mm512_loadu_ps(row + 32), s2);
        s3 = _mm512_fmadd_ps(v, _mm512_loadu_ps(row + 48), s3);
    }
    if (last) {
        // As the packed kernel stores them: +0 + sums.
        const __m512 zero = _mm512_setzero_ps();
        s0 = _mm512_add_ps(zero, s0), s1 = _mm512_add_ps(zero, s1);
        s2 = _mm512_add_ps(zero, s2), s3 = _mm512_add_ps(zero, s3);
    }
    _mm512_storeu_ps(c, s0), _mm512_storeu_ps(c + 16, s1);
    _mm512_storeu_ps(c + 32, s2), _mm512_storeu_ps(c + 48, s3);
    if (!last) return 0;
    return nonfinite_lanes(s0) | nonfinite_lanes(s1) | nonfinite_lanes(s2) | nonfinite_lanes(s3);
}

// sum_block for the last columns, fewer than 64: 16 at a time, the last under a mask.
AVX512 static __mmask16 sum_block_narrow(const char *b, const int32_t *offsets, const float *values, long entries,
                                         float *c, long columns, bool first, bool last) {
    __mmask16 nonfinite = 0;
    for (long j = 0; j < columns; j += 16) {
        __mmask16 lanes = columns - j >= 16 ? 0xFFFF : (__mmask16)((1u << (columns - j)) - 1);
        __m512 s = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(lanes, c + j);
        for (long e = 0; e < entries; e++) {
            const float *row = (const float *)(b + offsets[e]) + j;
            s = _mm512_fmadd_ps(_mm512_set1_ps(values[e]), _mm512_maskz_loadu_ps(lanes, row), s);
        }
        if (last) s = _mm512_add_ps(_mm512_setzero_ps(), s);
        _mm512_mask_storeu_ps(c + j, lanes, s);
        if (last) nonfinite |= nonfinite_lanes(s) & lanes;
    }
    return nonfinite;
}

AVX512 static bool sparse_product(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                                  float *c, long ldc, float *workspace, bool *finite) {
    long blocks = (k + BLOCK_ROWS - 1) / BLOCK_ROWS, stride = (k + 15) / 16 * 16;
    long list_floats = k + LIST_SLACK;
    float *columns = workspace;
    int32_t *offsets = (int32_t *)(columns + 16 * stride);
    float *values = (float *)(offsets + m * list_floats);
    int32_t *starts = (int32_t *)(values + m * list_floats);
    long listed = 0;
    for (long u = 0; u < m; u += 16) {
        long units = m - u < 16 ? m - u : 16;
        copy_columns(a, lda, k, u, units, columns, stride);
        for (long i = 0; i < units; i++) {
            struct unit_list list = {offsets + (u + i) * list_floats, values + (u + i) * list_floats,
                                     starts + (u + i) * (blocks + 1)};
            listed += list_column(columns + i * stride, k, ldb, list);
        }
    }
    if ((double)listed > MAX_DENSITY * (double)m * (double)k) return false;
    __mmask16 nonfinite = 0;
    for (long j = 0; j < n; j += BLOCK_COLUMNS) {
        long columns = n - j < BLOCK_COLUMNS ? n - j : BLOCK_COLUMNS;
        const char *b_columns = (const char *)(b + j);
        for (long block = 0; block < blocks; block++) {
            bool first = block == 0, last = block == blocks - 1;
            for (long u = 0; u < m; u++) {
                const int32_t *unit_starts = starts + u * (blocks + 1);
                long begin = unit_starts[block], entries = unit_starts[block + 1] - begin;
                const int32_t *unit_offsets = offsets + u * list_floats + begin;
                const float *unit_values = values + u * list_floats + begin;
                float *c_row = c + u * ldc + j;
                nonfinite |= columns == BLOCK_COLUMNS
                    ? sum_block(b_columns, unit_offsets, unit_values, entries, c_row, first, last)
                    : sum_block_narrow(b_columns, unit_offsets, unit_values, entries, c_row, columns, first, last);
            }
        }
    }
    if (finite) *finite = nonfinite == 0;
    return true;
}

bool bpk_sgemm_sparse_at(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                         float *c, long ldc, bool *finite) {
    // One chain per value of C in the packed kernel too (see bpk_sgemm_packed_shared_block), and
    // the rows' byte offsets within 32 bits.
    if (m <= 0 || n <= 0 || k <= 0 || m * n > MAX_C_FLOATS || !bpk_avx512_in_use()
        || bpk_sgemm_packed_shared_block(k) != k
        || (double)k * (double)ldb * sizeof(float) >= (double)INT32_MAX) {
        return false;
    }
    long list_floats = k + LIST_SLACK, blocks = (k + BLOCK_ROWS - 1) / BLOCK_ROWS;
    long column_floats = 16 * ((k + 15) / 16 * 16);
    float *workspace = bpk_thread_workspace((size_t)(column_floats + 2 * m * list_floats + m * (blocks + 1)));
    return workspace != NULL && sparse_product(m, n, k, a, lda, b, ldb, c, ldc, workspace, finite);
}
