// Small matrix products in plain loops, ordered so that the innermost loop walks contiguous
// memory (a row of C and of B, or a row of A against a row of B), which the compiler vectorizes.
#include "BackpropKernels.h"

void bpk_sgemm_small(bool trans_a, bool trans_b, long m, long n, long k, float alpha,
                     const float *a, long lda, const float *b, long ldb,
                     float beta, float *c, long ldc) {
    // Let sums be split into vector lanes, as BLAS does.
#pragma clang fp reassociate(on)
    for (long i = 0; i < m; i++) {
        float *row = c + i * ldc;
        if (beta == 0.0f) {
            for (long j = 0; j < n; j++) row[j] = 0.0f;
        } else if (beta != 1.0f) {
            for (long j = 0; j < n; j++) row[j] *= beta;
        }
    }
    if (alpha == 0.0f) {
        return;
    }
    if (!trans_b) {
        // C[i, :] += alpha * A(i, p) * B[p, :]
        for (long i = 0; i < m; i++) {
            float *row = c + i * ldc;
            for (long p = 0; p < k; p++) {
                float x = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
                const float *b_row = b + p * ldb;
                for (long j = 0; j < n; j++) row[j] += x * b_row[j];
            }
        }
        return;
    }
    // op(B)[p, j] = B[j, p]: C[i, j] += alpha * (row i of op(A)) . (row j of B)
    for (long i = 0; i < m; i++) {
        float *row = c + i * ldc;
        for (long j = 0; j < n; j++) {
            const float *b_row = b + j * ldb;
            float sum = 0.0f;
            if (trans_a) {
                for (long p = 0; p < k; p++) sum += a[p * lda + i] * b_row[p];
            } else {
                const float *a_row = a + i * lda;
                for (long p = 0; p < k; p++) sum += a_row[p] * b_row[p];
            }
            row[j] += alpha * sum;
        }
    }
}
