// Optimizer updates in vector code chosen at run time. The core's own loops compile for any
// x86-64 CPU, so SSE, four floats an instruction; for a network whose parameters sit in cache
// (mnist's 235k), the SGD update was then bound by instructions, not memory: 8% of an mnist-64
// step (results_limits.md).
#include "BackpropKernels.h"

#include <immintrin.h>

// The bits of the plain loop (UpdateLoop.swift): each product rounded, then each sum; a fused
// multiply-add would round once and differ.
#pragma clang fp contract(off)

#define AVX2_FMA __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f")))

// Elements [first, count) one at a time.
static void sgd_momentum_plain(float *p, const float *g, float *buffer, long first, long count,
                               float lr, float wd, float keep, float take) {
    for (long i = first; i < count; i++) {
        buffer[i] = keep * buffer[i] + take * (g[i] + wd * p[i]);
        p[i] -= lr * buffer[i];
    }
}

AVX2_FMA static void sgd_momentum_avx2(float *p, const float *g, float *buffer, long count,
                                       float lr, float wd, float keep, float take) {
    const __m256 vlr = _mm256_set1_ps(lr), vwd = _mm256_set1_ps(wd),
                 vkeep = _mm256_set1_ps(keep), vtake = _mm256_set1_ps(take);
    long i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 parameter = _mm256_loadu_ps(p + i);
        __m256 decayed = _mm256_add_ps(_mm256_loadu_ps(g + i), _mm256_mul_ps(vwd, parameter));
        __m256 b = _mm256_add_ps(_mm256_mul_ps(vkeep, _mm256_loadu_ps(buffer + i)),
                                 _mm256_mul_ps(vtake, decayed));
        _mm256_storeu_ps(buffer + i, b);
        _mm256_storeu_ps(p + i, _mm256_sub_ps(parameter, _mm256_mul_ps(vlr, b)));
    }
    sgd_momentum_plain(p, g, buffer, i, count, lr, wd, keep, take);
}

AVX512 static void sgd_momentum_avx512(float *p, const float *g, float *buffer, long count,
                                       float lr, float wd, float keep, float take) {
    const __m512 vlr = _mm512_set1_ps(lr), vwd = _mm512_set1_ps(wd),
                 vkeep = _mm512_set1_ps(keep), vtake = _mm512_set1_ps(take);
    for (long i = 0; i < count; i += 16) {
        // The last elements, fewer than 16, under a mask: lanes past the end are not touched.
        __mmask16 lanes = count - i >= 16 ? 0xFFFF : (__mmask16)((1u << (count - i)) - 1);
        __m512 parameter = _mm512_maskz_loadu_ps(lanes, p + i);
        __m512 decayed = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, g + i), _mm512_mul_ps(vwd, parameter));
        __m512 b = _mm512_add_ps(_mm512_mul_ps(vkeep, _mm512_maskz_loadu_ps(lanes, buffer + i)),
                                 _mm512_mul_ps(vtake, decayed));
        _mm512_mask_storeu_ps(buffer + i, lanes, b);
        _mm512_mask_storeu_ps(p + i, lanes, _mm512_sub_ps(parameter, _mm512_mul_ps(vlr, b)));
    }
}

void bpk_sgd_momentum(float *parameters, const float *gradients, float *buffer, long count,
                      float learning_rate, float weight_decay, float keep, float take) {
    if (bpk_avx512_in_use()) {
        sgd_momentum_avx512(parameters, gradients, buffer, count, learning_rate, weight_decay, keep, take);
    } else if (bpk_has_avx2_fma()) {
        sgd_momentum_avx2(parameters, gradients, buffer, count, learning_rate, weight_decay, keep, take);
    } else {
        sgd_momentum_plain(parameters, gradients, buffer, 0, count, learning_rate, weight_decay, keep, take);
    }
}
