// The backward pass of ReLU in a dense network's planned step, in vector code chosen at run
// time (the core's own loops compile for any x86-64 CPU, so SSE). One pass does what two did:
// ReLU's gradient, and the column sums of it that are the bias gradient of the layer below.
#include "BackpropKernels.h"

#include <immintrin.h>

// Each product rounded, then each sum, as the plain loop: no fused multiply-adds.
#pragma clang fp contract(off)

#define AVX2_FMA __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f")))

// The formula of the graph's ReLU backward (ElementwiseUnaryOp.backward) added to a zeroed
// gradient: 0 + (upstream == 0 ? 0 : upstream * derivative), the derivative 1 where the input x
// is > 0, else 0. The same bits as that loop, even where upstream is infinite or NaN, and +0 for
// -0. It reads ReLU's output y, which is > 0 exactly where x is: y was read last by the weight
// gradient of the layer above, and is likely still in cache, where x was last read in the
// forward pass. Columns [first, columns) of one row, one at a time.
static void relu_backward_plain(const float *y, const float *upstream, float *gradient,
                                float *bias_gradient, long first, long columns) {
    for (long j = first; j < columns; j++) {
        float share = upstream[j] * (y[j] > 0.0f ? 1.0f : 0.0f);
        gradient[j] = 0.0f + (upstream[j] == 0.0f ? 0.0f : share);
        bias_gradient[j] += gradient[j];
    }
}

AVX2_FMA static void relu_backward_avx2(const float *y, const float *upstream, float *gradient,
                                        float *bias_gradient, long columns) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    long j = 0;
    for (; j + 8 <= columns; j += 8) {
        __m256 u = _mm256_loadu_ps(upstream + j);
        __m256 derivative = _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(y + j), zero, _CMP_GT_OQ), one);
        __m256 nonzero = _mm256_cmp_ps(u, zero, _CMP_NEQ_UQ);
        __m256 g = _mm256_add_ps(zero, _mm256_and_ps(nonzero, _mm256_mul_ps(u, derivative)));
        _mm256_storeu_ps(gradient + j, g);
        _mm256_storeu_ps(bias_gradient + j, _mm256_add_ps(_mm256_loadu_ps(bias_gradient + j), g));
    }
    relu_backward_plain(y, upstream, gradient, bias_gradient, j, columns);
}

AVX512 static void relu_backward_avx512(const float *y, const float *upstream, float *gradient,
                                        float *bias_gradient, long columns) {
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    for (long j = 0; j < columns; j += 16) {
        // The last columns, fewer than 16, under a mask: lanes past the end are not touched.
        __mmask16 lanes = columns - j >= 16 ? 0xFFFF : (__mmask16)((1u << (columns - j)) - 1);
        __m512 u = _mm512_maskz_loadu_ps(lanes, upstream + j);
        __m512 derivative = _mm512_maskz_mov_ps(
            _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(lanes, y + j), zero, _CMP_GT_OQ), one);
        __mmask16 nonzero = _mm512_cmp_ps_mask(u, zero, _CMP_NEQ_UQ);
        __m512 g = _mm512_add_ps(zero, _mm512_maskz_mov_ps(nonzero, _mm512_mul_ps(u, derivative)));
        _mm512_mask_storeu_ps(gradient + j, lanes, g);
        __m512 sums = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, bias_gradient + j), g);
        _mm512_mask_storeu_ps(bias_gradient + j, lanes, sums);
    }
}

void bpk_relu_backward(const float *y, const float *upstream, float *gradient, float *bias_gradient,
                       long rows, long columns) {
    bool avx512 = bpk_avx512_in_use(), avx2 = bpk_has_avx2_fma();
    for (long r = 0; r < rows; r++) {
        const float *y_row = y + r * columns, *upstream_row = upstream + r * columns;
        float *gradient_row = gradient + r * columns;
        if (avx512) {
            relu_backward_avx512(y_row, upstream_row, gradient_row, bias_gradient, columns);
        } else if (avx2) {
            relu_backward_avx2(y_row, upstream_row, gradient_row, bias_gradient, columns);
        } else {
            relu_backward_plain(y_row, upstream_row, gradient_row, bias_gradient, 0, columns);
        }
    }
}
