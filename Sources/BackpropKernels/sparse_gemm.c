// Weight gradients that skip the upstream gradient's zeros. Behind ReLU, about half of a dense
// layer's upstream gradient is exactly zero (every unit whose input was not positive), and the
// weight gradient dW = upstreamᵀ x spends half its multiply-adds on them.
//
// The packed kernel sums each value of C as one chain of multiply-adds, shared index ascending,
// starting from +0. Adding a product of zero and a finite number leaves such a chain as it was
// (the chain is never -0: it starts at +0, and in round-to-nearest x + -x is +0), so a chain
// that skips those products ends on the same bits. Hence the condition that B be finite, which
// the caller knows (the network's checked inputs, or a layer's inputs when its forward sums
// were checked finite as they were stored); NaN and infinity in A are kept, as they are not
// zero.
//
// Each unit (a row of C) then sums its own rows of B: every multiply-add loads its own 16 floats of
// B, where the packed kernel shares each load among 8 rows of C. So B is taken in blocks of 64 rows
// x 64 columns (16 KiB), kept in L1 while every unit sums its rows in the block into four
// registers, two units in turn; their chains are carried from block to block through C. Without
// AVX-512, one unit at a time in eight 8-float registers. At half zeros this ran the mnist weight
// gradient (256 x 784 x 256) in 705 us against the packed kernel's 900, the lists included (in AVX2
// on the same CPU, 822 against 956); with no zeros it takes 1.5x as long, hence the density limit.
#include "BackpropKernels.h"

#include <immintrin.h>
#include <stdint.h>

#define AVX512 __attribute__((target("avx512f")))
#define AVX2_FMA __attribute__((target("avx2,fma")))

#define BLOCK_ROWS 64    // rows of B in a block
#define BLOCK_COLUMNS 64 // columns of C a unit sums at a time: four 16-float registers
#define LIST_SLACK 16    // a list is written 16 entries at a time, up to 15 past its end
// Above this share of nonzero values in A, the packed kernel is faster.
#define MAX_DENSITY 0.6
// C is read and stored again for every block of rows, 256 bytes of a row at a time; beyond
// L2's size that traffic goes to memory, and wide's 2048 x 2048 weight gradient made its steps
// 0.70x as fast (mnist's first layer, 800 KB, 1.07x).
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

// Lists the nonzero values of `column` (k floats) in `list`. Returns how many there are.
AVX512 static long list_column(const float *column, long k, long ldb, struct unit_list list) {
    const __m512i step = _mm512_set1_epi32((int32_t)(16 * ldb * (long)sizeof(float)));
    __m512i offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32((int32_t)(ldb * (long)sizeof(float))));
    long count = 0;
    for (long p = 0; p < k; p += 16) {
        if (p % BLOCK_ROWS == 0) list.starts[p / BLOCK_ROWS] = (int32_t)count;
        __mmask16 lanes = k - p >= 16 ? 0xFFFF : (__mmask16)((1u << (k - p)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(lanes, column + p);
        // Not equal, unordered: NaN is listed.
        __mmask16 listed = _mm512_mask_cmp_ps_mask(lanes, v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
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

// A unit's entries in one block of rows.
struct entries {
    const int32_t *offsets;
    const float *values;
    long count;
};

// A unit's chains over up to 64 columns of C, 16 to a register.
struct chains {
    __m512 s[4];
};

// The code below is inlined with `registers` a constant: the chains stay in registers.
#define INLINE __attribute__((always_inline)) AVX512 static inline

// The chains as C holds them after earlier blocks, or +0 for the first. The last register
// takes the columns in `lanes`.
INLINE struct chains start_chains(const float *c, int registers, __mmask16 lanes, bool first) {
    struct chains x;
    for (int r = 0; r < registers; r++) {
        __mmask16 here = r == registers - 1 ? lanes : 0xFFFF;
        x.s[r] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(here, c + 16 * r);
    }
    return x;
}

// Adds entry e's value times its row of B (from `b`) to the chains.
INLINE void add_entry(struct chains *x, const char *b, struct entries list, long e, int registers,
                      __mmask16 lanes) {
    const float *row = (const float *)(b + list.offsets[e]);
    __m512 v = _mm512_set1_ps(list.values[e]);
    for (int r = 0; r < registers; r++) {
        __mmask16 here = r == registers - 1 ? lanes : 0xFFFF;
        x->s[r] = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(here, row + 16 * r), x->s[r]);
    }
}

// Stores the chains into C; after the last block as the packed kernel stores them (+0 + sums),
// returning the lanes that are not finite.
INLINE __mmask16 store_chains(float *c, struct chains x, int registers, __mmask16 lanes, bool last) {
    __mmask16 nonfinite = 0;
    for (int r = 0; r < registers; r++) {
        __mmask16 here = r == registers - 1 ? lanes : 0xFFFF;
        __m512 sums = last ? _mm512_add_ps(_mm512_setzero_ps(), x.s[r]) : x.s[r];
        _mm512_mask_storeu_ps(c + 16 * r, here, sums);
        if (last) nonfinite |= nonfinite_lanes(sums) & here;
    }
    return nonfinite;
}

// Sums two units' entries of one block into their rows of C (16 x `registers` columns of B at
// `b`, the last register's in `lanes`), carrying the chains from C unless this is the first
// block; the last block checks what it stores. The units take turns while both have entries:
// each multiply-add waits for the one before on its chain (4 cycles), and eight chains hide
// that where four left the loop at 0.6 multiply-adds a cycle. With c1 NULL, the first alone.
INLINE __mmask16 sum_units(const char *b, struct entries list0, struct entries list1, float *c0, float *c1,
                           int registers, __mmask16 lanes, bool first, bool last) {
    struct chains x0 = start_chains(c0, registers, lanes, first), x1 = x0;
    long both = list0.count < list1.count ? list0.count : list1.count, e = 0;
    if (c1) {
        x1 = start_chains(c1, registers, lanes, first);
        for (; e < both; e++) {
            add_entry(&x0, b, list0, e, registers, lanes);
            add_entry(&x1, b, list1, e, registers, lanes);
        }
        for (long f = e; f < list1.count; f++) add_entry(&x1, b, list1, f, registers, lanes);
    }
    for (; e < list0.count; e++) add_entry(&x0, b, list0, e, registers, lanes);
    __mmask16 nonfinite = store_chains(c0, x0, registers, lanes, last);
    if (c1) nonfinite |= store_chains(c1, x1, registers, lanes, last);
    return nonfinite;
}

// sum_units for 64 columns, and for the last ones (1 to 63), each with its registers a
// constant.
AVX512 static __mmask16 sum_block(const char *b, struct entries list0, struct entries list1, float *c0,
                                  float *c1, long columns, bool first, bool last) {
    __mmask16 lanes = columns % 16 == 0 ? 0xFFFF : (__mmask16)((1u << (columns % 16)) - 1);
    switch ((columns + 15) / 16) {
    case 4:
        return lanes == 0xFFFF ? sum_units(b, list0, list1, c0, c1, 4, 0xFFFF, first, last)
                               : sum_units(b, list0, list1, c0, c1, 4, lanes, first, last);
    case 3: return sum_units(b, list0, list1, c0, c1, 3, lanes, first, last);
    case 2: return sum_units(b, list0, list1, c0, c1, 2, lanes, first, last);
    default: return sum_units(b, list0, list1, c0, c1, 1, lanes, first, last);
    }
}

// Without AVX-512: copy_columns by plain loops, row by row (16 floats, one cache line, of a
// row of A at a time, each to its own column).
static void copy_columns_plain(const float *a, long lda, long k, long u, long units, float *columns, long stride) {
    for (long p = 0; p < k; p++) {
        for (long i = 0; i < units; i++) columns[i * stride + p] = a[p * lda + u + i];
    }
}

// Without AVX-512: list_column by a plain loop that writes every value and moves on past the
// nonzero ones, with no branch to mispredict (half the values are zero, at random).
static long list_column_plain(const float *column, long k, long ldb, struct unit_list list) {
    long count = 0;
    for (long p = 0; p < k; p++) {
        if (p % BLOCK_ROWS == 0) list.starts[p / BLOCK_ROWS] = (int32_t)count;
        list.offsets[count] = (int32_t)(p * ldb * (long)sizeof(float));
        list.values[count] = column[p];
        count += column[p] != 0.0f; // NaN is listed
    }
    list.starts[(k + BLOCK_ROWS - 1) / BLOCK_ROWS] = (int32_t)count;
    return count;
}

// Without AVX-512 (AVX2 and FMA): one unit's entries of one block into its row of C, 64
// columns in eight 8-float registers, eight chains as in sum_units; columns past 64 - 8 *
// (registers - 1) under `last_lanes`. Inlined for 8 registers, and for 1 (the last columns, 8 at
// a time).
__attribute__((always_inline)) AVX2_FMA static inline bool
sum_unit_avx2(const char *b, struct entries list, float *c, int registers, __m256i last_lanes, bool first, bool last) {
    const __m256i all = _mm256_set1_epi32(-1);
    __m256 s[8];
    for (int r = 0; r < registers; r++) {
        __m256i lanes = r == registers - 1 ? last_lanes : all;
        s[r] = first ? _mm256_setzero_ps() : _mm256_maskload_ps(c + 8 * r, lanes);
    }
    for (long e = 0; e < list.count; e++) {
        const float *row = (const float *)(b + list.offsets[e]);
        __m256 v = _mm256_broadcast_ss(list.values + e);
        for (int r = 0; r < registers; r++) {
            __m256i lanes = r == registers - 1 ? last_lanes : all;
            s[r] = _mm256_fmadd_ps(v, _mm256_maskload_ps(row + 8 * r, lanes), s[r]);
        }
    }
    __m256 nonfinite = _mm256_setzero_ps();
    for (int r = 0; r < registers; r++) {
        __m256i lanes = r == registers - 1 ? last_lanes : all;
        __m256 sums = last ? _mm256_add_ps(_mm256_setzero_ps(), s[r]) : s[r];
        _mm256_maskstore_ps(c + 8 * r, lanes, sums);
        // x - x is NaN where x is not finite; the lanes outside the mask are dropped.
        nonfinite = _mm256_or_ps(nonfinite, _mm256_and_ps(_mm256_sub_ps(sums, sums), _mm256_castsi256_ps(lanes)));
    }
    return !last || _mm256_movemask_ps(_mm256_cmp_ps(nonfinite, nonfinite, _CMP_UNORD_Q)) == 0;
}

AVX2_FMA static bool sum_block_avx2(const char *b, struct entries list, float *c, long columns, bool first, bool last) {
    const __m256i all = _mm256_set1_epi32(-1);
    if (columns == BLOCK_COLUMNS) return sum_unit_avx2(b, list, c, 8, all, first, last);
    bool finite = true;
    for (long j = 0; j < columns; j += 8) {
        __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(columns - j)),
                                           _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        finite &= sum_unit_avx2(b + j * (long)sizeof(float), list, c + j, 1, lanes, first, last);
    }
    return finite;
}

// Every unit's lists, laid out in the workspace: unit u's entries at u * list_floats, its
// starts at u * (blocks + 1).
struct lists {
    int32_t *offsets;
    float *values;
    int32_t *starts;
    long list_floats, blocks;
};

// Unit u's list.
static struct unit_list unit_list(const struct lists *lists, long u) {
    return (struct unit_list){lists->offsets + u * lists->list_floats, lists->values + u * lists->list_floats,
                              lists->starts + u * (lists->blocks + 1)};
}

// Unit u's entries in block `block` of rows.
static struct entries block_entries(const struct lists *lists, long u, long block) {
    struct unit_list list = unit_list(lists, u);
    long begin = list.starts[block];
    return (struct entries){list.offsets + begin, list.values + begin, list.starts[block + 1] - begin};
}

// Sums every block into C, two units in turn: whether all of C is finite.
AVX512 static bool sum_blocks_avx512(long m, long n, const float *b, float *c, long ldc, const struct lists *lists) {
    __mmask16 nonfinite = 0;
    for (long j = 0; j < n; j += BLOCK_COLUMNS) {
        long columns = n - j < BLOCK_COLUMNS ? n - j : BLOCK_COLUMNS;
        for (long block = 0; block < lists->blocks; block++) {
            bool first = block == 0, last = block == lists->blocks - 1;
            for (long u = 0; u < m; u += 2) {
                bool pair = u + 1 < m;
                struct entries list1 = pair ? block_entries(lists, u + 1, block) : (struct entries){NULL, NULL, 0};
                nonfinite |= sum_block((const char *)(b + j), block_entries(lists, u, block), list1, c + u * ldc + j,
                                       pair ? c + (u + 1) * ldc + j : NULL, columns, first, last);
            }
        }
    }
    return nonfinite == 0;
}

// sum_blocks_avx512 in AVX2, a unit at a time.
AVX2_FMA static bool sum_blocks_avx2(long m, long n, const float *b, float *c, long ldc, const struct lists *lists) {
    bool finite = true;
    for (long j = 0; j < n; j += BLOCK_COLUMNS) {
        long columns = n - j < BLOCK_COLUMNS ? n - j : BLOCK_COLUMNS;
        for (long block = 0; block < lists->blocks; block++) {
            bool first = block == 0, last = block == lists->blocks - 1;
            for (long u = 0; u < m; u++) {
                finite &= sum_block_avx2((const char *)(b + j), block_entries(lists, u, block), c + u * ldc + j,
                                         columns, first, last);
            }
        }
    }
    return finite;
}

bool bpk_sgemm_sparse_at(long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                         float *c, long ldc, bool *finite) {
    // One chain per value of C in the packed kernel too (see bpk_sgemm_packed_shared_block), and
    // the rows' byte offsets within 32 bits.
    if (m <= 0 || n <= 0 || k <= 0 || n > MAX_C_FLOATS / m || !bpk_has_avx2_fma()
        || bpk_sgemm_packed_shared_block(k) != k
        || (double)k * (double)ldb * sizeof(float) >= (double)INT32_MAX) {
        return false;
    }
    // The workspace: 16 columns of A copied (stride floats each), then every unit's lists.
    long stride = (k + 15) / 16 * 16;
    struct lists lists = {.list_floats = k + LIST_SLACK, .blocks = (k + BLOCK_ROWS - 1) / BLOCK_ROWS};
    float *columns = bpk_thread_workspace((size_t)(16 * stride + 2 * m * lists.list_floats
                                                   + m * (lists.blocks + 1)));
    if (columns == NULL) return false;
    bool avx512 = bpk_avx512_in_use();
    lists.offsets = (int32_t *)(columns + 16 * stride);
    lists.values = (float *)(lists.offsets + m * lists.list_floats);
    lists.starts = (int32_t *)(lists.values + m * lists.list_floats);
    long listed = 0;
    for (long u = 0; u < m; u += 16) {
        long units = m - u < 16 ? m - u : 16;
        if (avx512) copy_columns(a, lda, k, u, units, columns, stride);
        else copy_columns_plain(a, lda, k, u, units, columns, stride);
        for (long i = 0; i < units; i++) {
            struct unit_list list = unit_list(&lists, u + i);
            const float *column = columns + i * stride;
            listed += avx512 ? list_column(column, k, ldb, list) : list_column_plain(column, k, ldb, list);
        }
    }
    if ((double)listed > MAX_DENSITY * (double)m * (double)k) return false;
    bool all_finite = avx512 ? sum_blocks_avx512(m, n, b, c, ldc, &lists) : sum_blocks_avx2(m, n, b, c, ldc, &lists);
    if (finite) *finite = all_finite;
    return true;
}
