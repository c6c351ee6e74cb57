/*
 * test_abi.c: the promises that keep the ABI extensible, seen from a C program.
 *
 * Every struct that begins with `size_t size` (an options struct, or one the library fills in)
 * lets later versions append fields. That only works if the library believes `size`:
 *   - a caller's struct whose size is smaller than this header's sizeof is refused with
 *     BP_ERR_INVALID_ARGUMENT, and nothing changes (the fields the library would read past the
 *     end do not exist);
 *   - a larger size, from a program built against a newer header, is accepted, and the tail the
 *     library does not know is ignored;
 *   - a struct the library fills in carries the library's own size.
 * There is one test per size-prefixed struct, named test_<struct>_size_too_small;
 * Tests/c/check_coverage.sh fails when the header has such a struct without its test.
 *
 * Also: the version macros agree with bp_version() and bp_version_number().
 */
#include "check.h"

#include <stdint.h>

/* Sizes to try that are all too small: nothing, one byte, just the size field, one byte short. */
#define TOO_SMALL_SIZES(type) {0, 1, sizeof(size_t), sizeof(type) - 1}
enum { TOO_SMALL_COUNT = 4 };

static const float INPUTS[8] = {0, 0, 0, 1, 1, 0, 1, 1};
static const float TARGETS[4] = {0, 1, 1, 0};
static const int32_t LABELS[4] = {0, 1, 1, 0};

/* A 2-3-1 MSE network (or 2-3-2 cross-entropy) with a known parameter count. */
static bp_net *new_net(bp_loss loss) {
    bp_net *net = NULL;
    CHECK_OK(bp_net_create(2, 11, &net));
    CHECK_OK(bp_net_add_dense(net, 3, BP_ACTIVATION_TANH));
    CHECK_OK(bp_net_add_dense(net, loss == BP_LOSS_MSE ? 1 : 2, BP_ACTIVATION_NONE));
    CHECK_OK(bp_net_set_loss(net, loss));
    return net;
}

enum { MAX_PARAMETERS = 64 };

/* Copies the network's parameters into out (MAX_PARAMETERS floats); returns their count. */
static size_t parameters(const bp_net *net, float *out) {
    size_t count = 0;
    CHECK_OK(bp_net_parameter_count(net, &count));
    if (!CHECK(count <= MAX_PARAMETERS)) {
        return 0;
    }
    CHECK_OK(bp_net_parameters(net, out, count));
    return count;
}

static int same_parameters(const bp_net *net, const float *before, size_t count) {
    float now[MAX_PARAMETERS];
    return parameters(net, now) == count && memcmp(now, before, count * sizeof(float)) == 0;
}

/* ---- version ---------------------------------------------------------------------------- */

static void test_version_macros_agree_with_the_library(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", BP_VERSION_MAJOR, BP_VERSION_MINOR,
             BP_VERSION_PATCH);
    CHECK(strcmp(BP_VERSION_STRING, expected) == 0);
    CHECK_EQ(BP_VERSION_NUMBER,
             BP_VERSION_MAJOR * 10000 + BP_VERSION_MINOR * 100 + BP_VERSION_PATCH);
    const char *version = bp_version();
    if (CHECK(version != NULL)) {
        CHECK(strcmp(version, BP_VERSION_STRING) == 0);
    }
    CHECK_EQ(bp_version_number(), BP_VERSION_NUMBER);
}

/* ---- bp_optimizer_options (bp_optimizer_create) ---------------------------------------- */

static void test_bp_optimizer_options_size_too_small(void) {
    static const size_t sizes[TOO_SMALL_COUNT] = TOO_SMALL_SIZES(bp_optimizer_options);
    static const bp_optimizer_kind kinds[] = {BP_OPTIMIZER_SGD, BP_OPTIMIZER_ADAM,
                                              BP_OPTIMIZER_ADAMW, BP_OPTIMIZER_RMSPROP,
                                              BP_OPTIMIZER_ADAGRAD};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        bp_optimizer_options options;
        CHECK_OK(bp_optimizer_options_default(kinds[k], &options));
        CHECK_EQ(options.size, sizeof options);
        for (size_t i = 0; i < TOO_SMALL_COUNT; i++) {
            bp_optimizer *optimizer = (bp_optimizer *)(void *)&options; /* must stay as it is */
            bp_optimizer *untouched = optimizer;
            options.size = sizes[i];
            CHECK_STATUS(BP_ERR_INVALID_ARGUMENT,
                         bp_optimizer_create(kinds[k], &options, &optimizer));
            CHECK(optimizer == untouched);
        }
    }
}

/* A struct from a newer header: this one, then fields this library does not know. */
typedef struct newer_optimizer_options {
    bp_optimizer_options known;
    double unknown[4];
} newer_optimizer_options;

static void test_bp_optimizer_options_larger_size_is_accepted(void) {
    newer_optimizer_options newer;
    memset(&newer, 0x7F, sizeof newer); /* the unknown tail is garbage to this library */
    CHECK_OK(bp_optimizer_options_default(BP_OPTIMIZER_ADAM, &newer.known));
    newer.known.size = sizeof newer;
    newer.known.learning_rate = 0.25;
    bp_optimizer *optimizer = NULL;
    double rate = 0;
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_ADAM, &newer.known, &optimizer));
    CHECK_OK(bp_optimizer_learning_rate(optimizer, &rate));
    CHECK_NEAR(rate, 0.25, 0);
    CHECK_OK(bp_optimizer_free(optimizer));
}

/* ---- bp_schedule_options (bp_optimizer_set_schedule) ------------------------------------ */

static void test_bp_schedule_options_size_too_small(void) {
    static const size_t sizes[TOO_SMALL_COUNT] = TOO_SMALL_SIZES(bp_schedule_options);
    bp_optimizer *optimizer = NULL;
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, NULL, &optimizer));
    for (int rule = BP_SCHEDULE_CONSTANT; rule <= BP_SCHEDULE_REDUCE_ON_PLATEAU; rule++) {
        bp_schedule_options schedule;
        CHECK_OK(bp_schedule_options_default((bp_schedule_rule)rule, &schedule));
        CHECK_EQ(schedule.size, sizeof schedule);
        schedule.warmup_epochs = 2; /* would change the rate at once if accepted */
        for (size_t i = 0; i < TOO_SMALL_COUNT; i++) {
            schedule.size = sizes[i];
            CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_set_schedule(optimizer, &schedule));
        }
    }
    /* Nothing was attached, and the rate is the optimizer's own. */
    double rate = 0, stepped = -1;
    CHECK_OK(bp_optimizer_learning_rate(optimizer, &rate));
    CHECK_NEAR(rate, 0.01, 0);
    CHECK_STATUS(BP_ERR_STATE, bp_optimizer_schedule_step(optimizer, NAN, &stepped));
    CHECK_NEAR(stepped, -1, 0);
    CHECK_OK(bp_optimizer_free(optimizer));
}

/* ---- bp_fit_options and bp_fit_result (bp_net_fit, bp_net_fit_labels) ------------------- */

/* Runs both fit calls with the given options and result, expecting `expected` from each, and
 * checks that a refused call changed neither the weights nor *result. */
static void check_fit(bp_status expected, const bp_fit_options *options, bp_fit_result *result) {
    bp_net *mse = new_net(BP_LOSS_MSE), *ce = new_net(BP_LOSS_CROSS_ENTROPY);
    bp_optimizer *optimizer = NULL;
    float before_mse[MAX_PARAMETERS], before_ce[MAX_PARAMETERS];
    size_t count_mse = parameters(mse, before_mse), count_ce = parameters(ce, before_ce);
    bp_fit_result untouched;
    if (result != NULL) {
        untouched = *result;
    }
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, NULL, &optimizer));

    CHECK_STATUS(expected, bp_net_fit(mse, optimizer, 4, INPUTS, 8, TARGETS, 4, options, result));
    if (expected != BP_OK) {
        CHECK(same_parameters(mse, before_mse, count_mse));
        if (result != NULL) {
            CHECK(memcmp(result, &untouched, sizeof untouched) == 0);
        }
    }
    CHECK_STATUS(expected,
                 bp_net_fit_labels(ce, optimizer, 4, INPUTS, 8, LABELS, 4, options, result));
    if (expected != BP_OK) {
        CHECK(same_parameters(ce, before_ce, count_ce));
        if (result != NULL) {
            CHECK(memcmp(result, &untouched, sizeof untouched) == 0);
        }
    }
    CHECK_OK(bp_optimizer_free(optimizer));
    CHECK_OK(bp_net_free(mse));
    CHECK_OK(bp_net_free(ce));
}

static void test_bp_fit_options_size_too_small(void) {
    static const size_t sizes[TOO_SMALL_COUNT] = TOO_SMALL_SIZES(bp_fit_options);
    for (size_t i = 0; i < TOO_SMALL_COUNT; i++) {
        bp_fit_options options;
        CHECK_OK(bp_fit_options_default(&options));
        CHECK_EQ(options.size, sizeof options);
        options.epochs = 2;
        options.size = sizes[i];
        check_fit(BP_ERR_INVALID_ARGUMENT, &options, NULL);
    }
}

static void test_bp_fit_result_size_too_small(void) {
    static const size_t sizes[TOO_SMALL_COUNT] = TOO_SMALL_SIZES(bp_fit_result);
    bp_fit_options options;
    CHECK_OK(bp_fit_options_default(&options));
    options.epochs = 2;
    for (size_t i = 0; i < TOO_SMALL_COUNT; i++) {
        bp_fit_result result;
        memset(&result, 0x5A, sizeof result);
        result.size = sizes[i];
        check_fit(BP_ERR_INVALID_ARGUMENT, &options, &result);
    }
}

typedef struct newer_fit_options {
    bp_fit_options known;
    double unknown[4];
} newer_fit_options;

typedef struct newer_fit_result {
    bp_fit_result known;
    double unknown[4];
} newer_fit_result;

static void test_bp_fit_options_and_result_larger_sizes_are_accepted(void) {
    newer_fit_options options;
    newer_fit_result result;
    memset(&options, 0x7F, sizeof options);
    memset(&result, 0x5A, sizeof result);
    CHECK_OK(bp_fit_options_default(&options.known));
    options.known.size = sizeof options;
    options.known.epochs = 3;
    result.known.size = sizeof result;
    check_fit(BP_OK, &options.known, &result.known);
    CHECK_EQ(result.known.epochs_run, 3);
    CHECK_EQ(result.known.size, sizeof result); /* the caller's size stays */
    /* The tail this library does not know is left alone. */
    unsigned char pattern[sizeof result.unknown];
    memset(pattern, 0x5A, sizeof pattern);
    CHECK(memcmp(result.unknown, pattern, sizeof pattern) == 0);
}

/* ---- bp_epoch_report (filled in by the library, for the fit callback) ------------------ */

static int record_report_size(const bp_epoch_report *report, void *userdata) {
    *(size_t *)userdata = report->size;
    return 0;
}

static void test_bp_epoch_report_size_too_small(void) {
    /* The library writes this struct, so no caller size can be too small; instead, the report
     * says how large the library's struct is, and a callback reads only what both know. */
    size_t size = 0;
    bp_fit_options options;
    CHECK_OK(bp_fit_options_default(&options));
    options.epochs = 1;
    options.callback = record_report_size;
    options.userdata = &size;
    bp_net *net = new_net(BP_LOSS_MSE);
    bp_optimizer *optimizer = NULL;
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, NULL, &optimizer));
    CHECK_OK(bp_net_fit(net, optimizer, 4, INPUTS, 8, TARGETS, 4, &options, NULL));
    CHECK_EQ(size, sizeof(bp_epoch_report));
    CHECK_OK(bp_optimizer_free(optimizer));
    CHECK_OK(bp_net_free(net));
}

/* ---- bp_custom_op (bp_graph_custom) ----------------------------------------------------- */

static int identity_shape(void *userdata, const bp_tensor *inputs, size_t input_count,
                          size_t *out_shape, size_t *out_rank) {
    (void)userdata;
    (void)input_count;
    for (size_t i = 0; i < inputs[0].rank; i++) {
        out_shape[i] = inputs[0].shape[i];
    }
    *out_rank = inputs[0].rank;
    return 0;
}

static int identity_forward(void *userdata, const bp_tensor *inputs, size_t input_count,
                            const bp_tensor *output) {
    (void)userdata;
    (void)input_count;
    memcpy(output->data, inputs[0].data, output->count * sizeof(float));
    return 0;
}

static int identity_backward(void *userdata, const bp_tensor *inputs, size_t input_count,
                             const bp_tensor *output, const bp_tensor *output_grad,
                             const bp_tensor *input_grads) {
    (void)userdata;
    (void)inputs;
    (void)input_count;
    if (input_grads[0].data != NULL) {
        for (size_t i = 0; i < output->count; i++) {
            ((float *)input_grads[0].data)[i] += ((const float *)output_grad->data)[i];
        }
    }
    return 0;
}

static bp_custom_op identity_op(void) {
    bp_custom_op op;
    memset(&op, 0, sizeof op);
    op.size = sizeof op;
    op.name = "identity";
    op.shape = identity_shape;
    op.forward = identity_forward;
    op.backward = identity_backward;
    return op;
}

static void test_bp_custom_op_size_too_small(void) {
    static const size_t sizes[TOO_SMALL_COUNT] = TOO_SMALL_SIZES(bp_custom_op);
    static const size_t shape[] = {3};
    bp_graph *graph = NULL;
    bp_node x = 0, out = 0;
    size_t before = 0, after = 0;
    CHECK_OK(bp_graph_create(BP_FLOAT32, &graph));
    CHECK_OK(bp_graph_input(graph, shape, 1, &x));
    CHECK_OK(bp_graph_node_count(graph, &before));
    for (size_t i = 0; i < TOO_SMALL_COUNT; i++) {
        bp_custom_op op = identity_op();
        op.size = sizes[i];
        out = BP_NO_NODE;
        CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_custom(graph, &op, &x, 1, &out));
        CHECK_EQ(out, BP_NO_NODE);
    }
    CHECK_OK(bp_graph_node_count(graph, &after));
    CHECK_EQ(after, before);
    CHECK_OK(bp_graph_free(graph));
}

typedef struct newer_custom_op {
    bp_custom_op known;
    void *unknown[4];
} newer_custom_op;

static void test_bp_custom_op_larger_size_is_accepted(void) {
    static const size_t shape[] = {3};
    static const float values[3] = {1, 2, 3};
    newer_custom_op newer;
    memset(&newer, 0x7F, sizeof newer);
    newer.known = identity_op();
    newer.known.size = sizeof newer;
    bp_graph *graph = NULL;
    bp_node x = 0, y = 0, total = 0;
    float grad[3] = {0, 0, 0};
    CHECK_OK(bp_graph_create(BP_FLOAT32, &graph));
    CHECK_OK(bp_graph_input(graph, shape, 1, &x));
    CHECK_OK(bp_graph_set_value(graph, x, values, 3));
    CHECK_OK(bp_graph_custom(graph, &newer.known, &x, 1, &y));
    CHECK_OK(bp_graph_sum(graph, y, &total));
    CHECK_OK(bp_graph_forward(graph));
    CHECK_OK(bp_graph_backward(graph, total));
    CHECK_OK(bp_graph_grad(graph, x, grad, 3));
    CHECK_NEAR(grad[0] + grad[1] + grad[2], 3, 0);
    CHECK_OK(bp_graph_free(graph));
}

int main(void) {
    RUN(test_version_macros_agree_with_the_library);
    RUN(test_bp_optimizer_options_size_too_small);
    RUN(test_bp_optimizer_options_larger_size_is_accepted);
    RUN(test_bp_schedule_options_size_too_small);
    RUN(test_bp_fit_options_size_too_small);
    RUN(test_bp_fit_result_size_too_small);
    RUN(test_bp_fit_options_and_result_larger_sizes_are_accepted);
    RUN(test_bp_epoch_report_size_too_small);
    RUN(test_bp_custom_op_size_too_small);
    RUN(test_bp_custom_op_larger_size_is_accepted);
    return check_summary();
}
