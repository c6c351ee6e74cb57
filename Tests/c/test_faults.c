/*
 * test_faults.c: faults from outside never hurt the host or lose a model.
 *
 *   - Absurd sizes (a layer of 2^40 units, a batch of 2^40) are errors, not aborts.
 *   - A failed allocation is BP_ERR_OUT_OF_MEMORY and changes nothing: the address space of the
 *     test's process is capped with setrlimit(RLIMIT_AS), then a large but representable
 *     allocation is asked for (skipped under AddressSanitizer and valgrind, which reserve far
 *     more address space than any such cap). Each buffer whose size a caller or a file decides
 *     has a case of its own, with a cap that lets everything before it succeed.
 *   - NaN or infinity anywhere in the data of any call that takes data (first, middle or last
 *     element; NaN, +inf and -inf) is BP_ERR_NONFINITE, and the whole state is unchanged: the
 *     checkpoint bytes (weights, optimizer state, dropout generator) and the gradients. (Overflow
 *     inside the computation, and NaN in parameters set by the caller, are in test_bad_input.c.)
 *   - A save that cannot complete (a full filesystem, a read-only one, a folder the user may not
 *     write, no file descriptors left, a disk quota hit at any byte, a bad path) is BP_ERR_IO and
 *     leaves the previous checkpoint intact and no temporary file behind. test_io.c's
 *     test_a_failed_save_leaves_the_previous_file_intact has the first cases of this (a quota
 *     hit half way, a missing folder, a folder or /dev/full as the target, a read-only folder
 *     for a user who is not root); these are the others. Real filesystems come from tmpfs
 *     mounts in a private mount namespace, skipped where mounting is not allowed.
 *   - More BLAS threads than CPUs are clamped, so that a matrix product under a memory cap
 *     cannot wait forever for threads that cannot be created.
 *   - Loading from a FIFO (or anything but a regular file) is BP_ERR_IO and does not block.
 *   - A first matrix product under a cap too tight for OpenBLAS's buffers returns.
 *
 * docs/RELIABILITY.md lists the threats, where each is tested, and the known limits.
 */
#define _GNU_SOURCE
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#define MiB ((size_t)1 << 20)
#define TWO_TO_THE_40 ((size_t)1 << 40)

/* ---- the environment ---------------------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static int under_valgrind(void) {
    const char *tool = getenv("BACKPROP_TEST_TOOL");
    const char *preload = getenv("LD_PRELOAD");
    return (tool != NULL && strcmp(tool, "valgrind") == 0) ||
           (preload != NULL && strstr(preload, "vgpreload") != NULL);
}

/* A test that cannot run here says why and makes no check. */
static void skip(const char *why) { printf("     skipped: %s\n", why); }

/* Caps can only be tested where the process's address space is its own to cap. */
static int can_cap_address_space(void) {
    if (UNDER_ASAN) {
        skip("AddressSanitizer reserves terabytes of address space; RLIMIT_AS cannot be used");
        return 0;
    }
    if (under_valgrind()) {
        skip("valgrind manages the address space itself; RLIMIT_AS cannot be used");
        return 0;
    }
    return 1;
}

/* The process's current virtual size, from /proc/self/status. */
static size_t virtual_size(void) {
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    size_t kib = 0;
    while (status != NULL && fgets(line, sizeof line, status) != NULL) {
        if (strncmp(line, "VmSize:", 7) == 0) {
            kib = strtoull(line + 7, NULL, 10);
        }
    }
    if (status != NULL) {
        fclose(status);
    }
    return kib * 1024;
}

static struct rlimit saved_address_space;

/* Lets the process grow by `room` bytes more, no further (the soft limit only, so it can be
 * lifted again). */
static int cap_address_space(size_t room) {
    getrlimit(RLIMIT_AS, &saved_address_space);
    struct rlimit cap = saved_address_space;
    cap.rlim_cur = virtual_size() + room;
    return CHECK(setrlimit(RLIMIT_AS, &cap) == 0);
}

static void uncap_address_space(void) { CHECK(setrlimit(RLIMIT_AS, &saved_address_space) == 0); }

/* ---- networks and their whole state ------------------------------------------------------- */

enum { IN = 7, OUT = 3, BATCH = 5 };

static float INPUTS[BATCH * IN];
static float TARGETS[BATCH * OUT];
static const int32_t LABELS[BATCH] = {0, 2, 1, 1, 0};

static void fill_data(void) {
    for (int i = 0; i < BATCH * IN; i++) {
        INPUTS[i] = (float)((i * 37) % 11) / 5.0f - 1.0f;
    }
    for (int i = 0; i < BATCH * OUT; i++) {
        TARGETS[i] = (float)((i * 13) % 7) / 3.0f - 1.0f;
    }
}

/* 7 -> 8 tanh -> dropout -> 3: a dropout generator that a refused call must not move. */
static bp_net *small_net(bp_loss loss, uint64_t seed) {
    bp_net *net = NULL;
    CHECK_OK(bp_net_create(IN, seed, &net));
    CHECK_OK(bp_net_add_dense(net, 8, BP_ACTIVATION_TANH));
    CHECK_OK(bp_net_add_dropout(net, 0.2));
    CHECK_OK(bp_net_add_dense(net, OUT, BP_ACTIVATION_NONE));
    CHECK_OK(bp_net_set_loss(net, loss));
    return net;
}

static unsigned char *checkpoint_bytes(const bp_net *net, const bp_optimizer *optimizer,
                                       size_t *size) {
    *size = 0;
    CHECK_OK(bp_net_save_buffer(net, optimizer, NULL, 0, size));
    unsigned char *bytes = malloc(*size + 1);
    size_t written = 0;
    CHECK_OK(bp_net_save_buffer(net, optimizer, bytes, *size, &written));
    CHECK_EQ(written, *size);
    return bytes;
}

/* Everything a call could change: the checkpoint (weights, optimizer state and step count,
 * dropout generator) and the gradients. */
typedef struct state {
    unsigned char *checkpoint;
    size_t size;
    float gradients[256];
    size_t gradient_count;
} state;

static state capture(const bp_net *net, const bp_optimizer *optimizer) {
    state s;
    memset(&s, 0, sizeof s);
    s.checkpoint = checkpoint_bytes(net, optimizer, &s.size);
    CHECK_OK(bp_net_parameter_count(net, &s.gradient_count));
    if (CHECK(s.gradient_count <= 256)) {
        CHECK_OK(bp_net_gradients(net, s.gradients, s.gradient_count));
    }
    return s;
}

static int same_state(const state *a, const state *b) {
    return a->size == b->size && memcmp(a->checkpoint, b->checkpoint, a->size) == 0 &&
           a->gradient_count == b->gradient_count &&
           memcmp(a->gradients, b->gradients, sizeof(float) * a->gradient_count) == 0;
}

/* ---- absurd sizes ------------------------------------------------------------------------- */

/* The network still has its one 4-unit layer. */
static void check_dense_layer_refused(bp_net *net) {
    size_t layers = 0, outputs = 0;
    CHECK_OK(bp_net_layer_count(net, &layers));
    CHECK_OK(bp_net_output_width(net, &outputs));
    CHECK_EQ(layers, 1);
    CHECK_EQ(outputs, 4);
}

static void test_a_dense_layer_of_2_to_the_40_units_is_refused(void) {
    bp_net *net = NULL;
    float inputs[4] = {1, 2, 3, 4}, outputs[4];
    CHECK_OK(bp_net_create(4, 1, &net));
    CHECK_OK(bp_net_add_dense(net, 4, BP_ACTIVATION_RELU));
    /* 2^40 x 4 weights: 16 TiB of floats, a size that fits in size_t but in no memory. */
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_add_dense(net, TWO_TO_THE_40, BP_ACTIVATION_RELU));
    check_dense_layer_refused(net);
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_add_dense_init(net, TWO_TO_THE_40, BP_ACTIVATION_NONE,
                                                             BP_INIT_ZEROS, 0));
    check_dense_layer_refused(net);
    CHECK_OK(bp_net_predict(net, 1, inputs, 4, outputs, 4));
    CHECK_OK(bp_net_free(net));
}

static void test_leaves_and_inputs_of_2_to_the_40_are_refused(void) {
    /* A batch of 2^40 samples as graph leaves: [2^40, 8] in both dtypes. */
    static const bp_dtype dtypes[] = {BP_FLOAT32, BP_FLOAT64};
    for (size_t d = 0; d < 2; d++) {
        bp_graph *g = NULL;
        bp_node node = 12345;
        const size_t batch[2] = {TWO_TO_THE_40, 8}, small[2] = {2, 8};
        size_t count = 0;
        CHECK_OK(bp_graph_create(dtypes[d], &g));
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_graph_input(g, batch, 2, &node));
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_graph_parameter(g, batch, 2, &node));
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_graph_constant(g, batch, 2, &node));
        CHECK_EQ(node, 12345);
        CHECK_OK(bp_graph_node_count(g, &count));
        CHECK_EQ(count, 0);
        CHECK_OK(bp_graph_input(g, small, 2, &node)); /* the graph is still usable */
        CHECK_OK(bp_graph_free(g));
    }
    /* A network whose input is 2^40 features wide. */
    bp_net *net = (bp_net *)&dtypes;
    bp_status status = bp_net_create(TWO_TO_THE_40, 1, &net);
    CHECK(status == BP_ERR_OUT_OF_MEMORY);
    CHECK(net == (bp_net *)&dtypes);
    CHECK(bp_last_error()[0] != '\0');
}

/* bp_net_fit's batch_size: 2^40 is a bad option (BP_ERR_INVALID_ARGUMENT, nothing changes);
 * any size beyond the data, up to the largest accepted, is the whole data set in one batch and
 * trains exactly as batch_size == samples. (A forward pass of 2^40 samples cannot be asked for
 * honestly: its inputs would be 2^40 x width readable floats. Counts that do not match the
 * batch are in test_bad_input.c.) */
static void test_a_fit_batch_size_of_2_to_the_40_is_refused_and_no_abort(void) {
    fill_data();
    unsigned char *bytes[2];
    size_t sizes[2];
    const size_t batch_sizes[2] = {INT32_MAX, BATCH};
    for (int k = 0; k < 2; k++) {
        bp_net *net = small_net(BP_LOSS_MSE, 3);
        bp_optimizer *adam = NULL;
        bp_fit_options options;
        CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_ADAM, NULL, &adam));
        CHECK_OK(bp_fit_options_default(&options));
        options.epochs = 3;
        if (k == 0) {
            state before = capture(net, adam);
            options.batch_size = TWO_TO_THE_40;
            CHECK_STATUS(BP_ERR_INVALID_ARGUMENT,
                         bp_net_fit(net, adam, BATCH, INPUTS, BATCH * IN, TARGETS, BATCH * OUT,
                                    &options, NULL));
            state after = capture(net, adam);
            CHECK(same_state(&before, &after));
            free(before.checkpoint);
            free(after.checkpoint);
        }
        options.batch_size = batch_sizes[k];
        CHECK_OK(bp_net_fit(net, adam, BATCH, INPUTS, BATCH * IN, TARGETS, BATCH * OUT,
                            &options, NULL));
        bytes[k] = checkpoint_bytes(net, adam, &sizes[k]);
        CHECK_OK(bp_optimizer_free(adam));
        CHECK_OK(bp_net_free(net));
    }
    CHECK(sizes[0] == sizes[1] && memcmp(bytes[0], bytes[1], sizes[0]) == 0);
    free(bytes[0]);
    free(bytes[1]);
}

/* ---- allocation failure ------------------------------------------------------------------- */

static void test_a_failed_allocation_is_out_of_memory_and_changes_nothing(void) {
    if (!can_cap_address_space()) {
        return;
    }
    /* A wide network, warmed up (BLAS buffers, plans for a small batch) before the cap. */
    enum { WIDE_IN = 16, WIDE = 4096, WIDE_OUT = 4 };
    const size_t big = (size_t)1 << 16; /* 65536 samples: 1 GiB of hidden activations */
    float *big_inputs = calloc(big * WIDE_IN, sizeof(float));
    float *big_targets = calloc(big * WIDE_OUT, sizeof(float));
    float *big_outputs = malloc(big * WIDE_OUT * sizeof(float));
    float small_inputs[2 * WIDE_IN], before[2 * WIDE_OUT], after[2 * WIDE_OUT];
    for (int i = 0; i < 2 * WIDE_IN; i++) {
        small_inputs[i] = (float)i / 10.0f;
    }
    bp_net *net = NULL;
    CHECK_OK(bp_net_create(WIDE_IN, 5, &net));
    CHECK_OK(bp_net_add_dense(net, WIDE, BP_ACTIVATION_RELU));
    CHECK_OK(bp_net_add_dense(net, WIDE_OUT, BP_ACTIVATION_NONE));
    CHECK_OK(bp_net_predict(net, 2, small_inputs, 2 * WIDE_IN, before, 2 * WIDE_OUT));
    size_t parameter_count = 0;
    CHECK_OK(bp_net_parameter_count(net, &parameter_count));
    float *weights_before = malloc(parameter_count * sizeof(float));
    float *weights_after = malloc(parameter_count * sizeof(float));
    CHECK_OK(bp_net_parameters(net, weights_before, parameter_count));
    bp_graph *g = NULL;
    bp_node node = 777;
    size_t nodes_before = 0, nodes_after = 0;
    const size_t gibibyte[1] = {(size_t)1 << 28}, few[1] = {16};
    CHECK_OK(bp_graph_create(BP_FLOAT32, &g));
    CHECK_OK(bp_graph_node_count(g, &nodes_before));

    if (!cap_address_space(256 * MiB)) {
        return;
    }
    /* A 1 GiB parameter. */
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_graph_parameter(g, gibibyte, 1, &node));
    CHECK_EQ(node, 777);
    CHECK_OK(bp_graph_node_count(g, &nodes_after));
    CHECK_EQ(nodes_after, nodes_before);
    CHECK_OK(bp_graph_parameter(g, few, 1, &node));
    /* A batch whose activations do not fit: forward, predict and a training step. */
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_forward(net, big, big_inputs, big * WIDE_IN,
                                                      big_outputs, big * WIDE_OUT));
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_predict(net, big, big_inputs, big * WIDE_IN,
                                                      big_outputs, big * WIDE_OUT));
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY,
                 bp_net_train_step(net, big, big_inputs, big * WIDE_IN, big_targets,
                                   big * WIDE_OUT, 0.1f, NULL));
    /* Nothing changed, and the network still works within the cap. */
    CHECK_OK(bp_net_parameters(net, weights_after, parameter_count));
    CHECK(memcmp(weights_before, weights_after, parameter_count * sizeof(float)) == 0);
    CHECK_OK(bp_net_predict(net, 2, small_inputs, 2 * WIDE_IN, after, 2 * WIDE_OUT));
    CHECK(memcmp(before, after, sizeof before) == 0);
    uncap_address_space();

    CHECK_OK(bp_graph_free(g));
    CHECK_OK(bp_net_free(net));
    free(big_inputs);
    free(big_targets);
    free(big_outputs);
    free(weights_before);
    free(weights_after);
}

static void test_an_optimizer_without_room_for_its_state_is_out_of_memory(void) {
    if (!can_cap_address_space()) {
        return;
    }
    /* 1024 -> 4096: 4M parameters; Adam's first step allocates two 16 MiB buffers. */
    enum { WIDE_IN = 1024, WIDE = 4096 };
    float *inputs = calloc(WIDE_IN, sizeof(float)), *outputs = malloc(WIDE * sizeof(float));
    float *targets = calloc(WIDE, sizeof(float));
    for (int i = 0; i < WIDE_IN; i++) {
        inputs[i] = 1.0f;
    }
    for (int i = 0; i < WIDE; i++) {
        targets[i] = 1.0f;
    }
    bp_net *net = NULL;
    bp_optimizer *adam = NULL;
    CHECK_OK(bp_net_create(WIDE_IN, 5, &net));
    CHECK_OK(bp_net_add_dense(net, WIDE, BP_ACTIVATION_NONE));
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_ADAM, NULL, &adam));
    CHECK_OK(bp_net_forward(net, 1, inputs, WIDE_IN, outputs, WIDE));
    CHECK_OK(bp_net_backward(net, targets, WIDE, NULL));
    size_t count = 0;
    CHECK_OK(bp_net_parameter_count(net, &count));
    float *before = malloc(count * sizeof(float)), *after = malloc(count * sizeof(float));
    CHECK_OK(bp_net_parameters(net, before, count));

    if (!cap_address_space(8 * MiB)) {
        return;
    }
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_optimizer_step(adam, net));
    uncap_address_space();
    CHECK_OK(bp_net_parameters(net, after, count));
    CHECK(memcmp(before, after, count * sizeof(float)) == 0);
    /* With room again, the same step succeeds (the failed one left no half-made state). */
    CHECK_OK(bp_optimizer_step(adam, net));
    CHECK_OK(bp_net_parameters(net, after, count));
    CHECK(memcmp(before, after, count * sizeof(float)) != 0);

    CHECK_OK(bp_optimizer_free(adam));
    CHECK_OK(bp_net_free(net));
    free(inputs);
    free(outputs);
    free(targets);
    free(before);
    free(after);
}

static void test_adding_a_layer_without_room_is_out_of_memory(void) {
    if (!can_cap_address_space()) {
        return;
    }
    bp_net *net = NULL;
    float inputs[4] = {1, 2, 3, 4}, outputs[4];
    CHECK_OK(bp_net_create(4, 1, &net));
    CHECK_OK(bp_net_add_dense(net, 4, BP_ACTIVATION_RELU));
    if (!cap_address_space(64 * MiB)) {
        return;
    }
    /* 2^24 x 4 weights: 256 MiB of floats, representable, but not within the cap. */
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_add_dense(net, (size_t)1 << 24, BP_ACTIVATION_RELU));
    check_dense_layer_refused(net);
    uncap_address_space();
    CHECK_OK(bp_net_predict(net, 1, inputs, 4, outputs, 4));
    CHECK_OK(bp_net_free(net));
}

static void test_loading_a_checkpoint_without_room_is_out_of_memory(void) {
    if (!can_cap_address_space()) {
        return;
    }
    /* A 2048 -> 4096 network: a valid 32 MiB checkpoint. */
    bp_net *net = NULL;
    CHECK_OK(bp_net_create(2048, 1, &net));
    CHECK_OK(bp_net_add_dense(net, 4096, BP_ACTIVATION_RELU));
    size_t size = 0;
    unsigned char *bytes = checkpoint_bytes(net, NULL, &size);
    CHECK_OK(bp_net_free(net));
    bp_net *loaded = (bp_net *)&size;
    if (!cap_address_space(16 * MiB)) {
        return;
    }
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_load_buffer(bytes, size, &loaded, NULL));
    uncap_address_space();
    CHECK(loaded == (bp_net *)&size);
    CHECK_OK(bp_net_load_buffer(bytes, size, &loaded, NULL));
    CHECK_OK(bp_net_free(loaded));
    free(bytes);
}

/* A file that is gone as soon as this process is, even if it dies: created, removed at once,
 * and reached through its descriptor's /proc path, written to `path` (64 bytes). Returns the
 * descriptor, to close when done, or -1. */
static int unnamed_file(char *path) {
    char name[] = "/tmp/bp_test_faults_XXXXXX";
    int fd = mkstemp(name);
    if (!CHECK(fd >= 0)) {
        return -1;
    }
    unlink(name);
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* An unnamed CSV file (see unnamed_file) of `rows` rows of 10 bytes, "f,f,f,f,l": four
 * features and a label, row r holding r % 7, r % 5, r % 3, r % 2 and r % 10. */
static int csv_file(char *path, int rows) {
    int fd = unnamed_file(path);
    if (fd < 0) {
        return -1;
    }
    FILE *file = fdopen(dup(fd), "w");
    fprintf(file, "a,b,c,d,label\n");
    for (int r = 0; r < rows; r++) {
        fprintf(file, "%d,%d,%d,%d,%d\n", r % 7, r % 5, r % 3, r % 2, r % 10);
    }
    fclose(file);
    return fd;
}

/* Makes a CSV file of `rows` rows (see csv_file) and checks that loading it with `room` bytes
 * of address space to spare is BP_ERR_OUT_OF_MEMORY and gives no dataset. Returns the file's
 * descriptor (closing it removes the file), or -1 when no file could be made. */
static int check_loading_csv_without_room(char *path, int rows, size_t room) {
    int fd = csv_file(path, rows);
    if (fd < 0) {
        return -1;
    }
    bp_dataset *dataset = NULL;
    if (cap_address_space(room)) {
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_dataset_load_csv(path, NULL, &dataset));
        uncap_address_space();
        CHECK(dataset == NULL);
    }
    return fd;
}

static void test_reading_a_csv_file_without_room_is_out_of_memory(void) {
    if (!can_cap_address_space()) {
        return;
    }
    /* 30 MB of CSV: its bytes alone do not fit. */
    char path[64];
    int fd = check_loading_csv_without_room(path, 3000000, 16 * MiB);
    if (fd >= 0) {
        close(fd);
    }
}

static void test_parsing_a_csv_file_without_room_for_its_rows_is_out_of_memory(void) {
    if (!can_cap_address_space()) {
        return;
    }
    /* 10 MB of CSV fit; its million rows, parsed (16 MB of features, 8 MB of labels, 8 MB of
     * line numbers), do not. */
    char path[64];
    int fd = check_loading_csv_without_room(path, 1000000, 24 * MiB);
    if (fd < 0) {
        return;
    }
    bp_dataset *dataset = NULL;
    /* With room, the same file loads. */
    CHECK_OK(bp_dataset_load_csv(path, NULL, &dataset));
    size_t rows = 0, features = 0;
    CHECK_OK(bp_dataset_size(dataset, &rows, &features));
    CHECK(rows == 1000000 && features == 4);
    CHECK_OK(bp_dataset_free(dataset));
    close(fd);
}

/* Copying a dataset out takes no memory beyond the caller's buffers. */
static void test_reading_a_datasets_values_needs_no_memory_of_its_own(void) {
    if (!can_cap_address_space()) {
        return;
    }
    enum { ROWS = 1000000 };
    char path[64];
    int fd = csv_file(path, ROWS);
    if (fd < 0) {
        return;
    }
    bp_dataset *dataset = NULL;
    CHECK_OK(bp_dataset_load_csv(path, NULL, &dataset));
    close(fd);
    float *features = malloc(sizeof(float) * ROWS * 4), *targets = malloc(sizeof(float) * ROWS);
    int32_t *labels = malloc(sizeof(int32_t) * ROWS);
    memset(features, 0xFF, sizeof(float) * ROWS * 4);
    memset(targets, 0xFF, sizeof(float) * ROWS);
    memset(labels, 0xFF, sizeof(int32_t) * ROWS);
    if (cap_address_space(1 * MiB)) {
        CHECK_OK(bp_dataset_features(dataset, features, (size_t)ROWS * 4));
        CHECK_OK(bp_dataset_labels(dataset, labels, ROWS));
        CHECK_OK(bp_dataset_targets(dataset, targets, ROWS));
        uncap_address_space();
    }
    int right = 1;
    for (int r = 0; r < ROWS; r++) {
        right = right && labels[r] == r % 10 && targets[r] == (float)(r % 10) &&
                features[4 * r] == (float)(r % 7) && features[4 * r + 3] == (float)(r % 2);
    }
    CHECK(right);
    free(features);
    free(targets);
    free(labels);
    CHECK_OK(bp_dataset_free(dataset));
}

static void test_a_checkpoint_header_without_room_is_out_of_memory(void) {
    if (!can_cap_address_space()) {
        return;
    }
    /* A file whose first 8 bytes announce a 32 MiB header, and hold one: "{" and spaces. */
    const uint64_t length = 32 * MiB;
    char path[64];
    int fd = unnamed_file(path);
    if (fd < 0) {
        return;
    }
    char *header = malloc(length);
    memset(header, ' ', length);
    header[0] = '{';
    header[length - 1] = '}';
    CHECK(write(fd, &length, 8) == 8 && write(fd, header, length) == (ssize_t)length);
    free(header);
    bp_net *loaded = (bp_net *)&length;
    if (cap_address_space(16 * MiB)) {
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_load(path, &loaded, NULL));
        uncap_address_space();
    }
    CHECK(loaded == (bp_net *)&length);
    /* With room, the header is read, and refused for what it is: no libbackprop checkpoint. */
    CHECK_STATUS(BP_ERR_FORMAT, bp_net_load(path, &loaded, NULL));
    close(fd);
}

static void test_a_layer_norm_without_room_is_out_of_memory(void) {
    if (!can_cap_address_space()) {
        return;
    }
    /* A layer norm over 2^22 features: 16 MiB each for its weight, bias and their gradients. */
    const size_t width = (size_t)1 << 22;
    bp_net *net = NULL;
    size_t layers = 0, parameters = 0;
    CHECK_OK(bp_net_create(width, 1, &net));
    if (!cap_address_space(8 * MiB)) {
        return;
    }
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_add_layer_norm(net, 1e-5));
    uncap_address_space();
    CHECK_OK(bp_net_layer_count(net, &layers));
    CHECK_OK(bp_net_parameter_count(net, &parameters));
    CHECK(layers == 0 && parameters == 0);
    CHECK_OK(bp_net_add_layer_norm(net, 1e-5));
    CHECK_OK(bp_net_parameter_count(net, &parameters));
    CHECK_EQ(parameters, 2 * width);
    CHECK_OK(bp_net_free(net));
}

/* bp_net_train_step keeps the batch's outputs in a buffer of its own. */
static void test_a_training_step_without_room_for_its_outputs_is_out_of_memory(void) {
    if (!can_cap_address_space()) {
        return;
    }
    /* 1 -> 1024 outputs, a batch of 2^14: 64 MiB of outputs. */
    enum { WIDE = 1024 };
    const size_t batch = (size_t)1 << 14;
    float *inputs = calloc(batch, sizeof(float)), *targets = calloc(batch * WIDE, sizeof(float));
    bp_net *net = NULL;
    CHECK_OK(bp_net_create(1, 1, &net));
    CHECK_OK(bp_net_add_dense(net, WIDE, BP_ACTIVATION_NONE));
    size_t size_before = 0, size_after = 0;
    unsigned char *before = checkpoint_bytes(net, NULL, &size_before);
    if (cap_address_space(32 * MiB)) {
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_train_step(net, batch, inputs, batch, targets,
                                                             batch * WIDE, 0.1f, NULL));
        uncap_address_space();
    }
    unsigned char *after = checkpoint_bytes(net, NULL, &size_after);
    CHECK(size_before == size_after && memcmp(before, after, size_before) == 0);
    CHECK_OK(bp_net_train_step(net, batch, inputs, batch, targets, batch * WIDE, 0.1f, NULL));
    free(before);
    free(after);
    free(inputs);
    free(targets);
    CHECK_OK(bp_net_free(net));
}

/* The labels of a batch become the graph's element type in a buffer of their own. */
static void test_a_backward_without_room_for_its_labels_is_out_of_memory(void) {
    if (!can_cap_address_space()) {
        return;
    }
    /* A batch of 2^22 samples, 1 -> 2 classes: after the forward, the loss's target needs
     * 16 MiB and the labels as doubles 32 MiB. */
    const size_t batch = (size_t)1 << 22;
    float *inputs = calloc(batch, sizeof(float)), *outputs = malloc(batch * 2 * sizeof(float));
    int32_t *labels = calloc(batch, sizeof(int32_t));
    float loss = -1;
    bp_net *net = NULL;
    CHECK_OK(bp_net_create(1, 1, &net));
    CHECK_OK(bp_net_add_dense(net, 2, BP_ACTIVATION_NONE));
    CHECK_OK(bp_net_set_loss(net, BP_LOSS_CROSS_ENTROPY));
    CHECK_OK(bp_net_forward(net, batch, inputs, batch, outputs, batch * 2));
    state before = capture(net, NULL);
    if (cap_address_space(24 * MiB)) {
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_backward_labels(net, labels, batch, &loss));
        uncap_address_space();
    }
    CHECK(loss == -1);
    state after = capture(net, NULL);
    CHECK(same_state(&before, &after));
    CHECK_OK(bp_net_backward_labels(net, labels, batch, &loss));
    CHECK(isfinite(loss) && loss > 0);
    free(before.checkpoint);
    free(after.checkpoint);
    free(inputs);
    free(outputs);
    free(labels);
    CHECK_OK(bp_net_free(net));
}

static void test_an_evaluation_without_room_for_its_outputs_is_out_of_memory(void) {
    if (!can_cap_address_space()) {
        return;
    }
    /* 1 -> 2^18 outputs, 64 samples: 64 MiB of outputs. */
    const size_t wide = (size_t)1 << 18, samples = 64;
    float *inputs = calloc(samples, sizeof(float)), *targets = calloc(samples * wide, sizeof(float));
    double loss = -1, accuracy = -1;
    bp_net *net = NULL;
    CHECK_OK(bp_net_create(1, 1, &net));
    CHECK_OK(bp_net_add_dense(net, wide, BP_ACTIVATION_NONE));
    if (cap_address_space(32 * MiB)) {
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_evaluate(net, samples, inputs, samples, targets,
                                                           samples * wide, &loss, &accuracy));
        uncap_address_space();
    }
    CHECK(loss == -1 && accuracy == -1);
    CHECK_OK(bp_net_evaluate(net, samples, inputs, samples, targets, samples * wide, &loss,
                             &accuracy));
    CHECK(loss >= 0 && accuracy >= 0);
    free(inputs);
    free(targets);
    CHECK_OK(bp_net_free(net));
}

/* bp_net_fit also measures each layer's gradient health once an epoch, from copies of the
 * parameters and gradients: for a large network, these are what does not fit. */
static void test_fit_without_room_for_its_gradient_health_is_out_of_memory(void) {
    if (!can_cap_address_space()) {
        return;
    }
    /* 1024 -> 4096: 4M parameters, 16 MiB per copy; 4 samples. */
    enum { WIDE_IN = 1024, WIDE = 4096, SAMPLES = 4 };
    float *inputs = calloc(SAMPLES * WIDE_IN, sizeof(float));
    float *targets = calloc(SAMPLES * WIDE, sizeof(float));
    bp_net *net = NULL;
    bp_optimizer *sgd = NULL;
    bp_fit_options options;
    CHECK_OK(bp_net_create(WIDE_IN, 1, &net));
    CHECK_OK(bp_net_add_dense(net, WIDE, BP_ACTIVATION_NONE));
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, NULL, &sgd));
    CHECK_OK(bp_fit_options_default(&options));
    options.epochs = 2;
    /* BLAS takes its buffers on the first product: before the cap, so that the products under
     * it go to BLAS as usual. */
    float *outputs = malloc(SAMPLES * WIDE * sizeof(float));
    CHECK_OK(bp_net_predict(net, SAMPLES, inputs, SAMPLES * WIDE_IN, outputs, SAMPLES * WIDE));
    free(outputs);
    size_t size_before = 0, size_after = 0;
    unsigned char *before = checkpoint_bytes(net, sgd, &size_before);
    if (cap_address_space(24 * MiB)) {
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_fit(net, sgd, SAMPLES, inputs,
                                                      SAMPLES * WIDE_IN, targets, SAMPLES * WIDE,
                                                      &options, NULL));
        uncap_address_space();
    }
    unsigned char *after = checkpoint_bytes(net, sgd, &size_after);
    CHECK(size_before == size_after && memcmp(before, after, size_before) == 0);
    CHECK_OK(bp_net_fit(net, sgd, SAMPLES, inputs, SAMPLES * WIDE_IN, targets, SAMPLES * WIDE,
                        &options, NULL));
    free(before);
    free(after);
    free(inputs);
    free(targets);
    CHECK_OK(bp_optimizer_free(sgd));
    CHECK_OK(bp_net_free(net));
}

static void test_fit_without_room_for_its_minibatches_is_out_of_memory(void) {
    if (!can_cap_address_space()) {
        return;
    }
    /* 2^20 samples of 16 features (64 MiB), in one batch of 2^20. */
    const size_t samples = (size_t)1 << 20;
    float *inputs = calloc(samples * 16, sizeof(float)), *targets = calloc(samples, sizeof(float));
    bp_net *net = NULL;
    bp_optimizer *sgd = NULL;
    bp_fit_options options;
    CHECK_OK(bp_net_create(16, 1, &net));
    CHECK_OK(bp_net_add_dense(net, 1, BP_ACTIVATION_NONE));
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, NULL, &sgd));
    CHECK_OK(bp_fit_options_default(&options));
    options.batch_size = samples;
    options.epochs = 1;
    size_t size_before = 0, size_after = 0;
    unsigned char *before = checkpoint_bytes(net, sgd, &size_before);
    if (cap_address_space(32 * MiB)) {
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_fit(net, sgd, samples, inputs, samples * 16,
                                                      targets, samples, &options, NULL));
        uncap_address_space();
    }
    unsigned char *after = checkpoint_bytes(net, sgd, &size_after);
    CHECK(size_before == size_after && memcmp(before, after, size_before) == 0);
    free(before);
    free(after);
    free(inputs);
    free(targets);
    CHECK_OK(bp_optimizer_free(sgd));
    CHECK_OK(bp_net_free(net));
}

/* Runs `body` in a process of its own and waits at most `seconds` for it to exit: returns its
 * exit code, or -1 if it had to be killed (a hang). */
static int exit_code_within(void (*body)(void), int seconds) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        body();
        _exit(0);
    }
    int wait_status = 0, finished = 0;
    for (int tenth = 0; tenth < 10 * seconds && !finished; tenth++) {
        struct timespec pause = {0, 100000000};
        nanosleep(&pause, NULL);
        finished = waitpid(pid, &wait_status, WNOHANG) == pid;
    }
    if (!finished) {
        kill(pid, SIGKILL);
        waitpid(pid, &wait_status, 0);
        return -1;
    }
    return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

/* A 256 -> 256 network's forward pass on 256 samples under a cap of `room` more bytes, after
 * bp_set_num_threads(threads) (0: left alone). Exits 0 when the forward returns BP_OK or
 * BP_ERR_OUT_OF_MEMORY, and 5 when bp_get_num_threads is not within the CPUs this process may
 * run on. */
static void forward_under_a_cap(size_t room, int threads) {
    enum { WIDTH = 256 };
    float *inputs = calloc(WIDTH * WIDTH, sizeof(float));
    float *outputs = malloc(WIDTH * WIDTH * sizeof(float));
    bp_net *net = NULL;
    if (bp_net_create(WIDTH, 1, &net) != BP_OK ||
        bp_net_add_dense(net, WIDTH, BP_ACTIVATION_RELU) != BP_OK) {
        _exit(3);
    }
    struct rlimit cap;
    getrlimit(RLIMIT_AS, &cap);
    cap.rlim_cur = virtual_size() + room;
    setrlimit(RLIMIT_AS, &cap);
    if (threads > 0) {
        cpu_set_t allowed;
        int cpus = sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? CPU_COUNT(&allowed) : 64;
        if (bp_set_num_threads(threads) != BP_OK || bp_get_num_threads() < 1 ||
            bp_get_num_threads() > cpus) {
            _exit(5);
        }
    }
    bp_status status = bp_net_forward(net, WIDTH, inputs, WIDTH * WIDTH, outputs,
                                      WIDTH * WIDTH);
    _exit(status == BP_OK || status == BP_ERR_OUT_OF_MEMORY ? 0 : 4);
}

static void forward_with_64_threads_under_1_gib(void) { forward_under_a_cap(1024 * MiB, 64); }

/* Runs one of the forward passes above in a process of its own, killed after 10 seconds, and
 * returns its exit code (-1 when it had to be killed, saying so with `what`). */
static int forward_exit_code(void (*forward)(void), const char *what) {
    int code = exit_code_within(forward, 10);
    if (code == -1) {
        printf("     %s has not returned after 10 s\n", what);
    }
    return code;
}

/* More BLAS threads than the address space can hold: each OpenBLAS thread reserves a buffer,
 * and OpenBLAS spins forever in the next product when it cannot create the threads it was
 * told to use. bp_set_num_threads clamps the count to the CPUs this process may run on, so on
 * a machine with fewer than 64 (where 64 threads would not fit under the cap) the next matrix
 * product must return (BP_OK, or BP_ERR_OUT_OF_MEMORY), not hang, and bp_get_num_threads must
 * report the clamped count. Killed after 10 seconds. */
static void test_many_blas_threads_under_a_memory_cap_do_not_hang(void) {
    if (!can_cap_address_space()) {
        return;
    }
    int code = forward_exit_code(forward_with_64_threads_under_1_gib,
                                 "bp_net_forward with 64 BLAS threads under a 1 GiB cap");
    if (code == 5) {
        printf("     bp_get_num_threads after bp_set_num_threads(64) is not clamped to the CPUs\n");
    }
    CHECK_EQ(code, 0);
}

static void first_forward_under_64_mib(void) { forward_under_a_cap(64 * MiB, 0); }

/* OpenBLAS takes a buffer of 128 MiB for the first matrix product of a process (and another
 * for each product running at the same time); when it cannot get one, blas_memory_alloc tries
 * again forever. Under a cap on the address space that leaves less room than that, the library
 * computes such products itself, so the first forward pass must return (BP_ERR_OUT_OF_MEMORY,
 * or BP_OK), not hang. Killed after 10 seconds. */
static void test_a_first_matrix_product_under_a_tight_memory_cap_does_not_hang(void) {
    if (!can_cap_address_space()) {
        return;
    }
    CHECK_EQ(forward_exit_code(first_forward_under_64_mib,
                               "the first bp_net_forward under a 64 MiB cap"), 0);
}

/* ---- NaN and infinity in data ------------------------------------------------------------- */

/* The calls that take data, each with one poisoned buffer. */
typedef enum poisoned {
    FORWARD_INPUTS,
    PREDICT_INPUTS,
    BACKWARD_TARGETS,
    TRAIN_STEP_INPUTS,
    TRAIN_STEP_TARGETS,
    TRAIN_STEP_LABELS_INPUTS,
    FIT_INPUTS,
    FIT_TARGETS,
    FIT_VALIDATION_INPUTS,
    FIT_VALIDATION_TARGETS,
    FIT_LABELS_INPUTS,
    FIT_LABELS_VALIDATION_INPUTS,
    EVALUATE_INPUTS,
    EVALUATE_TARGETS,
    EVALUATE_LABELS_INPUTS,
    POISONED_COUNT
} poisoned;

static const char *const POISONED_NAMES[POISONED_COUNT] = {
    "bp_net_forward inputs", "bp_net_predict inputs", "bp_net_backward targets",
    "bp_net_train_step inputs", "bp_net_train_step targets", "bp_net_train_step_labels inputs",
    "bp_net_fit inputs", "bp_net_fit targets", "bp_net_fit validation inputs",
    "bp_net_fit validation targets", "bp_net_fit_labels inputs",
    "bp_net_fit_labels validation inputs", "bp_net_evaluate inputs", "bp_net_evaluate targets",
    "bp_net_evaluate_labels inputs"};

static int uses_labels(poisoned call) {
    return call == TRAIN_STEP_LABELS_INPUTS || call == FIT_LABELS_INPUTS ||
           call == FIT_LABELS_VALIDATION_INPUTS || call == EVALUATE_LABELS_INPUTS;
}

static bp_status call_poisoned(poisoned call, bp_net *net, bp_optimizer *optimizer,
                               const float *inputs, const float *targets) {
    float outputs[BATCH * OUT], loss = -1;
    double mean = -1, accuracy = -1;
    bp_fit_options options;
    bp_fit_options_default(&options);
    options.batch_size = 2;
    options.epochs = 2;
    switch (call) {
    case FORWARD_INPUTS:
        return bp_net_forward(net, BATCH, inputs, BATCH * IN, outputs, BATCH * OUT);
    case PREDICT_INPUTS:
        return bp_net_predict(net, BATCH, inputs, BATCH * IN, outputs, BATCH * OUT);
    case BACKWARD_TARGETS:
        return bp_net_backward(net, targets, BATCH * OUT, &loss);
    case TRAIN_STEP_INPUTS:
    case TRAIN_STEP_TARGETS:
        return bp_net_train_step(net, BATCH, inputs, BATCH * IN, targets, BATCH * OUT, 0.1f,
                                 &loss);
    case TRAIN_STEP_LABELS_INPUTS:
        return bp_net_train_step_labels(net, BATCH, inputs, BATCH * IN, LABELS, BATCH, 0.1f,
                                        &loss);
    case FIT_INPUTS:
    case FIT_TARGETS:
        return bp_net_fit(net, optimizer, BATCH, inputs, BATCH * IN, targets, BATCH * OUT,
                          &options, NULL);
    case FIT_VALIDATION_INPUTS:
    case FIT_VALIDATION_TARGETS:
        options.validation_samples = BATCH;
        options.validation_inputs = inputs;
        options.validation_input_count = BATCH * IN;
        options.validation_targets = targets;
        options.validation_target_count = BATCH * OUT;
        return bp_net_fit(net, optimizer, BATCH, INPUTS, BATCH * IN, TARGETS, BATCH * OUT,
                          &options, NULL);
    case FIT_LABELS_INPUTS:
        return bp_net_fit_labels(net, optimizer, BATCH, inputs, BATCH * IN, LABELS, BATCH,
                                 &options, NULL);
    case FIT_LABELS_VALIDATION_INPUTS:
        options.validation_samples = BATCH;
        options.validation_inputs = inputs;
        options.validation_input_count = BATCH * IN;
        options.validation_labels = LABELS;
        options.validation_label_count = BATCH;
        return bp_net_fit_labels(net, optimizer, BATCH, INPUTS, BATCH * IN, LABELS, BATCH,
                                 &options, NULL);
    case EVALUATE_INPUTS:
    case EVALUATE_TARGETS:
        return bp_net_evaluate(net, BATCH, inputs, BATCH * IN, targets, BATCH * OUT, &mean,
                               &accuracy);
    case EVALUATE_LABELS_INPUTS:
        return bp_net_evaluate_labels(net, BATCH, inputs, BATCH * IN, LABELS, BATCH, &mean,
                                      &accuracy);
    default:
        return BP_ERR_INTERNAL;
    }
}

static int poisons_targets(poisoned call) {
    return call == BACKWARD_TARGETS || call == TRAIN_STEP_TARGETS || call == FIT_TARGETS ||
           call == FIT_VALIDATION_TARGETS || call == EVALUATE_TARGETS;
}

static void test_nan_or_infinity_in_any_data_is_refused_and_changes_nothing(void) {
    fill_data();
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    const char *const bad_names[3] = {"NaN", "+inf", "-inf"};
    int calls = 0;
    for (int c = 0; c < POISONED_COUNT; c++) {
        poisoned call = (poisoned)c;
        bp_loss loss = uses_labels(call) ? BP_LOSS_CROSS_ENTROPY : BP_LOSS_MSE;
        /* A network with an optimizer that has state, and gradients, from one good step. */
        bp_net *net = small_net(loss, 17);
        bp_optimizer *adam = NULL;
        float outputs[BATCH * OUT];
        CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_ADAM, NULL, &adam));
        CHECK_OK(bp_net_forward(net, BATCH, INPUTS, BATCH * IN, outputs, BATCH * OUT));
        if (loss == BP_LOSS_MSE) {
            CHECK_OK(bp_net_backward(net, TARGETS, BATCH * OUT, NULL));
        } else {
            CHECK_OK(bp_net_backward_labels(net, LABELS, BATCH, NULL));
        }
        CHECK_OK(bp_optimizer_step(adam, net));
        /* backward needs a forward of its own first; a good one. */
        if (call == BACKWARD_TARGETS) {
            CHECK_OK(bp_net_forward(net, BATCH, INPUTS, BATCH * IN, outputs, BATCH * OUT));
        }
        state before = capture(net, adam);
        size_t length = poisons_targets(call) ? BATCH * OUT : BATCH * IN;
        const size_t positions[3] = {0, length / 2, length - 1};
        for (int b = 0; b < 3; b++) {
            for (int p = 0; p < 3; p++) {
                float inputs[BATCH * IN], targets[BATCH * OUT];
                memcpy(inputs, INPUTS, sizeof inputs);
                memcpy(targets, TARGETS, sizeof targets);
                (poisons_targets(call) ? targets : inputs)[positions[p]] = bad[b];
                char context[160];
                snprintf(context, sizeof context, "%s, %s at element %zu of %zu",
                         POISONED_NAMES[c], bad_names[b], positions[p], length);
                CHECK_CONTEXT(context);
                CHECK_STATUS(BP_ERR_NONFINITE, call_poisoned(call, net, adam, inputs, targets));
                state after = capture(net, adam);
                CHECK(same_state(&before, &after));
                free(after.checkpoint);
                calls++;
            }
        }
        CHECK_CONTEXT(NULL);
        /* The same call with clean data succeeds: the refusals were about the data. */
        CHECK_OK(call_poisoned(call, net, adam, INPUTS, TARGETS));
        free(before.checkpoint);
        CHECK_OK(bp_optimizer_free(adam));
        CHECK_OK(bp_net_free(net));
    }
    printf("     %d poisoned calls (%d entry points x NaN, +inf, -inf x first, middle, last)\n",
           calls, (int)POISONED_COUNT);
}

/* ---- saving when the filesystem fails ----------------------------------------------------- */

static char scratch[256];

static const char *in_scratch(const char *name) {
    static char paths[4][1024];
    static int next = 0;
    char *path = paths[next++ % 4];
    snprintf(path, sizeof paths[0], "%s/%s", scratch, name);
    return path;
}

static int make_scratch(void) {
    strcpy(scratch, "/tmp/bp_test_faults_XXXXXX");
    return CHECK(mkdtemp(scratch) != NULL);
}

static void remove_scratch(void) {
    DIR *dir = opendir(scratch);
    if (dir != NULL) {
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
                unlink(in_scratch(entry->d_name));
            }
        }
        closedir(dir);
    }
    rmdir(scratch);
}

static int count_entries(const char *folder) {
    DIR *dir = opendir(folder);
    int n = 0;
    if (dir == NULL) {
        return -1;
    }
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        n += strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0;
    }
    closedir(dir);
    return n;
}

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    unsigned char *bytes = NULL;
    size_t have = 0, capacity = 0, n;
    do {
        if (have == capacity) {
            capacity = capacity ? capacity * 2 : 4096;
            bytes = realloc(bytes, capacity);
        }
        n = fread(bytes + have, 1, capacity - have, f);
        have += n;
    } while (n > 0);
    fclose(f);
    *size = have;
    return bytes;
}

/* Two different models: the first is saved, the second's save fails. */
typedef struct models {
    bp_net *first, *second;
    unsigned char *first_bytes;
    size_t first_size;
} models;

static models two_models(void) {
    models m;
    m.first = small_net(BP_LOSS_MSE, 1);
    m.second = small_net(BP_LOSS_MSE, 2);
    CHECK_OK(bp_net_add_dense(m.second, 64, BP_ACTIVATION_RELU)); /* larger, too */
    m.first_bytes = checkpoint_bytes(m.first, NULL, &m.first_size);
    return m;
}

static void free_models(models *m) {
    CHECK_OK(bp_net_free(m->first));
    CHECK_OK(bp_net_free(m->second));
    free(m->first_bytes);
}

/* The file at `path` is exactly the first model's checkpoint, and loads. */
static void check_first_model_intact(const models *m, const char *path) {
    size_t size = 0;
    unsigned char *bytes = read_file(path, &size);
    CHECK(bytes != NULL && size == m->first_size && memcmp(bytes, m->first_bytes, size) == 0);
    free(bytes);
    bp_net *loaded = NULL;
    CHECK_OK(bp_net_load(path, &loaded, NULL));
    CHECK_OK(bp_net_free(loaded));
}

/* A private mount namespace (as root, or as root of a new user namespace), so that tmpfs mounts
 * are this test process's alone and vanish with it. */
static int private_mounts(void) {
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWNS) != 0) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
            skip("no private mount namespace (unshare is not permitted here)");
            return 0;
        }
        char map[64];
        int fd = open("/proc/self/setgroups", O_WRONLY);
        if (fd >= 0) {
            ssize_t ignored = write(fd, "deny", 4);
            (void)ignored;
            close(fd);
        }
        static const char *const files[2] = {"/proc/self/uid_map", "/proc/self/gid_map"};
        for (int i = 0; i < 2; i++) {
            snprintf(map, sizeof map, "0 %u 1", i == 0 ? (unsigned)uid : (unsigned)gid);
            fd = open(files[i], O_WRONLY);
            if (fd < 0 || write(fd, map, strlen(map)) < 0) {
                skip("cannot map the user into a user namespace");
                return 0;
            }
            close(fd);
        }
    }
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) {
        skip("cannot make the mounts private");
        return 0;
    }
    return 1;
}

static int mount_tmpfs(const char *folder, const char *options) {
    if (mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, options) != 0) {
        skip("mounting a tmpfs is not permitted here");
        return 0;
    }
    return 1;
}

static void test_a_save_to_a_full_filesystem_keeps_the_previous_checkpoint(void) {
    if (!make_scratch()) {
        return;
    }
    if (private_mounts() && mount_tmpfs(scratch, "size=128k")) {
        models m = two_models();
        const char *path = in_scratch("model.safetensors");
        CHECK_OK(bp_net_save(m.first, NULL, path));
        /* Fill every block left. */
        int filler = open(in_scratch("filler"), O_WRONLY | O_CREAT, 0600);
        char block[4096];
        memset(block, 0xAB, sizeof block);
        size_t filled = 0;
        ssize_t n;
        while ((n = write(filler, block, sizeof block)) > 0) {
            filled += (size_t)n;
        }
        CHECK(n < 0 && errno == ENOSPC);
        close(filler);
        CHECK_STATUS(BP_ERR_IO, bp_net_save(m.second, NULL, path));
        CHECK(strstr(bp_last_error(), "model.safetensors") != NULL);
        check_first_model_intact(&m, path);
        CHECK_EQ(count_entries(scratch), 2); /* the model and the filler: no temporary file */
        /* A new file on the full disk fails the same way and leaves nothing. */
        CHECK_STATUS(BP_ERR_IO, bp_net_save(m.first, NULL, in_scratch("new.safetensors")));
        CHECK_EQ(count_entries(scratch), 2);
        /* Room again: the save succeeds and replaces the file. */
        unlink(in_scratch("filler"));
        CHECK_OK(bp_net_save(m.second, NULL, path));
        size_t size = 0, expected_size = 0;
        unsigned char *bytes = read_file(path, &size);
        unsigned char *expected = checkpoint_bytes(m.second, NULL, &expected_size);
        CHECK(bytes != NULL && size == expected_size && memcmp(bytes, expected, size) == 0);
        free(bytes);
        free(expected);
        printf("     tmpfs of 128 KiB filled with %zu bytes; the save failed with BP_ERR_IO\n",
               filled);
        free_models(&m);
        unlink(path);
        umount(scratch);
    }
    rmdir(scratch);
}

static void test_a_save_to_a_read_only_filesystem_keeps_the_previous_checkpoint(void) {
    if (!make_scratch()) {
        return;
    }
    if (private_mounts() && mount_tmpfs(scratch, "size=1m")) {
        models m = two_models();
        const char *path = in_scratch("model.safetensors");
        CHECK_OK(bp_net_save(m.first, NULL, path));
        if (CHECK(mount("tmpfs", scratch, "tmpfs", MS_REMOUNT | MS_RDONLY, NULL) == 0)) {
            CHECK_STATUS(BP_ERR_IO, bp_net_save(m.second, NULL, path));
            CHECK_STATUS(BP_ERR_IO, bp_net_save(m.second, NULL, in_scratch("new.safetensors")));
            check_first_model_intact(&m, path);
            CHECK_EQ(count_entries(scratch), 1);
        }
        free_models(&m);
        umount(scratch);
    }
    rmdir(scratch);
}

/* As a user without write permission on the folder. test_io.c checks this for a user who is
 * not root (root ignores permissions); here root becomes "nobody" for the save. */
static void test_a_save_by_a_user_who_may_not_write_keeps_the_previous_checkpoint(void) {
    if (geteuid() != 0) {
        skip("not root: test_io.c's read-only folder case covers this user");
        return;
    }
    if (!make_scratch()) {
        return;
    }
    CHECK(chmod(scratch, 0755) == 0);
    models m = two_models();
    const char *path = in_scratch("model.safetensors");
    CHECK_OK(bp_net_save(m.first, NULL, path));
    if (CHECK(setegid(65534) == 0 && seteuid(65534) == 0)) {
        CHECK_STATUS(BP_ERR_IO, bp_net_save(m.second, NULL, path));
        CHECK(strstr(bp_last_error(), "ermission") != NULL);
        CHECK_STATUS(BP_ERR_IO, bp_net_save(m.second, NULL, in_scratch("new.safetensors")));
        CHECK(seteuid(0) == 0 && setegid(0) == 0);
    }
    check_first_model_intact(&m, path);
    CHECK_EQ(count_entries(scratch), 1);
    free_models(&m);
    remove_scratch();
}

static void test_saving_and_loading_without_file_descriptors_is_an_io_error(void) {
    /* Valgrind keeps descriptors of its own above the limit it shows the program: an open(2)
     * with O_CREAT then creates the file before valgrind refuses the descriptor with EMFILE,
     * which no kernel does. */
    if (under_valgrind()) {
        skip("valgrind's descriptor limit creates files that a real EMFILE never creates");
        return;
    }
    if (!make_scratch()) {
        return;
    }
    models m = two_models();
    const char *path = in_scratch("model.safetensors");
    CHECK_OK(bp_net_save(m.first, NULL, path));
    const char *csv = in_scratch("data.csv");
    FILE *file = fopen(csv, "w");
    fprintf(file, "a,b\n1,2\n");
    fclose(file);

    /* No descriptor left: the lowest free one is above the limit. */
    struct rlimit saved, none;
    getrlimit(RLIMIT_NOFILE, &saved);
    int probe = dup(0);
    none = saved;
    none.rlim_cur = (rlim_t)probe;
    close(probe);
    bp_net *loaded = NULL;
    bp_dataset *dataset = NULL;
    if (CHECK(setrlimit(RLIMIT_NOFILE, &none) == 0)) {
        CHECK(dup(0) < 0 && errno == EMFILE);
        CHECK_STATUS(BP_ERR_IO, bp_net_save(m.second, NULL, path));
        CHECK_STATUS(BP_ERR_IO, bp_net_load(path, &loaded, NULL));
        CHECK_STATUS(BP_ERR_IO, bp_dataset_load_csv(csv, NULL, &dataset));
        CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);
    }
    CHECK(loaded == NULL && dataset == NULL);
    check_first_model_intact(&m, path);
    CHECK_EQ(count_entries(scratch), 2);
    free_models(&m);
    remove_scratch();
}

/* The write quota (RLIMIT_FSIZE) hit at every interesting byte of the new file: at once, inside
 * the length, inside the JSON header, inside the data, one byte short. */
static void test_a_save_cut_off_at_any_byte_keeps_the_previous_checkpoint(void) {
    if (!make_scratch()) {
        return;
    }
    models m = two_models();
    const char *path = in_scratch("model.safetensors");
    CHECK_OK(bp_net_save(m.first, NULL, path));
    size_t second_size = 0;
    unsigned char *second = checkpoint_bytes(m.second, NULL, &second_size);
    uint64_t header = 0;
    memcpy(&header, second, 8);
    const size_t cuts[] = {0, 1, 7, 8, 9, 8 + (size_t)header / 2, 8 + (size_t)header,
                           second_size / 2, second_size - 4, second_size - 1};
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit saved;
    getrlimit(RLIMIT_FSIZE, &saved);
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        struct rlimit quota = saved;
        quota.rlim_cur = cuts[i];
        char context[64];
        snprintf(context, sizeof context, "cut off after %zu of %zu bytes", cuts[i], second_size);
        CHECK_CONTEXT(context);
        CHECK(setrlimit(RLIMIT_FSIZE, &quota) == 0);
        CHECK_STATUS(BP_ERR_IO, bp_net_save(m.second, NULL, path));
        CHECK(setrlimit(RLIMIT_FSIZE, &saved) == 0);
        check_first_model_intact(&m, path);
        CHECK_EQ(count_entries(scratch), 1);
    }
    CHECK_CONTEXT(NULL);
    free(second);
    free_models(&m);
    remove_scratch();
}

static void test_a_save_to_an_impossible_path_is_an_io_error(void) {
    if (!make_scratch()) {
        return;
    }
    models m = two_models();
    const char *file = in_scratch("model.safetensors");
    CHECK_OK(bp_net_save(m.first, NULL, file));
    /* A file used as a folder (ENOTDIR). */
    char below_a_file[1100];
    snprintf(below_a_file, sizeof below_a_file, "%s/inner.safetensors", file);
    CHECK_STATUS(BP_ERR_IO, bp_net_save(m.second, NULL, below_a_file));
    /* A name longer than NAME_MAX, and a path longer than PATH_MAX. */
    char long_name[400];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK_STATUS(BP_ERR_IO, bp_net_save(m.second, NULL, in_scratch(long_name)));
    size_t length = 5000;
    char *long_path = malloc(length + 1);
    for (size_t i = 0; i < length; i++) {
        long_path[i] = i % 2 == 0 ? '/' : 'd';
    }
    long_path[length] = '\0';
    CHECK_STATUS(BP_ERR_IO, bp_net_save(m.second, NULL, long_path));
    free(long_path);
    check_first_model_intact(&m, file);
    CHECK_EQ(count_entries(scratch), 1);
    free_models(&m);
    remove_scratch();
}

/* ---- reading what is not a regular file --------------------------------------------------- */

typedef struct loader {
    const char *path;
    int csv;
    volatile int done;
    bp_status status;
    char message[256];
} loader;

static void *load_in_thread(void *argument) {
    loader *l = argument;
    if (l->csv) {
        bp_dataset *dataset = NULL;
        l->status = bp_dataset_load_csv(l->path, NULL, &dataset);
    } else {
        bp_net *net = NULL;
        l->status = bp_net_load(l->path, &net, NULL);
    }
    snprintf(l->message, sizeof l->message, "%s", bp_last_error());
    l->done = 1;
    return NULL;
}

/* The header: loading something that is not a regular file is BP_ERR_IO. A FIFO with no writer
 * must not block the caller forever. The load runs in a thread; if it has not returned after 3
 * seconds, the test fails, then opens the FIFO for writing so that the thread can finish. */
static void test_loading_from_a_fifo_is_an_io_error_and_does_not_block(void) {
    if (!make_scratch()) {
        return;
    }
    const char *fifo = in_scratch("pipe");
    CHECK(mkfifo(fifo, 0600) == 0);
    for (int csv = 0; csv < 2; csv++) {
        loader l = {.path = fifo, .csv = csv};
        pthread_t thread;
        CHECK(pthread_create(&thread, NULL, load_in_thread, &l) == 0);
        double waited = 0;
        while (!l.done && waited < 3.0) {
            struct timespec pause = {0, 10000000};
            nanosleep(&pause, NULL);
            waited += 0.01;
        }
        CHECK_CONTEXT(csv ? "bp_dataset_load_csv" : "bp_net_load");
        if (!CHECK(l.done)) {
            printf("     %s on a FIFO without a writer still blocks after 3 s\n",
                   csv ? "bp_dataset_load_csv" : "bp_net_load");
            int writer = open(fifo, O_WRONLY | O_NONBLOCK);
            pthread_join(thread, NULL);
            if (writer >= 0) {
                close(writer);
            }
        } else {
            pthread_join(thread, NULL);
        }
        CHECK_EQ(l.status, BP_ERR_IO);
        CHECK(l.message[0] != '\0');
        CHECK_CONTEXT(NULL);
    }
    remove_scratch();
}

int main(void) {
    RUN(test_a_dense_layer_of_2_to_the_40_units_is_refused);
    RUN(test_leaves_and_inputs_of_2_to_the_40_are_refused);
    RUN(test_a_fit_batch_size_of_2_to_the_40_is_refused_and_no_abort);
    RUN(test_a_failed_allocation_is_out_of_memory_and_changes_nothing);
    RUN(test_an_optimizer_without_room_for_its_state_is_out_of_memory);
    RUN(test_adding_a_layer_without_room_is_out_of_memory);
    RUN(test_a_layer_norm_without_room_is_out_of_memory);
    RUN(test_loading_a_checkpoint_without_room_is_out_of_memory);
    RUN(test_a_checkpoint_header_without_room_is_out_of_memory);
    RUN(test_reading_a_csv_file_without_room_is_out_of_memory);
    RUN(test_parsing_a_csv_file_without_room_for_its_rows_is_out_of_memory);
    RUN(test_reading_a_datasets_values_needs_no_memory_of_its_own);
    RUN(test_a_training_step_without_room_for_its_outputs_is_out_of_memory);
    RUN(test_a_backward_without_room_for_its_labels_is_out_of_memory);
    RUN(test_an_evaluation_without_room_for_its_outputs_is_out_of_memory);
    RUN(test_fit_without_room_for_its_minibatches_is_out_of_memory);
    RUN(test_fit_without_room_for_its_gradient_health_is_out_of_memory);
    RUN(test_many_blas_threads_under_a_memory_cap_do_not_hang);
    RUN(test_a_first_matrix_product_under_a_tight_memory_cap_does_not_hang);
    RUN(test_nan_or_infinity_in_any_data_is_refused_and_changes_nothing);
    RUN(test_a_save_to_a_full_filesystem_keeps_the_previous_checkpoint);
    RUN(test_a_save_to_a_read_only_filesystem_keeps_the_previous_checkpoint);
    RUN(test_a_save_by_a_user_who_may_not_write_keeps_the_previous_checkpoint);
    RUN(test_saving_and_loading_without_file_descriptors_is_an_io_error);
    RUN(test_a_save_cut_off_at_any_byte_keeps_the_previous_checkpoint);
    RUN(test_a_save_to_an_impossible_path_is_an_io_error);
    RUN(test_loading_from_a_fifo_is_an_io_error_and_does_not_block);
    return check_summary();
}
