// Small matrix products in plain loops. Each case runs in the loop order whose innermost loop is
// long and walks contiguous memory (which the compiler vectorizes), so that a product of a few
// dozen multiply-adds costs little more than its arithmetic: loops of one or two elements,
// entered once per row, would cost more than the work in them.
#include "BackpropKernels.h"

// C = beta * C, not reading C when beta == 0 (it may hold NaN).
static void scale(long m, long n, float beta, float *restrict c, long ldc) {
    for (long i = 0; i < m; i++) {
        float *row = c + i * ldc;
        if (beta == 0.0f) {
            for (long j = 0; j < n; j++) row[j] = 0.0f;
        } else if (beta != 1.0f) {
            for (long j = 0; j < n; j++) row[j] *= beta;
        }
    }
}

// C += alpha * op(A) B, B k x n row-major: for each row of C, a sum of rows of B.
static void add_times_rows(bool trans_a, long m, long n, long k, float alpha,
                           const float *restrict a, long lda, const float *restrict b, long ldb,
                           float *restrict c, long ldc) {
    for (long i = 0; i < m; i++) {
        float *row = c + i * ldc;
        for (long p = 0; p < k; p++) {
            float x = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
            const float *b_row = b + p * ldb;
            for (long j = 0; j < n; j++) row[j] += x * b_row[j];
        }
    }
}

void bpk_sgemm_small(bool trans_a, bool trans_b, long m, long n, long k, float alpha,
                     const float *restrict a, long lda, const float *restrict b, long ldb,
                     float beta, float *restrict c, long ldc) {
    // Let sums be split into vector lanes, as BLAS does.
#pragma clang fp reassociate(on)
    scale(m, n, beta, c, ldc);
    if (m <= 0 || n <= 0 || k <= 0 || alpha == 0.0f) {
        return;
    }
    if (trans_b && !trans_a && k >= 8) {
        // Rows of A against rows of B: dot products long enough to vectorize.
        for (long i = 0; i < m; i++) {
            const float *a_row = a + i * lda;
            for (long j = 0; j < n; j++) {
                const float *b_row = b + j * ldb;
                float sum = 0.0f;
                for (long p = 0; p < k; p++) sum += a_row[p] * b_row[p];
                c[i * ldc + j] += alpha * sum;
            }
        }
        return;
    }
    // Otherwise B as k x n rows: copied when it is stored transposed (k * n <= the limit).
    float copy[BPK_SMALL_GEMM_LIMIT];
    if (trans_b) {
        for (long p = 0; p < k; p++) {
            for (long j = 0; j < n; j++) copy[p * n + j] = b[j * ldb + p];
        }
        b = copy;
        ldb = n;
    }
    if (trans_a && n < 8 && m > n) {
        // A stored k x m, C narrow: C's columns as sums of rows of A, innermost over m, into a
        // transposed buffer (n * m <= the limit).
        float columns[BPK_SMALL_GEMM_LIMIT];
        for (long i = 0; i < n * m; i++) columns[i] = 0.0f;
        for (long j = 0; j < n; j++) {
            float *column = columns + j * m;
            for (long p = 0; p < k; p++) {
                float y = alpha * b[p * ldb + j];
                const float *a_row = a + p * lda;
                for (long i = 0; i < m; i++) column[i] += y * a_row[i];
            }
        }
        // Column by column: a long inner loop, where row by row it would be n (< 8) long.
        for (long j = 0; j < n; j++) {
            for (long i = 0; i < m; i++) c[i * ldc + j] += columns[j * m + i];
        }
        return;
    }
    add_times_rows(trans_a, m, n, k, alpha, a, lda, b, ldb, c, ldc);
}
