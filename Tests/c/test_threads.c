/*
 * test_threads.c: the header's thread-safety promise, from pthreads.
 *
 *   - Distinct handles may be used from different threads at once: N threads training N networks
 *     (manual steps, an optimizer, bp_net_fit, dropout drawing from each network's generator)
 *     end with exactly the bytes, weights, optimizer state and generator, that training them one
 *     after another gives. Likewise for graphs, and for one dataset read by every thread.
 *   - One handle used from two threads at once makes one call fail with BP_ERR_BUSY and is never
 *     corrupted: every successful bp_net_train_step is a whole step, so after S of them, however
 *     they interleaved with refused calls and with reads from a third thread, the weights equal
 *     S steps taken in one thread, and every read saw the weights after some whole step, in
 *     order. The same for a network and its borrowed graph, and for an optimizer.
 *   - With two library threads, products and updates cut across them give the bits of one
 *     thread, also while several host threads train at once.
 *   - Freeing a handle while another thread uses it is refused (BUSY) or makes that thread's
 *     next calls fail with BP_ERR_INVALID_HANDLE; bp_last_error() is per thread.
 * Under valgrind (BACKPROP_TEST_TOOL=valgrind, set by `make valgrind-test`) the loops are
 * shorter: valgrind runs one thread at a time, slowly.
 */
#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

enum {
    INPUTS = 16,
    HIDDEN = 32,
    CLASSES = 4,
    SAMPLES = 96,
    BATCH = 16,
    MAX_THREADS = 8,
    MAX_CHECKPOINT = 1 << 16
};

/* ---- helpers ------------------------------------------------------------------------------ */

static int under_valgrind(void) {
    const char *tool = getenv("BACKPROP_TEST_TOOL");
    const char *preload = getenv("LD_PRELOAD");
    return (tool != NULL && strcmp(tool, "valgrind") == 0) ||
           (preload != NULL && strstr(preload, "vgpreload") != NULL);
}

/* `normal` iterations, or a tenth of them (at least 2) under valgrind. */
static int scaled(int normal) {
    return under_valgrind() ? (normal / 10 > 2 ? normal / 10 : 2) : normal;
}

/* Whether two threads may never meet inside a call, however long they run. Natively they meet
 * thousands of times a second. Under valgrind, which runs one thread at a time and switches
 * mostly where a thread yields or waits, a whole run can pass without one thread being
 * switched out inside a call: BUSY then cannot happen, and the tests do not require it (the
 * native run does; the valgrind run is there for memory errors). */
static int contention_is_up_to_the_scheduler(void) {
    return under_valgrind();
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A deterministic stream of numbers in [-1, 1) (splitmix64). */
static float next_uniform(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

static void make_data(uint64_t seed, float *inputs, int32_t *labels, float *targets) {
    uint64_t state = seed;
    for (int i = 0; i < SAMPLES * INPUTS; i++) {
        inputs[i] = next_uniform(&state);
    }
    for (int s = 0; s < SAMPLES; s++) {
        float sum = inputs[s * INPUTS] + inputs[s * INPUTS + 1];
        labels[s] = (int32_t)((sum + 2.0f) * CLASSES / 4.0f) % CLASSES;
        targets[s] = sum;
    }
}

/* FNV-1a over bytes: a fingerprint of a parameter vector. */
static uint64_t fingerprint(const void *data, size_t size) {
    const unsigned char *bytes = data;
    uint64_t hash = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < size; i++) {
        hash = (hash ^ bytes[i]) * 0x100000001B3ull;
    }
    return hash;
}

/* Two threads (or more) start their loops at the same moment. */
typedef struct start_line {
    pthread_mutex_t mutex;
    pthread_cond_t go;
    int waiting, total;
} start_line;

static void start_line_init(start_line *line, int total) {
    pthread_mutex_init(&line->mutex, NULL);
    pthread_cond_init(&line->go, NULL);
    line->waiting = 0;
    line->total = total;
}

static void start_line_wait(start_line *line) {
    pthread_mutex_lock(&line->mutex);
    if (++line->waiting == line->total) {
        pthread_cond_broadcast(&line->go);
    } else {
        while (line->waiting < line->total) {
            pthread_cond_wait(&line->go, &line->mutex);
        }
    }
    pthread_mutex_unlock(&line->mutex);
}

/* ---- training jobs: distinct handles in parallel ------------------------------------------ */

/* One network's whole training run. The checks run on the main thread afterwards, from the
 * recorded statuses (CHECK is not meant to be called from several threads at once). */
typedef struct job {
    uint64_t seed;
    int steps;
    bp_status failure; /* the first status that was not BP_OK */
    const char *failed_call;
    unsigned char *checkpoint;
    size_t checkpoint_size;
} job;

#define JOB_CALL(j, call)                                                                 \
    do {                                                                                  \
        bp_status job_status_ = (call);                                                   \
        if (job_status_ != BP_OK && (j)->failure == BP_OK) {                              \
            (j)->failure = job_status_;                                                   \
            (j)->failed_call = #call;                                                     \
        }                                                                                 \
    } while (0)

/* 16 -> 32 relu -> dropout -> layer norm -> 4, cross-entropy, Adam: a few manual steps, then two
 * epochs of bp_net_fit (shuffled from the network's seed), then the checkpoint's bytes, which
 * hold the weights, the optimizer's state and the generator dropout draws from. */
static void *run_job(void *argument) {
    job *j = argument;
    float *inputs = malloc(sizeof(float) * SAMPLES * INPUTS);
    int32_t *labels = malloc(sizeof(int32_t) * SAMPLES);
    float *targets = malloc(sizeof(float) * SAMPLES);
    float outputs[BATCH * CLASSES];
    make_data(j->seed, inputs, labels, targets);

    bp_net *net = NULL;
    bp_optimizer *adam = NULL;
    bp_optimizer_options options;
    JOB_CALL(j, bp_net_create(INPUTS, j->seed, &net));
    JOB_CALL(j, bp_net_add_dense(net, HIDDEN, BP_ACTIVATION_RELU));
    JOB_CALL(j, bp_net_add_dropout(net, 0.1));
    JOB_CALL(j, bp_net_add_layer_norm(net, 1e-5));
    JOB_CALL(j, bp_net_add_dense(net, CLASSES, BP_ACTIVATION_NONE));
    JOB_CALL(j, bp_net_set_loss(net, BP_LOSS_CROSS_ENTROPY));
    JOB_CALL(j, bp_optimizer_options_default(BP_OPTIMIZER_ADAM, &options));
    options.learning_rate = 0.01;
    JOB_CALL(j, bp_optimizer_create(BP_OPTIMIZER_ADAM, &options, &adam));
    for (int step = 0; step < j->steps && j->failure == BP_OK; step++) {
        int start = (step * BATCH) % (SAMPLES - BATCH + 1);
        JOB_CALL(j, bp_net_zero_grad(net));
        JOB_CALL(j, bp_net_forward(net, BATCH, inputs + start * INPUTS, BATCH * INPUTS, outputs,
                                   BATCH * CLASSES));
        JOB_CALL(j, bp_net_backward_labels(net, labels + start, BATCH, NULL));
        JOB_CALL(j, bp_optimizer_step(adam, net));
    }
    bp_fit_options fit;
    JOB_CALL(j, bp_fit_options_default(&fit));
    fit.batch_size = BATCH;
    fit.epochs = 2;
    fit.validation_split = 0.25;
    JOB_CALL(j, bp_net_fit_labels(net, adam, SAMPLES, inputs, SAMPLES * INPUTS, labels, SAMPLES,
                                  &fit, NULL));
    j->checkpoint = malloc(MAX_CHECKPOINT);
    JOB_CALL(j, bp_net_save_buffer(net, adam, j->checkpoint, MAX_CHECKPOINT,
                                   &j->checkpoint_size));
    JOB_CALL(j, bp_optimizer_free(adam));
    JOB_CALL(j, bp_net_free(net));
    free(inputs);
    free(labels);
    free(targets);
    return NULL;
}

static void check_job_succeeded(const job *j) {
    if (j->failure != BP_OK) {
        printf("     job with seed %llu: %s returned %s\n", (unsigned long long)j->seed,
               j->failed_call, bp_status_string(j->failure));
    }
    CHECK(j->failure == BP_OK);
}

static void test_networks_trained_in_parallel_equal_networks_trained_one_by_one(void) {
    const int steps = scaled(30);
    job reference[MAX_THREADS];
    for (int i = 0; i < MAX_THREADS; i++) {
        reference[i] = (job){.seed = 1000 + (uint64_t)i, .steps = steps};
        run_job(&reference[i]);
        check_job_succeeded(&reference[i]);
    }
    /* Seeds differ, so the networks differ: the comparison below could tell them apart. */
    CHECK(reference[0].checkpoint_size == reference[1].checkpoint_size &&
          memcmp(reference[0].checkpoint, reference[1].checkpoint,
                 reference[0].checkpoint_size) != 0);

    static const int counts[] = {1, 2, 3, 4, 8};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        int n = counts[c];
        job jobs[MAX_THREADS];
        pthread_t threads[MAX_THREADS];
        for (int i = 0; i < n; i++) {
            jobs[i] = (job){.seed = 1000 + (uint64_t)i, .steps = steps};
            CHECK(pthread_create(&threads[i], NULL, run_job, &jobs[i]) == 0);
        }
        for (int i = 0; i < n; i++) {
            CHECK(pthread_join(threads[i], NULL) == 0);
        }
        int identical = 0;
        for (int i = 0; i < n; i++) {
            check_job_succeeded(&jobs[i]);
            identical += jobs[i].checkpoint_size == reference[i].checkpoint_size &&
                         memcmp(jobs[i].checkpoint, reference[i].checkpoint,
                                jobs[i].checkpoint_size) == 0;
            free(jobs[i].checkpoint);
        }
        printf("     %d thread(s): %d of %d checkpoints identical to the one-by-one runs\n", n,
               identical, n);
        CHECK_EQ(identical, n);
    }
    for (int i = 0; i < MAX_THREADS; i++) {
        free(reference[i].checkpoint);
    }
}

/* ---- products and updates cut across the library's threads -------------------------------- */

/* 96 -> 300 relu -> 130 relu -> 10, batch 64, SGD with momentum: products and an update (69,540
 * parameters) large enough for the library to cut them across its own threads. */
enum { WIDE_INPUTS = 96, WIDE_BATCH = 64, WIDE_CLASSES = 10, WIDE_STEPS = 5 };

typedef struct wide_job {
    bp_status failure;
    const char *failed_call;
    uint64_t parameters; /* fingerprint after the steps */
} wide_job;

static void *run_wide_job(void *argument) {
    wide_job *j = argument;
    float *inputs = malloc(sizeof(float) * WIDE_BATCH * WIDE_INPUTS);
    int32_t labels[WIDE_BATCH];
    uint64_t state = 77;
    for (int i = 0; i < WIDE_BATCH * WIDE_INPUTS; i++) inputs[i] = next_uniform(&state);
    for (int i = 0; i < WIDE_BATCH; i++) labels[i] = (int32_t)(i * 7 % WIDE_CLASSES);
    bp_net *net = NULL;
    bp_optimizer *sgd = NULL;
    bp_optimizer_options options;
    JOB_CALL(j, bp_net_create(WIDE_INPUTS, 5, &net));
    JOB_CALL(j, bp_net_add_dense(net, 300, BP_ACTIVATION_RELU));
    JOB_CALL(j, bp_net_add_dense(net, 130, BP_ACTIVATION_RELU));
    JOB_CALL(j, bp_net_add_dense(net, WIDE_CLASSES, BP_ACTIVATION_NONE));
    JOB_CALL(j, bp_net_set_loss(net, BP_LOSS_CROSS_ENTROPY));
    JOB_CALL(j, bp_optimizer_options_default(BP_OPTIMIZER_SGD, &options));
    options.momentum = 0.9;
    JOB_CALL(j, bp_optimizer_create(BP_OPTIMIZER_SGD, &options, &sgd));
    for (int step = 0; step < WIDE_STEPS && j->failure == BP_OK; step++) {
        JOB_CALL(j, bp_optimizer_train_step_labels(sgd, net, WIDE_BATCH, inputs,
                                                   WIDE_BATCH * WIDE_INPUTS, labels, WIDE_BATCH,
                                                   NULL));
    }
    size_t count = 0;
    JOB_CALL(j, bp_net_parameter_count(net, &count));
    float *parameters = malloc(sizeof(float) * (count ? count : 1));
    JOB_CALL(j, bp_net_parameters(net, parameters, count));
    j->parameters = fingerprint(parameters, sizeof(float) * count);
    JOB_CALL(j, bp_optimizer_free(sgd));
    JOB_CALL(j, bp_net_free(net));
    free(parameters);
    free(inputs);
    return NULL;
}

/* With two library threads, a network trains to the bits it reaches on one (the library's own
 * kernel sums in the same order however a product is cut, and every parameter's update is its
 * own), also while several host threads train at once and contend for the worker threads. */
static void test_products_cut_across_library_threads_give_the_bits_of_one_thread(void) {
    const int threads_before = bp_get_num_threads();
    CHECK_OK(bp_set_num_threads(1));
    wide_job alone = {0};
    run_wide_job(&alone);
    CHECK_OK(alone.failure);
    CHECK_OK(bp_set_num_threads(2));
    enum { HOSTS = 3 };
    wide_job jobs[HOSTS] = {{0}};
    pthread_t threads[HOSTS];
    for (int i = 0; i < HOSTS; i++) CHECK(pthread_create(&threads[i], NULL, run_wide_job, &jobs[i]) == 0);
    for (int i = 0; i < HOSTS; i++) CHECK(pthread_join(threads[i], NULL) == 0);
    for (int i = 0; i < HOSTS; i++) {
        CHECK_OK(jobs[i].failure);
        CHECK(jobs[i].parameters == alone.parameters);
    }
    wide_job again = {0};
    run_wide_job(&again);
    CHECK(again.parameters == alone.parameters);
    CHECK_OK(bp_set_num_threads(threads_before));
}

/* A graph per thread: tanh(A B) summed, forward and backward many times, gradients checked
 * against the same graph run alone. */
typedef struct graph_job {
    uint64_t seed;
    int rounds;
    bp_status failure;
    double gradient[64];
} graph_job;

static void *run_graph_job(void *argument) {
    graph_job *j = argument;
    bp_graph *g = NULL;
    bp_node a, b, product, activated, loss;
    const size_t shape[2] = {8, 8};
    double values[64];
    uint64_t state = j->seed;
    bp_status s = bp_graph_create(BP_FLOAT64, &g);
    s = s ? s : bp_graph_input(g, shape, 2, &a);
    s = s ? s : bp_graph_parameter(g, shape, 2, &b);
    s = s ? s : bp_graph_matmul(g, a, b, &product);
    s = s ? s : bp_graph_tanh(g, product, &activated);
    s = s ? s : bp_graph_sum(g, activated, &loss);
    for (int i = 0; i < 64; i++) {
        values[i] = next_uniform(&state);
    }
    s = s ? s : bp_graph_set_value_f64(g, a, values, 64);
    for (int i = 0; i < 64; i++) {
        values[i] = next_uniform(&state);
    }
    s = s ? s : bp_graph_set_value_f64(g, b, values, 64);
    for (int round = 0; round < j->rounds && s == BP_OK; round++) {
        s = bp_graph_zero_grad(g);
        s = s ? s : bp_graph_forward(g);
        s = s ? s : bp_graph_backward(g, loss);
    }
    s = s ? s : bp_graph_grad_f64(g, b, j->gradient, 64);
    j->failure = s;
    bp_status freed = bp_graph_free(g);
    if (j->failure == BP_OK) {
        j->failure = freed;
    }
    return NULL;
}

static void test_graphs_run_in_parallel_give_the_gradients_they_give_alone(void) {
    enum { THREADS = 4 };
    graph_job alone[THREADS], together[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        alone[i] = (graph_job){.seed = 77 + (uint64_t)i, .rounds = scaled(200)};
        run_graph_job(&alone[i]);
        CHECK_OK(alone[i].failure);
        together[i] = alone[i];
        CHECK(pthread_create(&threads[i], NULL, run_graph_job, &together[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK_OK(together[i].failure);
        CHECK(memcmp(alone[i].gradient, together[i].gradient, sizeof alone[i].gradient) == 0);
    }
}

/* ---- one dataset, read by every thread ---------------------------------------------------- */

typedef struct dataset_reader {
    const bp_dataset *dataset;
    const float *features;
    const int32_t *labels;
    int rounds;
    int mismatches;
    bp_status failure;
} dataset_reader;

static void *read_dataset(void *argument) {
    dataset_reader *r = argument;
    float features[SAMPLES * INPUTS];
    int32_t labels[SAMPLES];
    for (int round = 0; round < r->rounds; round++) {
        size_t rows = 0, columns = 0;
        bp_status s = bp_dataset_size(r->dataset, &rows, &columns);
        s = s ? s : bp_dataset_features(r->dataset, features, SAMPLES * INPUTS);
        s = s ? s : bp_dataset_labels(r->dataset, labels, SAMPLES);
        if (s != BP_OK) {
            r->failure = s;
            return NULL;
        }
        r->mismatches += rows != SAMPLES || columns != INPUTS ||
                         memcmp(features, r->features, sizeof features) != 0 ||
                         memcmp(labels, r->labels, sizeof labels) != 0;
    }
    return NULL;
}

static void test_one_dataset_is_read_by_many_threads_at_once(void) {
    float inputs[SAMPLES * INPUTS], targets[SAMPLES];
    int32_t labels[SAMPLES];
    make_data(5, inputs, labels, targets);
    char path[] = "/tmp/bp_test_threads_XXXXXX";
    int fd = mkstemp(path);
    if (!CHECK(fd >= 0)) {
        return;
    }
    FILE *file = fdopen(fd, "w");
    for (int s = 0; s < SAMPLES; s++) {
        for (int f = 0; f < INPUTS; f++) {
            fprintf(file, "%.9g,", inputs[s * INPUTS + f]);
        }
        fprintf(file, "%d\n", labels[s]);
    }
    fclose(file);
    bp_csv_options options;
    CHECK_OK(bp_csv_options_default(&options));
    options.has_header = 0;
    bp_dataset *dataset = NULL;
    CHECK_OK(bp_dataset_load_csv(path, &options, &dataset));
    unlink(path);

    enum { THREADS = 6 };
    dataset_reader readers[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        readers[i] = (dataset_reader){dataset, inputs, labels, scaled(300), 0, BP_OK};
        CHECK(pthread_create(&threads[i], NULL, read_dataset, &readers[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK_OK(readers[i].failure);
        CHECK_EQ(readers[i].mismatches, 0);
    }
    CHECK_OK(bp_dataset_free(dataset));
}

/* ---- one handle, two threads: BUSY, and never a corrupted network ------------------------ */

enum { TRAJECTORY_STEPS = 400, MIN_READS = 20, MAX_READS = 1 << 16 };

static const int TRAJECTORY_SEED = 31;

/* 16 -> 32 tanh -> 1, MSE: train_step with plain gradient descent, the same batch each time,
 * so the weights after k successful steps are one fixed sequence. No dropout: a refused call
 * must not be able to change anything, and there is no generator to move. */
static bp_net *trajectory_net(void) {
    bp_net *net = NULL;
    CHECK_OK(bp_net_create(INPUTS, TRAJECTORY_SEED, &net));
    CHECK_OK(bp_net_add_dense(net, HIDDEN, BP_ACTIVATION_TANH));
    CHECK_OK(bp_net_add_dense(net, 1, BP_ACTIVATION_NONE));
    return net;
}

static float trajectory_inputs[SAMPLES * INPUTS], trajectory_targets[SAMPLES];
static int32_t trajectory_labels[SAMPLES];

static bp_status trajectory_step(bp_net *net) {
    return bp_net_train_step(net, SAMPLES, trajectory_inputs, SAMPLES * INPUTS,
                             trajectory_targets, SAMPLES, 0.01f, NULL);
}

/* The fingerprints of the weights after 0, 1, ..., steps whole steps taken in one thread. */
static uint64_t *trajectory(int steps, size_t parameter_count) {
    uint64_t *hashes = malloc(sizeof(uint64_t) * (size_t)(steps + 1));
    float *weights = malloc(sizeof(float) * parameter_count);
    bp_net *net = trajectory_net();
    for (int k = 0; k <= steps; k++) {
        if (k > 0) {
            CHECK_OK(trajectory_step(net));
        }
        CHECK_OK(bp_net_parameters(net, weights, parameter_count));
        hashes[k] = fingerprint(weights, sizeof(float) * parameter_count);
    }
    CHECK_OK(bp_net_free(net));
    free(weights);
    return hashes;
}

typedef struct shared_net {
    bp_net *net;
    start_line *start;
    int target_steps;       /* stop after this many successful steps in all */
    double deadline;        /* ... or at this time, even if no BUSY was seen yet */
    pthread_mutex_t mutex;  /* guards the counters below */
    int successes, reserved, busy, busy_without_message, other;
    bp_status other_status;
    int stop;
    size_t parameter_count;
    uint64_t *reads;        /* the reader's fingerprints, in order */
    int read_count;
} shared_net;

static int shared_should_stop(shared_net *s) {
    pthread_mutex_lock(&s->mutex);
    int stop = s->stop ||
               (s->successes >= s->target_steps && s->busy > 0 && s->read_count >= MIN_READS) ||
               now_seconds() > s->deadline;
    s->stop |= stop;
    pthread_mutex_unlock(&s->mutex);
    return stop;
}

static void shared_count(shared_net *s, bp_status status, int is_step) {
    const char *message = bp_last_error();
    pthread_mutex_lock(&s->mutex);
    if (status == BP_OK) {
        s->successes += is_step;
    } else if (status == BP_ERR_BUSY) {
        s->busy++;
        s->busy_without_message += message == NULL || message[0] == '\0';
    } else {
        s->other++;
        s->other_status = status;
    }
    pthread_mutex_unlock(&s->mutex);
}

/* Takes training steps until the target is reached; a step past the target is not taken. */
static void *stepping_thread(void *argument) {
    shared_net *s = argument;
    start_line_wait(s->start);
    while (!shared_should_stop(s)) {
        pthread_mutex_lock(&s->mutex);
        int room = s->successes + s->reserved < s->target_steps;
        pthread_mutex_unlock(&s->mutex);
        if (!room) {
            /* Keep the handle busy without moving the weights: a read-only call. Then yield,
             * or two threads doing this could keep the reader out for whole time slices (under
             * valgrind, which runs one thread at a time, for the whole test). */
            size_t count = 0;
            shared_count(s, bp_net_parameter_count(s->net, &count), 0);
            sched_yield();
            continue;
        }
        /* Serialise the decision to step with the count, so the total never passes the
         * target: only the call itself races. */
        pthread_mutex_lock(&s->mutex);
        room = s->successes + s->reserved < s->target_steps;
        s->reserved += room;
        pthread_mutex_unlock(&s->mutex);
        if (!room) {
            continue;
        }
        bp_status status = trajectory_step(s->net);
        pthread_mutex_lock(&s->mutex);
        s->reserved--;
        pthread_mutex_unlock(&s->mutex);
        shared_count(s, status, 1);
        if (status == BP_ERR_BUSY) {
            sched_yield(); /* let the reader in now and then */
        }
    }
    return NULL;
}

/* Reads the weights as fast as it can, recording a fingerprint of each successful read. */
static void *reading_thread(void *argument) {
    shared_net *s = argument;
    float *weights = malloc(sizeof(float) * s->parameter_count);
    start_line_wait(s->start);
    while (!shared_should_stop(s)) {
        bp_status status = bp_net_parameters(s->net, weights, s->parameter_count);
        shared_count(s, status, 0);
        if (status == BP_OK && s->read_count < MAX_READS) {
            s->reads[s->read_count++] = fingerprint(weights, sizeof(float) * s->parameter_count);
        }
    }
    free(weights);
    return NULL;
}

static void test_two_threads_training_one_network_get_busy_and_never_corrupt_it(void) {
    make_data(9, trajectory_inputs, trajectory_labels, trajectory_targets);
    shared_net s;
    memset(&s, 0, sizeof s);
    start_line start;
    start_line_init(&start, 3);
    pthread_mutex_init(&s.mutex, NULL);
    s.net = trajectory_net();
    s.start = &start;
    s.target_steps = scaled(TRAJECTORY_STEPS);
    s.deadline = now_seconds() + (under_valgrind() ? 60 : 30);
    CHECK_OK(bp_net_parameter_count(s.net, &s.parameter_count));
    s.reads = malloc(sizeof(uint64_t) * MAX_READS);

    pthread_t threads[3];
    CHECK(pthread_create(&threads[0], NULL, stepping_thread, &s) == 0);
    CHECK(pthread_create(&threads[1], NULL, stepping_thread, &s) == 0);
    CHECK(pthread_create(&threads[2], NULL, reading_thread, &s) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
    }
    printf("     %d whole steps, %d calls refused with BP_ERR_BUSY, %d reads checked\n",
           s.successes, s.busy, s.read_count);
    CHECK(s.busy > 0 || contention_is_up_to_the_scheduler());
    CHECK_EQ(s.busy_without_message, 0);
    CHECK_EQ(s.other, 0);
    if (s.other > 0) {
        printf("     an unexpected status: %s\n", bp_status_string(s.other_status));
    }
    CHECK_EQ(s.successes, s.target_steps);

    /* The weights are those of exactly `successes` steps taken one after another... */
    uint64_t *expected = trajectory(s.successes, s.parameter_count);
    float *weights = malloc(sizeof(float) * s.parameter_count);
    CHECK_OK(bp_net_parameters(s.net, weights, s.parameter_count));
    CHECK(fingerprint(weights, sizeof(float) * s.parameter_count) == expected[s.successes]);
    /* ... and every read saw the weights between two whole steps, never going back. */
    int k = 0, torn = 0;
    for (int r = 0; r < s.read_count; r++) {
        while (k <= s.successes && expected[k] != s.reads[r]) {
            k++;
        }
        if (k > s.successes) {
            torn++;
            k = 0;
        }
    }
    CHECK_EQ(torn, 0);
    CHECK(s.read_count >= MIN_READS);
    /* The network still trains normally. */
    CHECK_OK(trajectory_step(s.net));
    free(weights);
    free(expected);
    free(s.reads);
    CHECK_OK(bp_net_free(s.net));
}

/* A network and the graph bp_net_graph lends out share one lock; an optimizer has its own. */
typedef struct pair_job {
    start_line *start;
    volatile int *stop;
    int (*call)(struct pair_job *);
    /* After max_ok successful calls (0: no limit), `idle` instead: a call that changes nothing,
     * so the race goes on without moving the weights further. */
    int max_ok;
    int (*idle)(struct pair_job *);
    bp_net *net;
    bp_graph *graph;
    bp_optimizer *optimizer;
    int ok, busy, other;
    bp_status other_status;
} pair_job;

static void *run_pair_job(void *argument) {
    pair_job *j = argument;
    start_line_wait(j->start);
    while (!*j->stop) {
        int idle = j->max_ok > 0 && j->ok >= j->max_ok;
        bp_status status = (bp_status)(idle ? j->idle(j) : j->call(j));
        if (status == BP_OK) {
            j->ok += !idle;
        } else if (status == BP_ERR_BUSY && bp_last_error()[0] != '\0') {
            j->busy++;
        } else {
            j->other++;
            j->other_status = status;
        }
        /* Between calls, not in one: a thread that loops back into the library at once holds
         * the handle nearly all the time, and where threads take turns in long slices (under
         * valgrind, one thread runs at a time) the other would see nothing but BUSY. */
        sched_yield();
    }
    return NULL;
}

static int call_train_step(pair_job *j) {
    return (int)trajectory_step(j->net);
}

static int call_net_parameter_count(pair_job *j) {
    size_t count = 0;
    return (int)bp_net_parameter_count(j->net, &count);
}

static int call_optimizer_read_rate(pair_job *j) {
    double rate = 0;
    return (int)bp_optimizer_learning_rate(j->optimizer, &rate);
}

static int call_graph_node_count(pair_job *j) {
    size_t count = 0;
    bp_status status = bp_graph_node_count(j->graph, &count);
    return (int)(status == BP_OK ? bp_graph_zero_grad(j->graph) : status);
}

static int call_optimizer_step(pair_job *j) {
    bp_status status = bp_net_zero_grad(j->net);
    float outputs[SAMPLES];
    status = status ? status
                    : bp_net_forward(j->net, SAMPLES, trajectory_inputs, SAMPLES * INPUTS,
                                     outputs, SAMPLES);
    status = status ? status : bp_net_backward(j->net, trajectory_targets, SAMPLES, NULL);
    return (int)(status ? status : bp_optimizer_step(j->optimizer, j->net));
}

static int call_optimizer_learning_rate(pair_job *j) {
    double rate = 0;
    bp_status status = bp_optimizer_learning_rate(j->optimizer, &rate);
    return (int)(status ? status : bp_optimizer_set_learning_rate(j->optimizer, rate));
}

/* Runs two loops against each other until both have made progress and one saw BUSY. */
static void race(pair_job *a, pair_job *b, const char *what) {
    volatile int stop = 0;
    start_line start;
    start_line_init(&start, 2);
    a->start = b->start = &start;
    a->stop = b->stop = &stop;
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, run_pair_job, a) == 0);
    CHECK(pthread_create(&tb, NULL, run_pair_job, b) == 0);
    double deadline = now_seconds() + (under_valgrind() ? 60 : 20);
    int minimum = scaled(100);
    while (now_seconds() < deadline &&
           !(a->ok >= minimum && b->ok >= minimum && a->busy + b->busy > 0)) {
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
    }
    stop = 1;
    CHECK(pthread_join(ta, NULL) == 0);
    CHECK(pthread_join(tb, NULL) == 0);
    printf("     %s: %d and %d calls done, %d and %d refused with BP_ERR_BUSY\n", what, a->ok,
           b->ok, a->busy, b->busy);
    CHECK(a->busy + b->busy > 0 || contention_is_up_to_the_scheduler());
    CHECK_EQ(a->other + b->other, 0);
    if (a->other + b->other > 0) {
        printf("     unexpected: %s\n",
               bp_status_string(a->other ? a->other_status : b->other_status));
    }
}

static void check_weights_after(bp_net *net, int steps, int with_optimizer) {
    size_t count = 0;
    CHECK_OK(bp_net_parameter_count(net, &count));
    float *got = malloc(sizeof(float) * count), *want = malloc(sizeof(float) * count);
    bp_net *alone = trajectory_net();
    bp_optimizer *sgd = NULL;
    bp_optimizer_options options;
    CHECK_OK(bp_optimizer_options_default(BP_OPTIMIZER_SGD, &options));
    options.learning_rate = 0.01;
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, &options, &sgd));
    pair_job j = {.net = alone, .optimizer = sgd};
    for (int k = 0; k < steps; k++) {
        if (with_optimizer) {
            CHECK_OK((bp_status)call_optimizer_step(&j));
        } else {
            CHECK_OK(trajectory_step(alone));
        }
    }
    CHECK_OK(bp_net_parameters(net, got, count));
    CHECK_OK(bp_net_parameters(alone, want, count));
    CHECK(memcmp(got, want, sizeof(float) * count) == 0);
    CHECK_OK(bp_optimizer_free(sgd));
    CHECK_OK(bp_net_free(alone));
    free(got);
    free(want);
}

static void test_a_network_and_its_graph_are_one_handle_for_busy(void) {
    make_data(9, trajectory_inputs, trajectory_labels, trajectory_targets);
    bp_net *net = trajectory_net();
    bp_graph *graph = NULL;
    CHECK_OK(bp_net_graph(net, &graph));
    pair_job train = {.call = call_train_step, .max_ok = scaled(300),
                      .idle = call_net_parameter_count, .net = net};
    pair_job poke = {.call = call_graph_node_count, .graph = graph};
    race(&train, &poke, "bp_net_train_step against bp_graph_zero_grad on its graph");
    /* Zeroing gradients between whole steps changes nothing a step depends on. */
    check_weights_after(net, train.ok, 0);
    CHECK_OK(bp_net_free(net));
}

static void test_one_optimizer_used_from_two_threads_is_busy_not_corrupted(void) {
    make_data(9, trajectory_inputs, trajectory_labels, trajectory_targets);
    bp_net *net = trajectory_net();
    bp_optimizer *sgd = NULL;
    bp_optimizer_options options;
    CHECK_OK(bp_optimizer_options_default(BP_OPTIMIZER_SGD, &options));
    options.learning_rate = 0.01;
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, &options, &sgd));
    pair_job step = {.call = call_optimizer_step, .max_ok = scaled(300),
                     .idle = call_optimizer_read_rate, .net = net, .optimizer = sgd};
    pair_job rate = {.call = call_optimizer_learning_rate, .optimizer = sgd};
    race(&step, &rate, "bp_optimizer_step against bp_optimizer_set_learning_rate");
    /* A refused step may have left a forward and backward behind it, which the next zero_grad
     * clears; only the optimizer steps that succeeded moved the weights. */
    check_weights_after(net, step.ok, 1);
    CHECK_OK(bp_optimizer_free(sgd));
    CHECK_OK(bp_net_free(net));
}

/* ---- freeing while in use, and per-thread errors ------------------------------------------ */

typedef struct user {
    bp_net *net;
    volatile int started;
    int calls, after_invalid_ok, unexpected;
    int invalid;
    bp_status unexpected_status;
} user;

static void *use_until_invalid(void *argument) {
    user *u = argument;
    /* Valgrind runs one thread at a time and may switch inside a call, so back-to-back calls
     * could hold the lock every time the freeing thread runs: leave it a gap there. */
    const struct timespec gap = {0, under_valgrind() ? 200000 : 0};
    u->started = 1;
    for (;;) {
        bp_status status = trajectory_step(u->net);
        u->calls++;
        if (gap.tv_nsec > 0) {
            nanosleep(&gap, NULL);
        }
        if (status == BP_ERR_INVALID_HANDLE) {
            u->invalid++;
            if (u->invalid >= 100) {
                return NULL;
            }
        } else if (status == BP_OK || status == BP_ERR_BUSY) {
            u->after_invalid_ok += u->invalid > 0;
        } else {
            u->unexpected++;
            u->unexpected_status = status;
            return NULL;
        }
    }
}

static void test_freeing_a_network_another_thread_uses_is_safe(void) {
    make_data(9, trajectory_inputs, trajectory_labels, trajectory_targets);
    for (int round = 0; round < scaled(20); round++) {
        user u = {.net = trajectory_net()};
        pthread_t thread;
        CHECK(pthread_create(&thread, NULL, use_until_invalid, &u) == 0);
        while (!u.started) {
            sched_yield();
        }
        struct timespec pause = {0, 1000000L * (round % 5)};
        nanosleep(&pause, NULL);
        bp_status freed;
        int busy = 0;
        while ((freed = bp_net_free(u.net)) == BP_ERR_BUSY) {
            busy++;
            sched_yield();
        }
        CHECK_OK(freed);
        CHECK(pthread_join(thread, NULL) == 0);
        /* Once freed, every call is refused, and freeing again is refused too. */
        CHECK_EQ(u.unexpected, 0);
        CHECK_EQ(u.after_invalid_ok, 0);
        CHECK_EQ(u.invalid, 100);
        CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_free(u.net));
        if (round == 0) {
            printf("     the freeing thread was refused with BP_ERR_BUSY %d time(s)\n", busy);
        }
    }
}

typedef struct error_job {
    int which;
    int rounds;
    int wrong;
    char first[256];
} error_job;

static void *make_errors(void *argument) {
    error_job *j = argument;
    for (int round = 0; round < j->rounds; round++) {
        bp_status status;
        if (j->which == 0) {
            bp_net *net = NULL;
            status = bp_net_create(0, 1, &net);
        } else {
            bp_graph *graph = NULL;
            status = bp_graph_create((bp_dtype)99, &graph);
        }
        const char *message = bp_last_error();
        if (round == 0) {
            snprintf(j->first, sizeof j->first, "%s", message);
        }
        j->wrong += status != BP_ERR_INVALID_ARGUMENT || strcmp(message, j->first) != 0;
        if ((round & 15) == 0) {
            sched_yield();
        }
    }
    return NULL;
}

static void test_last_error_belongs_to_the_calling_thread(void) {
    error_job jobs[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (error_job){.which = i % 2, .rounds = scaled(5000)};
        CHECK(pthread_create(&threads[i], NULL, make_errors, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK_EQ(jobs[i].wrong, 0);
        CHECK(jobs[i].first[0] != '\0');
    }
    CHECK(strcmp(jobs[0].first, jobs[1].first) != 0);
    /* This thread made no call that failed: its message is still empty. */
    CHECK(strcmp(bp_last_error(), "") == 0);
}

/* Many threads creating, using, saving, loading and freeing handles at once. */
typedef struct churn_job {
    int rounds;
    bp_status failure;
    const char *failed_call;
} churn_job;

static void *churn(void *argument) {
    churn_job *j = argument;
    float inputs[2 * INPUTS] = {0}, targets[2] = {1, -1};
    unsigned char *bytes = malloc(MAX_CHECKPOINT);
    for (int round = 0; round < j->rounds && j->failure == BP_OK; round++) {
        bp_net *net = NULL, *loaded = NULL;
        bp_optimizer *optimizer = NULL;
        size_t size = 0;
        JOB_CALL(j, bp_net_create(INPUTS, (uint64_t)round, &net));
        JOB_CALL(j, bp_net_add_dense(net, 8, BP_ACTIVATION_SIGMOID));
        JOB_CALL(j, bp_net_add_dense(net, 1, BP_ACTIVATION_NONE));
        JOB_CALL(j, bp_net_train_step(net, 2, inputs, 2 * INPUTS, targets, 2, 0.1f, NULL));
        JOB_CALL(j, bp_optimizer_create(BP_OPTIMIZER_ADAM, NULL, &optimizer));
        JOB_CALL(j, bp_net_save_buffer(net, optimizer, bytes, MAX_CHECKPOINT, &size));
        JOB_CALL(j, bp_net_load_buffer(bytes, size, &loaded, NULL));
        JOB_CALL(j, bp_net_free(loaded));
        JOB_CALL(j, bp_optimizer_free(optimizer));
        JOB_CALL(j, bp_net_free(net));
    }
    free(bytes);
    return NULL;
}

static void test_handles_are_created_and_freed_from_many_threads_at_once(void) {
    enum { THREADS = 6 };
    churn_job jobs[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (churn_job){.rounds = scaled(300)};
        CHECK(pthread_create(&threads[i], NULL, churn, &jobs[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        if (jobs[i].failure != BP_OK) {
            printf("     %s returned %s\n", jobs[i].failed_call,
                   bp_status_string(jobs[i].failure));
        }
        CHECK_OK(jobs[i].failure);
    }
}

int main(void) {
    RUN(test_networks_trained_in_parallel_equal_networks_trained_one_by_one);
    RUN(test_products_cut_across_library_threads_give_the_bits_of_one_thread);
    RUN(test_graphs_run_in_parallel_give_the_gradients_they_give_alone);
    RUN(test_one_dataset_is_read_by_many_threads_at_once);
    RUN(test_two_threads_training_one_network_get_busy_and_never_corrupt_it);
    RUN(test_a_network_and_its_graph_are_one_handle_for_busy);
    RUN(test_one_optimizer_used_from_two_threads_is_busy_not_corrupted);
    RUN(test_freeing_a_network_another_thread_uses_is_safe);
    RUN(test_last_error_belongs_to_the_calling_thread);
    RUN(test_handles_are_created_and_freed_from_many_threads_at_once);
    return check_summary();
}
