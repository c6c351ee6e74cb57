// A product on several threads: C is cut into column ranges (rows, when it has too few columns)
// and each range is computed as a product of its own on one thread, by the library's kernel or
// by OpenBLAS on one thread. The library's kernel sums every value of C in the same order
// whatever the cut, so its results do not depend on the thread count.
#include "BackpropKernels.h"

#include <cblas.h>
#include <stdatomic.h>
#include <string.h>

// Columns and rows of C are cut at multiples of the own kernels' blocks (packed_gemm.c: 16
// columns, and 6 or 8 rows), so that only the last part can end in a partial block.
#define COLUMN_STEP 16
#define ROW_STEP 24
// Below this many multiply-adds (about 20 us on one core), handing parts to other threads costs
// more than it saves: with 2^17, the small benchmark (products of 2^18) ran 1.4-2.7x slower on
// two threads than with this limit, which keeps it on one (results_limits.md).
#define SPLIT_MIN_MULTIPLY_ADDS (1L << 20)

struct split_product {
    enum bpk_gemm_kernel kernel;
    bool trans_a, trans_b, by_columns;
    int parts;
    long m, n, k, lda, ldb, ldc, steps;
    double alpha, beta;
    const void *a, *b;
    void *c;
    // A dense layer's forward stores (BPK_OWN_FLOAT only): see bpk_sgemm_packed_layer.
    const float *bias;
    float *relu;
    long ldr;
    atomic_bool all_finite;
};

static CBLAS_TRANSPOSE transpose(bool transposed) { return transposed ? CblasTrans : CblasNoTrans; }

static void run_part(void *context, int part) {
    struct split_product *p = context;
    long step = p->by_columns ? COLUMN_STEP : ROW_STEP;
    long first = p->steps * part / p->parts * step;
    long end = p->steps * (part + 1) / p->parts * step;
    long extent = p->by_columns ? p->n : p->m;
    if (end > extent) end = extent;
    if (first >= end) return;
    long m = p->by_columns ? p->m : end - first, n = p->by_columns ? end - first : p->n;
    // Where the range starts in op(A) (rows) or op(B) (columns), and in C.
    long a_offset = p->by_columns ? 0 : p->trans_a ? first : first * p->lda;
    long b_offset = !p->by_columns ? 0 : p->trans_b ? first * p->ldb : first;
    long c_offset = p->by_columns ? first : first * p->ldc;
    bool finite = true;
    switch (p->kernel) {
    case BPK_OWN_FLOAT: {
        const float *a = (const float *)p->a + a_offset, *b = (const float *)p->b + b_offset;
        float *c = (float *)p->c + c_offset;
        const float *bias = p->bias ? p->bias + (p->by_columns ? first : 0) : NULL;
        float *relu = p->relu ? p->relu + (p->by_columns ? first : first * p->ldr) : NULL;
        if (!bpk_sgemm_packed_layer(p->trans_a, p->trans_b, m, n, p->k, (float)p->alpha, a, p->lda, b,
                                    p->ldb, (float)p->beta, c, p->ldc, bias, relu, p->ldr, &finite)) {
            // No memory on this thread for the kernel's buffers: plain loops, which need none
            // and check nothing (the caller checks the values again), the layer's stores apart.
            float beta = (float)p->beta;
            if (bias) {
                for (long i = 0; i < m; i++) memcpy(c + i * p->ldc, bias, (size_t)n * sizeof(float));
                beta = 1.0f;
            }
            bpk_sgemm_small(p->trans_a, p->trans_b, m, n, p->k, (float)p->alpha, a, p->lda, b,
                            p->ldb, beta, c, p->ldc);
            for (long i = 0; relu && i < m; i++) {
                for (long j = 0; j < n; j++) {
                    float x = c[i * p->ldc + j];
                    relu[i * p->ldr + j] = x > 0.0f ? x : 0.0f;
                }
            }
            finite = false;
        }
        break;
    }
    case BPK_BLAS_FLOAT:
        cblas_sgemm(CblasRowMajor, transpose(p->trans_a), transpose(p->trans_b), (int)m, (int)n,
                    (int)p->k, (float)p->alpha, (const float *)p->a + a_offset, (int)p->lda,
                    (const float *)p->b + b_offset, (int)p->ldb, (float)p->beta,
                    (float *)p->c + c_offset, (int)p->ldc);
        break;
    case BPK_BLAS_DOUBLE:
        cblas_dgemm(CblasRowMajor, transpose(p->trans_a), transpose(p->trans_b), (int)m, (int)n,
                    (int)p->k, p->alpha, (const double *)p->a + a_offset, (int)p->lda,
                    (const double *)p->b + b_offset, (int)p->ldb, p->beta,
                    (double *)p->c + c_offset, (int)p->ldc);
        break;
    }
    if (!finite) atomic_store_explicit(&p->all_finite, false, memory_order_relaxed);
}

// Cuts `product` into parts and runs them (see bpk_gemm_split).
static int run_split(struct split_product product, int threads, bool *finite) {
    long m = product.m, n = product.n, k = product.k;
    long column_steps = (n + COLUMN_STEP - 1) / COLUMN_STEP, row_steps = (m + ROW_STEP - 1) / ROW_STEP;
    product.by_columns = column_steps >= threads || column_steps >= row_steps;
    product.steps = product.by_columns ? column_steps : row_steps;
    long parts = m * n * k < SPLIT_MIN_MULTIPLY_ADDS ? 1 : threads < product.steps ? threads : product.steps;
    product.parts = (int)(parts < 1 ? 1 : parts);
    int used = bpk_parallel_for(product.parts, run_part, &product);
    if (finite) *finite = atomic_load_explicit(&product.all_finite, memory_order_relaxed);
    return used;
}

int bpk_gemm_split(enum bpk_gemm_kernel kernel, int threads, bool trans_a, bool trans_b, long m,
                    long n, long k, double alpha, const void *a, long lda, const void *b, long ldb,
                    double beta, void *c, long ldc, bool *finite) {
    return run_split((struct split_product){
        .kernel = kernel, .trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n, .k = k,
        .lda = lda, .ldb = ldb, .ldc = ldc, .alpha = alpha, .beta = beta, .a = a, .b = b, .c = c,
        .all_finite = true,
    }, threads, finite);
}

int bpk_gemm_split_layer(int threads, bool trans_a, bool trans_b, long m, long n, long k, float alpha,
                         const float *a, long lda, const float *b, long ldb, float beta, float *c,
                         long ldc, const float *bias, float *relu, long ldr, bool *finite) {
    return run_split((struct split_product){
        .kernel = BPK_OWN_FLOAT, .trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n, .k = k,
        .lda = lda, .ldb = ldb, .ldc = ldc, .alpha = alpha, .beta = beta, .a = a, .b = b, .c = c,
        .bias = bias, .relu = relu, .ldr = ldr, .all_finite = true,
    }, threads, finite);
}
