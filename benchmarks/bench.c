/*
 * bench.c: the C side of `make bench`. One measurement per run, printed as one JSON object on
 * stdout; benchmarks/run.py starts a fresh process for each (so that peak RSS belongs to one
 * configuration) and writes RESULTS.md from the objects.
 *
 *   bench info
 *       the BLAS kernel (openblas_get_corename, openblas_get_config) and the library version
 *   bench train --layers 784,256,128,10 --batch 64 --threads 1 [--seconds 0.5] [--repeats 7]
 *               [--calls 1|4]
 *       trains with an SGD optimizer (momentum 0.9, lr 0.01) on synthetic data, one call a
 *       step (bp_optimizer_train_step_labels), or with --calls 4 the four calls it stands for
 *       (zero_grad, forward, backward_labels, optimizer step); reports step times and peak
 *       RSS: of the whole process, of building the network, and of training alone (the
 *       high-water mark is reset before the first step)
 *   bench gemm  --layers ... --batch ... --threads ...
 *       times the GEMMs one training step of that network needs (cblas_sgemm on the same
 *       shapes and transposes), and a plain-C SGD-momentum update of the same parameters
 *   bench peak
 *       one core's multiply-add throughput in float32: independent chains of 8-float FMAs,
 *       as many as keep both FMA pipes busy; what a GEMM kernel's inner loop reaches at best
 *   bench alloc --layers ... --batch ... --threads ... [--steps 50]
 *       counts heap allocations in the first training step and in each of the next --steps;
 *       needs LD_PRELOAD=libmalloc_count.so (see malloc_count.c; BENCH_ALLOC_TRACE=n prints
 *       where the first n allocations after step 1 come from). With libgemm_count.so preloaded
 *       too, it also counts the cblas_sgemm calls and their flops (BENCH_GEMM_TRACE=n prints
 *       the shapes of the first n after step 1)
 *
 * Timing: a warm-up of at least --warmup seconds (and 5 steps) measures the rate; each timing
 * then runs enough steps to last about --seconds, and --repeats timings are reported (the
 * driver takes the median). Clock: CLOCK_MONOTONIC.
 *
 * Data: D = 8 minibatches of inputs drawn from N(0, 1) and labels uniform over the classes,
 * from a fixed seed, used in turn. The values do not affect the speed of dense layers.
 */
#define _GNU_SOURCE
#include <backprop.h>
#include <cblas.h>
#include <dlfcn.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_LAYERS 8
#define DATA_BATCHES 8
#define MAX_REPEATS 64

typedef struct options {
    const char *mode;
    size_t widths[MAX_LAYERS + 1]; /* input width, then each layer's units */
    size_t width_count;
    size_t batch;
    int threads;
    double seconds;
    double warmup;
    int repeats;
    long steps;
    int calls;
} options;

static void die(const char *what) {
    fprintf(stderr, "bench: %s\n", what);
    exit(2);
}

static void check(bp_status status, const char *call) {
    if (status != BP_OK) {
        fprintf(stderr, "bench: %s failed: %s (%s)\n", call, bp_status_string(status),
                bp_last_error());
        exit(1);
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long vm_hwm_bytes(void);

/* Peak RSS: the high-water mark of this process's address space (VmHWM in /proc/self/status).
 * getrusage's ru_maxrss is the same counter on Linux, except that exec carries the forking
 * parent's peak over into it: started from the Python driver, ru_maxrss never reads below the
 * driver's own RSS. So VmHWM first, getrusage where /proc is missing. */
static long peak_rss_bytes(void) {
    long hwm = vm_hwm_bytes();
    if (hwm >= 0) return hwm;
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss * 1024L; /* Linux reports kilobytes */
}

/* The resident-set high-water mark can be reset (Linux 4.0+: "5" into /proc/self/clear_refs)
 * and read back as VmHWM, which separates the peak while training from the peak of building the
 * network. Returns -1 where that is not available. */
static int reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static long vm_hwm_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024L;
}

static void *checked_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) die("out of memory");
    return p;
}

/* splitmix64, and standard normals by Box-Muller: deterministic synthetic data. */
static uint64_t rng_state = 0x5eed5eedULL;
static uint64_t next_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double next_uniform(void) { return (double)((next_u64() >> 11) + 1) * 0x1.0p-53; }
static float next_normal(void) {
    return (float)(sqrt(-2.0 * log(next_uniform())) * cos(6.283185307179586 * next_uniform()));
}
static void fill_normal(float *values, size_t count) {
    for (size_t i = 0; i < count; i++) values[i] = next_normal();
}

static void parse_layers(options *o, const char *text) {
    char *copy = strdup(text), *save = NULL;
    o->width_count = 0;
    for (char *part = strtok_r(copy, ",-", &save); part; part = strtok_r(NULL, ",-", &save)) {
        if (o->width_count == MAX_LAYERS + 1) die("too many layers");
        long w = strtol(part, NULL, 10);
        if (w < 1) die("bad --layers");
        o->widths[o->width_count++] = (size_t)w;
    }
    free(copy);
    if (o->width_count < 2) die("--layers needs an input width and at least one layer");
}

static options parse(int argc, char **argv) {
    options o = {.batch = 0, .threads = 1, .seconds = 0.5, .warmup = 0.3, .repeats = 7,
                 .steps = 50, .calls = 1};
    if (argc < 2) die("usage: bench info | peak | train | gemm | alloc --layers A,B,.. --batch N --threads T");
    o.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *key = argv[i];
        if (i + 1 >= argc) die("an option lacks its value");
        const char *value = argv[++i];
        if (!strcmp(key, "--layers")) parse_layers(&o, value);
        else if (!strcmp(key, "--batch")) o.batch = (size_t)strtol(value, NULL, 10);
        else if (!strcmp(key, "--threads")) o.threads = (int)strtol(value, NULL, 10);
        else if (!strcmp(key, "--seconds")) o.seconds = strtod(value, NULL);
        else if (!strcmp(key, "--warmup")) o.warmup = strtod(value, NULL);
        else if (!strcmp(key, "--repeats")) o.repeats = (int)strtol(value, NULL, 10);
        else if (!strcmp(key, "--steps")) o.steps = strtol(value, NULL, 10);
        else if (!strcmp(key, "--calls")) o.calls = (int)strtol(value, NULL, 10);
        else die("unknown option");
    }
    if (o.repeats < 1 || o.repeats > MAX_REPEATS) die("--repeats must be in 1..64");
    if (o.threads < 1) die("--threads must be at least 1");
    if (o.calls != 1 && o.calls != 4) die("--calls must be 1 or 4");
    return o;
}

/* ---- Timing ---------------------------------------------------------------------------------- */

typedef void (*step_fn)(void *context, long step);

typedef struct timing {
    long warmup_steps;
    long steps_per_timing;
    int repeats;
    double seconds[MAX_REPEATS];
} timing;

/* Warm up for at least o->warmup seconds (and 5 steps), then time o->repeats runs of as many
 * steps as last about o->seconds at the warm-up's rate. */
static timing time_steps(const options *o, step_fn step, void *context, long *counter) {
    timing t = {0};
    double start = now(), elapsed = 0;
    long n = 0;
    while (n < 5 || elapsed < o->warmup) {
        step(context, (*counter)++);
        n++;
        elapsed = now() - start;
    }
    t.warmup_steps = n;
    double per_step = elapsed / (double)n;
    long steps = (long)(o->seconds / per_step);
    t.steps_per_timing = steps < 3 ? 3 : steps;
    t.repeats = o->repeats;
    for (int r = 0; r < o->repeats; r++) {
        double t0 = now();
        for (long i = 0; i < t.steps_per_timing; i++) step(context, (*counter)++);
        t.seconds[r] = now() - t0;
    }
    return t;
}

static void print_timing(const timing *t) {
    printf("\"warmup_steps\": %ld, \"steps_per_timing\": %ld, \"seconds\": [", t->warmup_steps,
           t->steps_per_timing);
    for (int r = 0; r < t->repeats; r++) printf("%s%.9g", r ? ", " : "", t->seconds[r]);
    printf("]");
}

static void print_layers(const options *o) {
    printf("\"layers\": [");
    for (size_t i = 0; i < o->width_count; i++) printf("%s%zu", i ? ", " : "", o->widths[i]);
    printf("], \"batch\": %zu, \"threads\": %d", o->batch, o->threads);
}

/* ---- The CPU's multiply-add peak ----------------------------------------------------------- */

/* Twelve chains: an FMA's result is ready 4 cycles later and two start each cycle, so at least
 * 8 independent chains keep the pipes full. Each chain converges to 0.1 and stays finite. */
#define PEAK_ITERATIONS 10000
#define PEAK_FLOPS_PER_STEP (12.0 * 8 * 2 * PEAK_ITERATIONS)

__attribute__((target("avx2,fma"))) static void peak_step(void *context, long step) {
    (void)step;
    float *state = context;
    const __m256 scale = _mm256_set1_ps(0.999f), shift = _mm256_set1_ps(1e-4f);
    /* Different starting values, so that the compiler cannot merge chains. */
    const float x = state[0];
    __m256 c0 = _mm256_set1_ps(x), c1 = _mm256_set1_ps(x + 1), c2 = _mm256_set1_ps(x + 2),
           c3 = _mm256_set1_ps(x + 3), c4 = _mm256_set1_ps(x + 4), c5 = _mm256_set1_ps(x + 5),
           c6 = _mm256_set1_ps(x + 6), c7 = _mm256_set1_ps(x + 7), c8 = _mm256_set1_ps(x + 8),
           c9 = _mm256_set1_ps(x + 9), c10 = _mm256_set1_ps(x + 10), c11 = _mm256_set1_ps(x + 11);
    for (int i = 0; i < PEAK_ITERATIONS; i++) {
        c0 = _mm256_fmadd_ps(c0, scale, shift), c1 = _mm256_fmadd_ps(c1, scale, shift);
        c2 = _mm256_fmadd_ps(c2, scale, shift), c3 = _mm256_fmadd_ps(c3, scale, shift);
        c4 = _mm256_fmadd_ps(c4, scale, shift), c5 = _mm256_fmadd_ps(c5, scale, shift);
        c6 = _mm256_fmadd_ps(c6, scale, shift), c7 = _mm256_fmadd_ps(c7, scale, shift);
        c8 = _mm256_fmadd_ps(c8, scale, shift), c9 = _mm256_fmadd_ps(c9, scale, shift);
        c10 = _mm256_fmadd_ps(c10, scale, shift), c11 = _mm256_fmadd_ps(c11, scale, shift);
    }
    /* Keep every chain's result, so that none is optimized away. */
    __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                               _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    sum = _mm256_add_ps(sum, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    state[0] = _mm256_cvtss_f32(sum) / 12.0f;
}

static int run_peak(const options *o) {
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        printf("{\"mode\": \"peak\", \"error\": \"this CPU lacks AVX2 or FMA\"}\n");
        return 0;
    }
    float state = 1.0f;
    long counter = 0;
    timing t = time_steps(o, peak_step, &state, &counter);
    printf("{\"mode\": \"peak\", \"flops_per_step\": %.0f, ", PEAK_FLOPS_PER_STEP);
    print_timing(&t);
    printf(", \"final_value\": %g}\n", state);
    return 0;
}

/* ---- Training with libbackprop ------------------------------------------------------------- */

typedef struct trainer {
    bp_net *net;
    bp_optimizer *optimizer;
    size_t batch, in, out;
    float *inputs[DATA_BATCHES];
    int32_t *labels[DATA_BATCHES];
    float *outputs;
    float loss;
} trainer;

static void trainer_init(trainer *t, const options *o) {
    memset(t, 0, sizeof *t);
    t->batch = o->batch;
    t->in = o->widths[0];
    t->out = o->widths[o->width_count - 1];
    check(bp_set_num_threads(o->threads), "bp_set_num_threads");
    check(bp_net_create(t->in, 42, &t->net), "bp_net_create");
    for (size_t l = 1; l < o->width_count; l++) {
        bp_activation act = l + 1 < o->width_count ? BP_ACTIVATION_RELU : BP_ACTIVATION_NONE;
        check(bp_net_add_dense(t->net, o->widths[l], act), "bp_net_add_dense");
    }
    check(bp_net_set_loss(t->net, BP_LOSS_CROSS_ENTROPY), "bp_net_set_loss");
    bp_optimizer_options sgd;
    check(bp_optimizer_options_default(BP_OPTIMIZER_SGD, &sgd), "bp_optimizer_options_default");
    sgd.learning_rate = 0.01;
    sgd.momentum = 0.9;
    check(bp_optimizer_create(BP_OPTIMIZER_SGD, &sgd, &t->optimizer), "bp_optimizer_create");
    for (int d = 0; d < DATA_BATCHES; d++) {
        t->inputs[d] = checked_malloc(t->batch * t->in * sizeof(float));
        t->labels[d] = checked_malloc(t->batch * sizeof(int32_t));
        fill_normal(t->inputs[d], t->batch * t->in);
        for (size_t i = 0; i < t->batch; i++) t->labels[d][i] = (int32_t)(next_u64() % t->out);
    }
    t->outputs = checked_malloc(t->batch * t->out * sizeof(float));
}

/* One training step in one call, as a training loop would write it. */
static void trainer_step(void *context, long step) {
    trainer *t = context;
    int d = (int)(step % DATA_BATCHES);
    check(bp_optimizer_train_step_labels(t->optimizer, t->net, t->batch, t->inputs[d],
                                         t->batch * t->in, t->labels[d], t->batch, &t->loss),
          "bp_optimizer_train_step_labels");
}

/* The same step in the four calls it stands for (--calls 4): shows what a call costs. */
static void trainer_step_four_calls(void *context, long step) {
    trainer *t = context;
    int d = (int)(step % DATA_BATCHES);
    check(bp_net_zero_grad(t->net), "bp_net_zero_grad");
    check(bp_net_forward(t->net, t->batch, t->inputs[d], t->batch * t->in, t->outputs,
                         t->batch * t->out), "bp_net_forward");
    check(bp_net_backward_labels(t->net, t->labels[d], t->batch, &t->loss),
          "bp_net_backward_labels");
    check(bp_optimizer_step(t->optimizer, t->net), "bp_optimizer_step");
}

static int run_train(const options *o) {
    trainer t;
    trainer_init(&t, o);
    long counter = 0;
    float first_loss;
    long setup_rss = peak_rss_bytes();
    int reset = reset_peak_rss();
    step_fn step = o->calls == 4 ? trainer_step_four_calls : trainer_step;
    step(&t, counter++);
    first_loss = t.loss;
    timing tm = time_steps(o, step, &t, &counter);
    size_t parameters = 0;
    check(bp_net_parameter_count(t.net, &parameters), "bp_net_parameter_count");
    printf("{\"mode\": \"train\", ");
    print_layers(o);
    printf(", \"calls\": %d, \"parameters\": %zu, ", o->calls, parameters);
    print_timing(&tm);
    printf(", \"total_steps\": %ld, \"first_loss\": %.9g, \"last_loss\": %.9g", counter,
           first_loss, t.loss);
    printf(", \"data_bytes\": %zu, \"peak_rss_bytes\": %ld, \"setup_peak_rss_bytes\": %ld"
           ", \"training_peak_rss_bytes\": %ld}\n",
           DATA_BATCHES * t.batch * (t.in * sizeof(float) + sizeof(int32_t)) +
               t.batch * t.out * sizeof(float),
           /* the reset lowered the high-water mark: the process peak is the larger */
           setup_rss > peak_rss_bytes() ? setup_rss : peak_rss_bytes(), setup_rss,
           reset == 0 ? peak_rss_bytes() : -1L);
    bp_optimizer_free(t.optimizer);
    bp_net_free(t.net);
    return 0;
}

/* ---- Allocations per step (under the LD_PRELOAD shim) ------------------------------------- */

typedef void (*alloc_counts_fn)(uint64_t *calls, uint64_t *bytes, uint64_t *frees);
typedef void (*alloc_trace_fn)(int64_t n);
typedef void (*gemm_counts_fn)(uint64_t *calls, uint64_t *flops);

/* dlsym returns an object pointer; POSIX guarantees that it converts to a function pointer. */
static void *find_symbol(const char *name, void *function_pointer, size_t size) {
    void *symbol = dlsym(RTLD_DEFAULT, name);
    if (symbol) memcpy(function_pointer, &symbol, size);
    return symbol;
}

static int run_alloc(const options *o) {
    alloc_counts_fn counts;
    alloc_trace_fn trace, gemm_trace;
    gemm_counts_fn gemms;
    if (!find_symbol("bench_alloc_counts", &counts, sizeof counts))
        die("alloc mode needs LD_PRELOAD=.../libmalloc_count.so");
    void *can_trace = find_symbol("bench_alloc_trace", &trace, sizeof trace);
    const char *trace_count = getenv("BENCH_ALLOC_TRACE");
    /* Optional: libgemm_count.so counts the GEMMs of the same steps. */
    void *can_count_gemms = find_symbol("bench_gemm_counts", &gemms, sizeof gemms);
    void *can_trace_gemms = find_symbol("bench_gemm_trace", &gemm_trace, sizeof gemm_trace);
    const char *gemm_trace_count = getenv("BENCH_GEMM_TRACE");
    uint64_t g1 = 0, gf1 = 0, g2 = 0, gf2 = 0;
    trainer t;
    trainer_init(&t, o);
    if (o->steps < 1 || o->steps > 100000) die("--steps must be in 1..100000");
    uint64_t c0, b0, f0, c1, b1, f1, c2, b2, f2, before, after;
    uint64_t *per_step = checked_malloc((size_t)o->steps * sizeof(uint64_t));
    counts(&c0, &b0, &f0);
    trainer_step(&t, 0);
    counts(&c1, &b1, &f1);
    if (can_count_gemms) gemms(&g1, &gf1);
    if (trace_count && can_trace) trace(strtol(trace_count, NULL, 10));
    if (gemm_trace_count && can_trace_gemms) gemm_trace(strtol(gemm_trace_count, NULL, 10));
    for (long s = 1; s <= o->steps; s++) {
        counts(&before, NULL, NULL);
        trainer_step(&t, s);
        counts(&after, NULL, NULL);
        per_step[s - 1] = after - before;
    }
    counts(&c2, &b2, &f2);
    if (can_count_gemms) gemms(&g2, &gf2);
    printf("{\"mode\": \"alloc\", ");
    print_layers(o);
    printf(", \"first_step_allocations\": %llu, \"first_step_bytes\": %llu",
           (unsigned long long)(c1 - c0), (unsigned long long)(b1 - b0));
    printf(", \"later_steps\": %ld, \"later_allocations\": %llu, \"later_bytes\": %llu"
           ", \"later_frees\": %llu, \"later_by_step\": [",
           o->steps, (unsigned long long)(c2 - c1), (unsigned long long)(b2 - b1),
           (unsigned long long)(f2 - f1));
    for (long s = 0; s < o->steps; s++) printf("%s%llu", s ? ", " : "", (unsigned long long)per_step[s]);
    printf("]");
    if (can_count_gemms)
        printf(", \"later_gemm_calls\": %llu, \"later_gemm_flops\": %llu",
               (unsigned long long)(g2 - g1), (unsigned long long)(gf2 - gf1));
    printf("}\n");
    free(per_step);
    bp_optimizer_free(t.optimizer);
    bp_net_free(t.net);
    return 0;
}

/* ---- The GEMMs of one training step, alone ---------------------------------------------------
 * For a layer with k inputs and n units on a batch of B, a step needs
 *   forward        Z[B,n]  = X[B,k] W[n,k]^T   (NoTrans, Trans)
 *   weight grad    dW[n,k] = dZ[B,n]^T X[B,k]  (Trans, NoTrans)
 *   input grad     dX[B,k] = dZ[B,n] W[n,k]    (NoTrans, NoTrans), not for the first layer
 * run here in the order a step runs them (forwards, then backwards from the last layer). */

typedef struct gemm_layer {
    int k, n;
    float *x, *w, *z, *dz, *dw, *dx;
} gemm_layer;

typedef struct gemm_set {
    int batch;
    size_t count;
    gemm_layer layers[MAX_LAYERS];
    /* the parameter update alone: SGD with momentum over every weight and bias */
    size_t parameters;
    float *params, *grads, *momentum;
} gemm_set;

static void gemm_forward(gemm_layer *l, int b) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, l->n, l->k, 1.0f, l->x, l->k, l->w,
                l->k, 0.0f, l->z, l->n);
}
static void gemm_weight_grad(gemm_layer *l, int b) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->n, l->k, b, 1.0f, l->dz, l->n, l->x,
                l->k, 0.0f, l->dw, l->k);
}
static void gemm_input_grad(gemm_layer *l, int b) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, l->k, l->n, 1.0f, l->dz, l->n,
                l->w, l->k, 0.0f, l->dx, l->k);
}

static void gemm_step(void *context, long step) {
    (void)step;
    gemm_set *g = context;
    for (size_t i = 0; i < g->count; i++) gemm_forward(&g->layers[i], g->batch);
    for (size_t i = g->count; i-- > 0;) {
        gemm_weight_grad(&g->layers[i], g->batch);
        if (i > 0) gemm_input_grad(&g->layers[i], g->batch);
    }
}

/* torch.optim.SGD with momentum 0.9, lr 0.01: buf = 0.9 buf + g; w -= 0.01 buf. */
static void update_step(void *context, long step) {
    (void)step;
    gemm_set *g = context;
    float *restrict w = g->params, *restrict buf = g->momentum;
    const float *restrict grad = g->grads;
    for (size_t i = 0; i < g->parameters; i++) {
        buf[i] = 0.9f * buf[i] + grad[i];
        w[i] -= 0.01f * buf[i];
    }
}

typedef void (*single_gemm)(gemm_layer *, int);
typedef struct one_gemm { gemm_layer *layer; int batch; single_gemm run; } one_gemm;
static void one_gemm_step(void *context, long step) {
    (void)step;
    one_gemm *g = context;
    g->run(g->layer, g->batch);
}

static float *random_matrix(size_t count) {
    float *m = checked_malloc(count * sizeof(float));
    fill_normal(m, count);
    return m;
}

static int run_gemm(const options *o) {
    openblas_set_num_threads(o->threads);
    gemm_set g = {.batch = (int)o->batch, .count = o->width_count - 1};
    size_t b = o->batch, matrix_bytes = 0;
    for (size_t i = 0; i < g.count; i++) {
        gemm_layer *l = &g.layers[i];
        l->k = (int)o->widths[i];
        l->n = (int)o->widths[i + 1];
        size_t k = (size_t)l->k, n = (size_t)l->n;
        l->x = i == 0 ? random_matrix(b * k) : g.layers[i - 1].z;
        l->w = random_matrix(n * k);
        l->z = random_matrix(b * n);
        l->dz = random_matrix(b * n);
        l->dw = random_matrix(n * k);
        l->dx = i == 0 ? NULL : random_matrix(b * k);
        matrix_bytes += (2 * n * k + 2 * b * n + (i == 0 ? b * k : b * k)) * sizeof(float);
        g.parameters += n * k + n;
    }
    g.params = random_matrix(g.parameters);
    g.grads = random_matrix(g.parameters);
    g.momentum = random_matrix(g.parameters);
    long counter = 0;
    timing all = time_steps(o, gemm_step, &g, &counter);
    timing update = time_steps(o, update_step, &g, &counter);

    printf("{\"mode\": \"gemm\", ");
    print_layers(o);
    printf(", \"corename\": \"%s\", \"step\": {", openblas_get_corename());
    print_timing(&all);
    printf("}, \"update\": {\"parameters\": %zu, ", g.parameters);
    print_timing(&update);
    printf("}, \"gemms\": [");
    /* Each GEMM alone, with shorter timings: which shape is slow. */
    options single = *o;
    single.seconds = o->seconds / 4;
    single.warmup = o->warmup / 4;
    single.repeats = o->repeats < 5 ? o->repeats : 5;
    int first = 1;
    for (size_t i = 0; i < g.count; i++) {
        gemm_layer *l = &g.layers[i];
        struct { const char *name; single_gemm run; int m, n, k; } kinds[3] = {
            {"forward", gemm_forward, (int)b, l->n, l->k},
            {"weight_grad", gemm_weight_grad, l->n, l->k, (int)b},
            {"input_grad", gemm_input_grad, (int)b, l->k, l->n},
        };
        for (int j = 0; j < 3; j++) {
            if (j == 2 && i == 0) continue;
            one_gemm one = {l, (int)b, kinds[j].run};
            timing t = time_steps(&single, one_gemm_step, &one, &counter);
            printf("%s{\"layer\": %zu, \"kind\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, ",
                   first ? "" : ", ", i, kinds[j].name, kinds[j].m, kinds[j].n, kinds[j].k);
            print_timing(&t);
            printf("}");
            first = 0;
        }
    }
    printf("], \"matrix_bytes\": %zu, \"peak_rss_bytes\": %ld}\n",
           matrix_bytes + 3 * g.parameters * sizeof(float), peak_rss_bytes());
    return 0;
}

/* ---- Info ------------------------------------------------------------------------------------ */

static void print_json_string(const char *s) {
    putchar('"');
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

static int run_info(void) {
    printf("{\"mode\": \"info\", \"bp_version\": ");
    print_json_string(bp_version());
    printf(", \"corename\": ");
    print_json_string(openblas_get_corename());
    printf(", \"config\": ");
    print_json_string(openblas_get_config());
    printf(", \"blas_threads\": %d, \"peak_rss_bytes\": %ld}\n", openblas_get_num_threads(),
           peak_rss_bytes());
    return 0;
}

int main(int argc, char **argv) {
    options o = parse(argc, argv);
    if (!strcmp(o.mode, "info")) return run_info();
    if (!strcmp(o.mode, "peak")) return run_peak(&o);
    if (o.width_count < 2 || o.batch < 1) die("--layers and --batch are required");
    next_u64(); /* the data stream starts from the same state in every mode */
    if (!strcmp(o.mode, "train")) return run_train(&o);
    if (!strcmp(o.mode, "gemm")) return run_gemm(&o);
    if (!strcmp(o.mode, "alloc")) return run_alloc(&o);
    die("unknown mode (info, peak, train, gemm, alloc)");
    return 2;
}
