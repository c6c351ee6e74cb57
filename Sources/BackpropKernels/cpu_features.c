// Which vector instructions the kernels may use: what the CPU has, asked at run time, so that
// one build runs on any x86-64 CPU.
#include "BackpropKernels.h"

// Set by bpk_allow_avx512 (tests run every kernel on one CPU).
static _Thread_local bool avx512_refused;

bool bpk_has_avx2_fma(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

bool bpk_has_avx512(void) { return __builtin_cpu_supports("avx512f"); }

void bpk_allow_avx512(bool allowed) { avx512_refused = !allowed; }

bool bpk_avx512_in_use(void) { return bpk_has_avx512() && !avx512_refused; }
