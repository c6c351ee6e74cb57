/*
 * test_bad_input.c: every function in backprop.h, given bad input, returns the documented
 * status, leaves a message in bp_last_error(), changes nothing, and does not crash.
 *
 * "Changes nothing" is checked where it can be seen from outside: out-pointers keep the value
 * they had, the graph keeps its node count and stays usable, buffers the library would fill stay
 * as they were, and a network's weights and gradients are the same before and after.
 */
#include "check.h"

#include <stdint.h>

/* A node id that a failed call must not overwrite. */
#define UNTOUCHED_NODE ((bp_node)-77)

/* ---- helpers ---------------------------------------------------------------------------- */

static bp_graph *new_graph(bp_dtype dtype) {
    bp_graph *graph = NULL;
    CHECK_OK(bp_graph_create(dtype, &graph));
    return graph;
}

static size_t node_count(const bp_graph *graph) {
    size_t count = 0;
    CHECK_OK(bp_graph_node_count(graph, &count));
    return count;
}

static bp_node leaf(bp_graph *graph, int kind, const size_t *shape, size_t rank) {
    bp_node node = UNTOUCHED_NODE;
    if (kind == 0) {
        CHECK_OK(bp_graph_input(graph, shape, rank, &node));
    } else if (kind == 1) {
        CHECK_OK(bp_graph_parameter(graph, shape, rank, &node));
    } else {
        CHECK_OK(bp_graph_constant(graph, shape, rank, &node));
    }
    return node;
}

/* A small graph with one node of each kind that the tests below poke at. */
typedef struct fixture {
    bp_graph *graph;
    bp_node m23;     /* input [2, 3] */
    bp_node row3;    /* input [3] */
    bp_node c23;     /* constant [2, 3] */
    bp_node scalar;  /* input [] */
    bp_node p32;     /* parameter [3, 2] */
    bp_node sum_op;  /* m23 + row3, an op [2, 3] */
} fixture;

static fixture make_fixture(void) {
    static const size_t s23[] = {2, 3}, s3[] = {3}, s32[] = {3, 2};
    fixture f;
    f.graph = new_graph(BP_FLOAT32);
    f.m23 = leaf(f.graph, 0, s23, 2);
    f.row3 = leaf(f.graph, 0, s3, 1);
    f.c23 = leaf(f.graph, 2, s23, 2);
    f.scalar = leaf(f.graph, 0, NULL, 0);
    f.p32 = leaf(f.graph, 1, s32, 2);
    f.sum_op = UNTOUCHED_NODE;
    CHECK_OK(bp_graph_add(f.graph, f.m23, f.row3, &f.sum_op));
    return f;
}

/* The graph still builds, runs and differentiates correctly: (m23 + row3) summed. */
static void check_graph_still_works(const fixture *f) {
    static const float m[6] = {1, 2, 3, 4, 5, 6}, r[3] = {10, 20, 30};
    bp_node total = UNTOUCHED_NODE;
    float value = 0, grad[3] = {0, 0, 0};
    CHECK_OK(bp_graph_set_value(f->graph, f->m23, m, 6));
    CHECK_OK(bp_graph_set_value(f->graph, f->row3, r, 3));
    CHECK_OK(bp_graph_sum(f->graph, f->sum_op, &total));
    CHECK_OK(bp_graph_forward(f->graph));
    CHECK_OK(bp_graph_value(f->graph, total, &value, 1));
    CHECK_NEAR(value, 21 + 120, 1e-4);
    CHECK_OK(bp_graph_zero_grad(f->graph));
    CHECK_OK(bp_graph_backward(f->graph, total));
    CHECK_OK(bp_graph_grad(f->graph, f->row3, grad, 3));
    CHECK_NEAR(grad[0], 2, 0);
    CHECK_NEAR(grad[2], 2, 0);
}

/* A 2-3-2 network (tanh hidden layer) with the given loss. */
static bp_net *new_net(bp_loss loss) {
    bp_net *net = NULL;
    CHECK_OK(bp_net_create(2, 7, &net));
    CHECK_OK(bp_net_add_dense(net, 3, BP_ACTIVATION_TANH));
    CHECK_OK(bp_net_add_dense(net, 2, BP_ACTIVATION_NONE));
    CHECK_OK(bp_net_set_loss(net, loss));
    return net;
}

enum { NET_PARAMETERS = 2 * 3 + 3 + 3 * 2 + 2 };

/* Copies every parameter (grads = 0) or every parameter gradient (grads = 1) of the network,
 * layer by layer, weight then bias, into out[NET_PARAMETERS]. Returns the number copied. */
static size_t read_parameters(bp_net *net, int grads, float *out) {
    bp_graph *graph = NULL;
    size_t layers = 0, copied = 0;
    CHECK_OK(bp_net_graph(net, &graph));
    CHECK_OK(bp_net_layer_count(net, &layers));
    for (size_t layer = 0; layer < layers; layer++) {
        bp_node nodes[2] = {UNTOUCHED_NODE, UNTOUCHED_NODE};
        CHECK_OK(bp_net_layer_nodes(net, layer, &nodes[0], &nodes[1]));
        for (int i = 0; i < 2; i++) {
            size_t size = 0;
            CHECK_OK(bp_graph_size(graph, nodes[i], &size));
            if (copied + size > NET_PARAMETERS) {
                CHECK(copied + size <= NET_PARAMETERS);
                return copied;
            }
            if (grads) {
                CHECK_OK(bp_graph_grad(graph, nodes[i], out + copied, size));
            } else {
                CHECK_OK(bp_graph_value(graph, nodes[i], out + copied, size));
            }
            copied += size;
        }
    }
    return copied;
}

static int same_floats(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof *a) == 0;
}

static const float XOR_INPUTS[8] = {0, 0, 0, 1, 1, 0, 1, 1};
static const float XOR_TARGETS[8] = {1, 0, 0, 1, 0, 1, 1, 0};
static const int32_t XOR_LABELS[4] = {0, 1, 1, 0};

/* ---- status strings, version, last error ------------------------------------------------ */

static void test_last_error_is_empty_before_any_failure(void) {
    const char *message = bp_last_error();
    CHECK(message != NULL);
    if (message != NULL) {
        CHECK(strcmp(message, "") == 0);
    }
}

static void test_version_matches_header(void) {
    const char *version = bp_version();
    CHECK(version != NULL);
    if (version != NULL) {
        CHECK(strcmp(version, BP_VERSION_STRING) == 0);
    }
    CHECK_EQ(bp_version_number(), BP_VERSION_NUMBER);
}

static void test_status_strings_name_every_status(void) {
    static const struct {
        bp_status status;
        const char *name;
    } statuses[] = {
        {BP_OK, "BP_OK"},
        {BP_ERR_INVALID_ARGUMENT, "BP_ERR_INVALID_ARGUMENT"},
        {BP_ERR_INVALID_HANDLE, "BP_ERR_INVALID_HANDLE"},
        {BP_ERR_SHAPE, "BP_ERR_SHAPE"},
        {BP_ERR_STATE, "BP_ERR_STATE"},
        {BP_ERR_BUSY, "BP_ERR_BUSY"},
        {BP_ERR_OUT_OF_MEMORY, "BP_ERR_OUT_OF_MEMORY"},
        {BP_ERR_NONFINITE, "BP_ERR_NONFINITE"},
        {BP_ERR_IO, "BP_ERR_IO"},
        {BP_ERR_FORMAT, "BP_ERR_FORMAT"},
        {BP_ERR_INTERNAL, "BP_ERR_INTERNAL"},
    };
    const size_t n = sizeof statuses / sizeof statuses[0];
    for (size_t i = 0; i < n; i++) {
        const char *text = bp_status_string(statuses[i].status);
        if (!CHECK(text != NULL)) {
            continue;
        }
        /* Each string starts with the status's own name, then (optionally) a description. */
        size_t len = strlen(statuses[i].name);
        CHECK(strncmp(text, statuses[i].name, len) == 0);
        CHECK(text[len] == '\0' || text[len] == ':');
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(text, bp_status_string(statuses[j].status)) != 0);
        }
    }
    static const int unknown[] = {11, 99, -1, 1000000};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *text = bp_status_string((bp_status)unknown[i]);
        if (CHECK(text != NULL)) {
            CHECK(strcmp(text, "unknown status") == 0);
        }
    }
}

/* ---- graph creation and handles --------------------------------------------------------- */

static void test_graph_create_rejects_null_out_and_unknown_dtype(void) {
    bp_graph *graph = NULL;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_create(BP_FLOAT32, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_create((bp_dtype)7, &graph));
    CHECK(graph == NULL);
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_create((bp_dtype)-1, &graph));
    CHECK(graph == NULL);
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_create((bp_dtype)2, &graph));
    CHECK(graph == NULL);
}

/* A custom op for the tests: the identity on its first input. `userdata`, when not NULL, points
 * to an int that says which callback fails: 1 shape, 2 forward, 3 backward. */
static int identity_shape(void *userdata, const bp_tensor *inputs, size_t input_count,
                          size_t *out_shape, size_t *out_rank) {
    if (userdata != NULL && *(const int *)userdata == 1) {
        return 1;
    }
    if (input_count == 0) {
        *out_rank = 0;
        return 0;
    }
    for (size_t i = 0; i < inputs[0].rank; i++) {
        out_shape[i] = inputs[0].shape[i];
    }
    *out_rank = inputs[0].rank;
    return 0;
}

static int identity_forward(void *userdata, const bp_tensor *inputs, size_t input_count,
                            const bp_tensor *output) {
    if (userdata != NULL && *(const int *)userdata == 2) {
        return 1;
    }
    for (size_t i = 0; i < output->count; i++) {
        ((float *)output->data)[i] = input_count > 0 ? ((const float *)inputs[0].data)[i] : 0;
    }
    return 0;
}

static int identity_backward(void *userdata, const bp_tensor *inputs, size_t input_count,
                             const bp_tensor *output, const bp_tensor *output_grad,
                             const bp_tensor *input_grads) {
    (void)inputs;
    if (userdata != NULL && *(const int *)userdata == 3) {
        return 1;
    }
    if (input_count > 0 && input_grads[0].data != NULL) {
        for (size_t i = 0; i < output->count; i++) {
            ((float *)input_grads[0].data)[i] += ((const float *)output_grad->data)[i];
        }
    }
    return 0;
}

static bp_custom_op identity_op(void *userdata) {
    bp_custom_op op;
    memset(&op, 0, sizeof op);
    op.size = sizeof op;
    op.name = "identity";
    op.shape = identity_shape;
    op.forward = identity_forward;
    op.backward = identity_backward;
    op.userdata = userdata;
    return op;
}

/* Calls every op constructor added with the full op set, with node `bad` in each input position
 * (and `other` in the rest), and checks that each returns `expected` and leaves *out alone. For
 * a bad graph handle, pass two ids that would be fine in a real graph. */
static void check_new_graph_functions_reject(bp_graph *g, bp_node bad, bp_node other,
                                             bp_status expected, bp_node *out) {
    const bp_node first[2] = {bad, other}, second[2] = {other, bad};
    static const size_t shape2[] = {2}, perm2[] = {1, 0};
    static const int32_t axes0[] = {0};
    bp_custom_op op = identity_op(NULL);
    bp_node before = *out;

    CHECK_STATUS(expected, bp_graph_pow(g, bad, other, out));
    CHECK_STATUS(expected, bp_graph_pow(g, other, bad, out));
    CHECK_STATUS(expected, bp_graph_compare(g, bad, other, BP_CMP_LT, out));
    CHECK_STATUS(expected, bp_graph_compare(g, other, bad, BP_CMP_EQ, out));
    CHECK_STATUS(expected, bp_graph_where(g, bad, other, other, out));
    CHECK_STATUS(expected, bp_graph_where(g, other, bad, other, out));
    CHECK_STATUS(expected, bp_graph_where(g, other, other, bad, out));
    CHECK_STATUS(expected, bp_graph_abs(g, bad, out));
    CHECK_STATUS(expected, bp_graph_sqrt(g, bad, out));
    CHECK_STATUS(expected, bp_graph_square(g, bad, out));
    CHECK_STATUS(expected, bp_graph_reciprocal(g, bad, out));
    CHECK_STATUS(expected, bp_graph_silu(g, bad, out));
    CHECK_STATUS(expected, bp_graph_softplus(g, bad, out));
    CHECK_STATUS(expected, bp_graph_detach(g, bad, out));
    CHECK_STATUS(expected, bp_graph_pow_scalar(g, bad, 2.0, out));
    CHECK_STATUS(expected, bp_graph_leaky_relu(g, bad, 0.01, out));
    CHECK_STATUS(expected, bp_graph_elu(g, bad, 1.0, out));
    CHECK_STATUS(expected, bp_graph_gelu(g, bad, BP_GELU_EXACT, out));
    CHECK_STATUS(expected, bp_graph_matmul_transposed(g, bad, other, 0, 1, out));
    CHECK_STATUS(expected, bp_graph_matmul_transposed(g, other, bad, 1, 0, out));
    CHECK_STATUS(expected, bp_graph_reduce(g, bad, BP_REDUCE_MAX, axes0, 1, 0, out));
    CHECK_STATUS(expected, bp_graph_reshape(g, bad, shape2, 1, out));
    CHECK_STATUS(expected, bp_graph_permute(g, bad, perm2, 2, out));
    CHECK_STATUS(expected, bp_graph_transpose(g, bad, out));
    CHECK_STATUS(expected, bp_graph_concat(g, first, 2, 0, out));
    CHECK_STATUS(expected, bp_graph_concat(g, second, 2, 0, out));
    CHECK_STATUS(expected, bp_graph_slice(g, bad, 0, 0, 1, out));
    CHECK_STATUS(expected, bp_graph_gather(g, bad, other, out));
    CHECK_STATUS(expected, bp_graph_gather(g, other, bad, out));
    CHECK_STATUS(expected, bp_graph_softmax(g, bad, -1, out));
    CHECK_STATUS(expected, bp_graph_log_softmax(g, bad, -1, out));
    CHECK_STATUS(expected, bp_graph_layer_norm(g, bad, 1, BP_NO_NODE, BP_NO_NODE, 1e-5, out));
    if (bad != BP_NO_NODE) { /* which means "no weight" there */
        /* x, weight and bias all [2, 3] in a real graph: normalized over both axes. */
        CHECK_STATUS(expected, bp_graph_layer_norm(g, other, 2, bad, other, 1e-5, out));
        CHECK_STATUS(expected, bp_graph_layer_norm(g, other, 2, other, bad, 1e-5, out));
    }
    CHECK_STATUS(expected, bp_graph_dropout(g, bad, 0.5, out));
    CHECK_STATUS(expected, bp_graph_l1_loss(g, bad, other, BP_REDUCTION_MEAN, out));
    CHECK_STATUS(expected, bp_graph_l1_loss(g, other, bad, BP_REDUCTION_MEAN, out));
    CHECK_STATUS(expected, bp_graph_huber_loss(g, bad, other, 1.0, BP_REDUCTION_MEAN, out));
    CHECK_STATUS(expected, bp_graph_huber_loss(g, other, bad, 1.0, BP_REDUCTION_MEAN, out));
    CHECK_STATUS(expected, bp_graph_bce_loss(g, bad, other, BP_REDUCTION_MEAN, out));
    CHECK_STATUS(expected, bp_graph_bce_loss(g, other, bad, BP_REDUCTION_MEAN, out));
    CHECK_STATUS(expected, bp_graph_bce_with_logits_loss(g, bad, other, BP_REDUCTION_MEAN, out));
    CHECK_STATUS(expected, bp_graph_bce_with_logits_loss(g, other, bad, BP_REDUCTION_MEAN, out));
    CHECK_STATUS(expected, bp_graph_nll_loss(g, bad, other, BP_REDUCTION_MEAN, out));
    CHECK_STATUS(expected, bp_graph_nll_loss(g, other, bad, BP_REDUCTION_MEAN, out));
    CHECK_STATUS(expected, bp_graph_custom(g, &op, first, 2, out));
    CHECK_STATUS(expected, bp_graph_custom(g, &op, second, 2, out));
    CHECK_EQ(*out, before);
}

/* Calls every function that takes a graph with `bad` in its place: each one must report
 * BP_ERR_INVALID_HANDLE and leave its out-pointers alone. Node ids 0 and 1 would be valid in a
 * real graph of two nodes, so only the handle is wrong. */
static void check_graph_functions_reject(bp_graph *bad) {
    static const size_t shape2[] = {2};
    static const float values[2] = {1, 2};
    static const double values64[2] = {1, 2};
    bp_node out = UNTOUCHED_NODE;
    bp_dtype dtype = (bp_dtype)42;
    float buffer[2] = {-9, -9};
    double buffer64[2] = {-9, -9};
    size_t shape[BP_MAX_RANK] = {0}, rank = 99, size = 99;

    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_dtype(bad, &dtype));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_input(bad, shape2, 1, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_parameter(bad, shape2, 1, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_constant(bad, shape2, 1, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_add(bad, 0, 1, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_sub(bad, 0, 1, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_mul(bad, 0, 1, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_div(bad, 0, 1, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_maximum(bad, 0, 1, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_minimum(bad, 0, 1, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_neg(bad, 0, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_exp(bad, 0, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_log(bad, 0, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_relu(bad, 0, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_sigmoid(bad, 0, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_tanh(bad, 0, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_matmul(bad, 0, 1, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_sum(bad, 0, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_mean(bad, 0, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_graph_mse_loss(bad, 0, 1, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_graph_cross_entropy(bad, 0, 1, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_set_value(bad, 0, values, 2));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_set_value_f64(bad, 0, values64, 2));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_forward(bad));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_backward(bad, 0));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_zero_grad(bad));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_value(bad, 0, buffer, 2));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_value_f64(bad, 0, buffer64, 2));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_grad(bad, 0, buffer, 2));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_grad_f64(bad, 0, buffer64, 2));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_shape(bad, 0, shape, BP_MAX_RANK, &rank));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_size(bad, 0, &size));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_node_count(bad, &size));
    int passed = 7;
    double max_error = -9;
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_graph_check_gradients(bad, 0, 1e-6, 1e-5, 1e-3, &passed, &max_error));
    check_new_graph_functions_reject(bad, 0, 1, BP_ERR_INVALID_HANDLE, &out);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_set_training(bad, 0));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_seed(bad, 5));

    CHECK_EQ(passed, 7);
    CHECK(max_error == -9);
    CHECK_EQ(out, UNTOUCHED_NODE);
    CHECK_EQ(dtype, 42);
    CHECK(buffer[0] == -9 && buffer[1] == -9);
    CHECK(buffer64[0] == -9 && buffer64[1] == -9);
    CHECK_EQ(rank, 99);
    CHECK_EQ(size, 99);
}

static void test_null_graph_is_rejected_by_every_graph_function(void) {
    check_graph_functions_reject(NULL);
    /* ... except free, where NULL is a no-op. */
    CHECK_OK(bp_graph_free(NULL));
}

static void test_freed_graph_is_rejected(void) {
    static const size_t shape2[] = {2};
    bp_graph *graph = new_graph(BP_FLOAT32);
    bp_node a = UNTOUCHED_NODE, b = UNTOUCHED_NODE;
    CHECK_OK(bp_graph_input(graph, shape2, 1, &a));
    CHECK_OK(bp_graph_input(graph, shape2, 1, &b));
    CHECK_OK(bp_graph_free(graph));

    /* No other handle is created in between, so the address cannot have been reused. */
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_forward(graph));
    check_graph_functions_reject(graph);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_free(graph)); /* double free */
}

static void test_foreign_pointer_is_not_a_graph(void) {
    /* Plausible-looking memory: zeros, then a pattern. Neither may be dereferenced as a graph. */
    uint64_t local[64];
    memset(local, 0, sizeof local);
    check_graph_functions_reject((bp_graph *)(void *)local);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_free((bp_graph *)(void *)local));
    memset(local, 0xA5, sizeof local);
    check_graph_functions_reject((bp_graph *)(void *)local);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_free((bp_graph *)(void *)local));

    int scalar = 0;
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_forward((bp_graph *)(void *)&scalar));
}

static void test_net_handle_is_not_a_graph(void) {
    bp_net *net = new_net(BP_LOSS_MSE);
    check_graph_functions_reject((bp_graph *)(void *)net);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_free((bp_graph *)(void *)net));

    /* The network survived all of that. */
    float outputs[8];
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_OK(bp_net_free(net));
}

static void test_graph_owned_by_net_cannot_be_freed(void) {
    bp_net *net = new_net(BP_LOSS_MSE);
    bp_graph *graph = NULL;
    CHECK_OK(bp_net_graph(net, &graph));
    CHECK(graph != NULL);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_free(graph));

    /* Both still work. */
    size_t count = 0;
    CHECK_OK(bp_graph_node_count(graph, &count));
    CHECK(count > 0);
    float loss = -1;
    CHECK_OK(bp_net_train_step(net, 4, XOR_INPUTS, 8, XOR_TARGETS, 8, 0.1f, &loss));
    CHECK_OK(bp_net_free(net));
}

/* ---- graph arguments -------------------------------------------------------------------- */

/* Every op added with the full op set, given good inputs but out == NULL. */
static void check_new_ops_reject_null_out(const fixture *f) {
    bp_graph *g = f->graph;
    const bp_node pair[2] = {f->m23, f->c23};
    static const size_t s6[] = {6}, perm[] = {1, 0};
    static const int32_t axes[] = {1};
    bp_custom_op op = identity_op(NULL);
    const bp_status bad = BP_ERR_INVALID_ARGUMENT;

    CHECK_STATUS(bad, bp_graph_pow(g, f->m23, f->c23, NULL));
    CHECK_STATUS(bad, bp_graph_compare(g, f->m23, f->c23, BP_CMP_GE, NULL));
    CHECK_STATUS(bad, bp_graph_where(g, f->c23, f->m23, f->c23, NULL));
    CHECK_STATUS(bad, bp_graph_abs(g, f->m23, NULL));
    CHECK_STATUS(bad, bp_graph_sqrt(g, f->m23, NULL));
    CHECK_STATUS(bad, bp_graph_square(g, f->m23, NULL));
    CHECK_STATUS(bad, bp_graph_reciprocal(g, f->m23, NULL));
    CHECK_STATUS(bad, bp_graph_silu(g, f->m23, NULL));
    CHECK_STATUS(bad, bp_graph_softplus(g, f->m23, NULL));
    CHECK_STATUS(bad, bp_graph_detach(g, f->m23, NULL));
    CHECK_STATUS(bad, bp_graph_pow_scalar(g, f->m23, 3.0, NULL));
    CHECK_STATUS(bad, bp_graph_leaky_relu(g, f->m23, 0.1, NULL));
    CHECK_STATUS(bad, bp_graph_elu(g, f->m23, 1.0, NULL));
    CHECK_STATUS(bad, bp_graph_gelu(g, f->m23, BP_GELU_TANH, NULL));
    CHECK_STATUS(bad, bp_graph_matmul_transposed(g, f->m23, f->c23, 0, 1, NULL));
    CHECK_STATUS(bad, bp_graph_reduce(g, f->m23, BP_REDUCE_SUM, axes, 1, 1, NULL));
    CHECK_STATUS(bad, bp_graph_reshape(g, f->m23, s6, 1, NULL));
    CHECK_STATUS(bad, bp_graph_permute(g, f->m23, perm, 2, NULL));
    CHECK_STATUS(bad, bp_graph_transpose(g, f->m23, NULL));
    CHECK_STATUS(bad, bp_graph_concat(g, pair, 2, 0, NULL));
    CHECK_STATUS(bad, bp_graph_slice(g, f->m23, 1, 0, 2, NULL));
    CHECK_STATUS(bad, bp_graph_gather(g, f->m23, f->row3, NULL));
    CHECK_STATUS(bad, bp_graph_softmax(g, f->m23, 1, NULL));
    CHECK_STATUS(bad, bp_graph_log_softmax(g, f->m23, 1, NULL));
    CHECK_STATUS(bad, bp_graph_layer_norm(g, f->m23, 1, BP_NO_NODE, BP_NO_NODE, 1e-5, NULL));
    CHECK_STATUS(bad, bp_graph_dropout(g, f->m23, 0.5, NULL));
    CHECK_STATUS(bad, bp_graph_l1_loss(g, f->m23, f->c23, BP_REDUCTION_SUM, NULL));
    CHECK_STATUS(bad, bp_graph_huber_loss(g, f->m23, f->c23, 1.0, BP_REDUCTION_SUM, NULL));
    CHECK_STATUS(bad, bp_graph_bce_loss(g, f->m23, f->c23, BP_REDUCTION_SUM, NULL));
    CHECK_STATUS(bad, bp_graph_bce_with_logits_loss(g, f->m23, f->c23, BP_REDUCTION_SUM, NULL));
    CHECK_STATUS(bad, bp_graph_nll_loss(g, f->m23, f->row3, BP_REDUCTION_SUM, NULL));
    CHECK_STATUS(bad, bp_graph_custom(g, &op, pair, 2, NULL));
}

static void test_null_out_pointers_are_rejected(void) {
    fixture f = make_fixture();
    bp_graph *g = f.graph;
    static const size_t s2[] = {2};
    size_t before = node_count(g);
    size_t rank = 99;

    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_dtype(g, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_input(g, s2, 1, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_parameter(g, s2, 1, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_constant(g, s2, 1, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_add(g, f.m23, f.c23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_sub(g, f.m23, f.c23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_mul(g, f.m23, f.c23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_div(g, f.m23, f.c23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_maximum(g, f.m23, f.c23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_minimum(g, f.m23, f.c23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_neg(g, f.m23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_exp(g, f.m23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_log(g, f.m23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_relu(g, f.m23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_sigmoid(g, f.m23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_tanh(g, f.m23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_matmul(g, f.m23, f.p32, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_sum(g, f.m23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_mean(g, f.m23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT,
                 bp_graph_mse_loss(g, f.m23, f.c23, BP_REDUCTION_MEAN, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT,
                 bp_graph_cross_entropy(g, f.m23, f.row3, BP_REDUCTION_MEAN, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_set_value(g, f.m23, NULL, 6));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_set_value_f64(g, f.m23, NULL, 6));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_value(g, f.m23, NULL, 6));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_value_f64(g, f.m23, NULL, 6));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_grad(g, f.m23, NULL, 6));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_grad_f64(g, f.m23, NULL, 6));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_shape(g, f.m23, NULL, 0, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_size(g, f.m23, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_node_count(g, NULL));
    check_new_ops_reject_null_out(&f);
    /* A NULL shape buffer is allowed only with capacity 0 (to ask for the rank). */
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_shape(g, f.m23, NULL, 2, &rank));
    CHECK_EQ(rank, 99);

    CHECK_EQ(node_count(g), before);
    check_graph_still_works(&f);
    CHECK_OK(bp_graph_free(g));
}

static void test_leaf_shapes_are_validated(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    bp_node out = UNTOUCHED_NODE;
    size_t shape[BP_MAX_RANK + 1];
    for (size_t i = 0; i <= BP_MAX_RANK; i++) {
        shape[i] = 1;
    }
    static const size_t zero_dim[] = {2, 0, 3};
    static const size_t overflow[] = {SIZE_MAX / 2, 4};
    static const size_t overflow3[] = {(size_t)1 << 22, (size_t)1 << 22, (size_t)1 << 22};
    /* 2^50 elements: representable, but no machine has the memory. */
    static const size_t enormous[] = {(size_t)1 << 25, (size_t)1 << 25};

    typedef bp_status (*leaf_fn)(bp_graph *, const size_t *, size_t, bp_node *);
    static const leaf_fn makers[] = {bp_graph_input, bp_graph_parameter, bp_graph_constant};
    for (size_t k = 0; k < 3; k++) {
        CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, makers[k](g, NULL, 2, &out));
        CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, makers[k](g, shape, BP_MAX_RANK + 1, &out));
        CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, makers[k](g, shape, SIZE_MAX, &out));
        CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, makers[k](g, zero_dim, 3, &out));
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, makers[k](g, overflow, 2, &out));
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, makers[k](g, overflow3, 3, &out));
        CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, makers[k](g, enormous, 2, &out));
        CHECK_EQ(out, UNTOUCHED_NODE);
        CHECK_EQ(node_count(g), 0);
    }

    /* The largest rank is fine. */
    CHECK_OK(bp_graph_input(g, shape, BP_MAX_RANK, &out));
    CHECK_EQ(node_count(g), 1);
    CHECK_OK(bp_graph_free(g));
}

/* Calls every function that takes a node id with `id` in each node position. */
static void check_node_id_rejected(bp_graph *g, bp_node valid, bp_node id) {
    bp_node out = UNTOUCHED_NODE;
    float buffer[6] = {-9, -9, -9, -9, -9, -9};
    double buffer64[6] = {-9, -9, -9, -9, -9, -9};
    static const float values[6] = {1, 2, 3, 4, 5, 6};
    static const double values64[6] = {1, 2, 3, 4, 5, 6};
    size_t shape[BP_MAX_RANK], rank = 99, size = 99;

    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_add(g, id, valid, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_add(g, valid, id, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_sub(g, id, valid, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_mul(g, valid, id, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_div(g, id, valid, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_maximum(g, valid, id, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_minimum(g, id, valid, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_neg(g, id, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_exp(g, id, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_log(g, id, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_relu(g, id, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_sigmoid(g, id, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_tanh(g, id, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_matmul(g, id, valid, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_matmul(g, valid, id, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_sum(g, id, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_mean(g, id, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_mse_loss(g, id, valid, BP_REDUCTION_SUM, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_mse_loss(g, valid, id, BP_REDUCTION_SUM, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_graph_cross_entropy(g, id, valid, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_graph_cross_entropy(g, valid, id, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_set_value(g, id, values, 6));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_set_value_f64(g, id, values64, 6));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_backward(g, id));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_value(g, id, buffer, 6));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_value_f64(g, id, buffer64, 6));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_grad(g, id, buffer, 6));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_grad_f64(g, id, buffer64, 6));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_shape(g, id, shape, BP_MAX_RANK, &rank));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_size(g, id, &size));
    int passed = 7;
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_graph_check_gradients(g, id, 1e-6, 1e-5, 1e-3, &passed, NULL));
    check_new_graph_functions_reject(g, id, valid, BP_ERR_INVALID_HANDLE, &out);

    CHECK_EQ(passed, 7);
    CHECK_EQ(out, UNTOUCHED_NODE);
    CHECK(buffer[0] == -9 && buffer[5] == -9);
    CHECK(buffer64[0] == -9 && buffer64[5] == -9);
    CHECK_EQ(rank, 99);
    CHECK_EQ(size, 99);
}

static void test_node_ids_from_nowhere_are_invalid_handles(void) {
    fixture f = make_fixture();
    size_t before = node_count(f.graph);
    CHECK_OK(bp_graph_forward(f.graph));

    check_node_id_rejected(f.graph, f.m23, 12345);
    check_node_id_rejected(f.graph, f.m23, -1);
    check_node_id_rejected(f.graph, f.m23, INT32_MIN);
    check_node_id_rejected(f.graph, f.m23, INT32_MAX);
    check_node_id_rejected(f.graph, f.m23, (bp_node)before); /* one past the last node */

    CHECK_EQ(node_count(f.graph), before);
    check_graph_still_works(&f);
    CHECK_OK(bp_graph_free(f.graph));
}

static void test_shape_mismatch_at_node_creation_leaves_graph_usable(void) {
    fixture f = make_fixture();
    bp_graph *g = f.graph;
    static const size_t s3[] = {3}, s4[] = {4}, s32[] = {3, 2}, s223[] = {2, 2, 3};
    static const size_t s21[] = {2, 1}, s22[] = {2, 2}, s323[] = {3, 3, 2};
    bp_node v4 = leaf(g, 0, s4, 1);
    bp_node m32 = leaf(g, 0, s32, 2);
    bp_node t223 = leaf(g, 0, s223, 3);
    bp_node t323 = leaf(g, 0, s323, 3);
    bp_node labels3 = leaf(g, 2, s3, 1);
    bp_node labels21 = leaf(g, 2, s21, 2);
    bp_node m22 = leaf(g, 2, s22, 2);
    bp_node out = UNTOUCHED_NODE;
    size_t before = node_count(g);

    /* [2,3] with [4]: the trailing dimensions 3 and 4 do not broadcast. */
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_add(g, f.m23, v4, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_sub(g, v4, f.m23, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_mul(g, f.m23, v4, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_div(g, f.m23, v4, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_maximum(g, f.m23, v4, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_minimum(g, f.m23, v4, &out));
    /* [2,3] with [3,2]: neither dimension pair matches. */
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_add(g, f.m23, m32, &out));
    /* matmul: inner dimensions differ, an operand has rank below 2, or batch axes differ. */
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_matmul(g, f.m23, f.m23, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_matmul(g, f.row3, m32, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_matmul(g, f.m23, f.row3, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_matmul(g, t223, t323, &out)); /* batch 2 vs 3 */
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_matmul(g, t223, f.m23, &out)); /* inner 3 vs 2 */
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_matmul(g, f.scalar, f.scalar, &out));
    /* mse_loss wants the same shape, even where broadcasting would work. */
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_mse_loss(g, f.m23, m32, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_mse_loss(g, f.m23, f.row3, BP_REDUCTION_MEAN, &out));
    /* cross_entropy wants logits [batch, classes] and labels [batch] or [batch, classes]. */
    CHECK_STATUS(BP_ERR_SHAPE,
                 bp_graph_cross_entropy(g, f.row3, labels3, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_SHAPE,
                 bp_graph_cross_entropy(g, f.m23, labels3, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_SHAPE,
                 bp_graph_cross_entropy(g, f.m23, labels21, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_cross_entropy(g, f.m23, m22, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_SHAPE,
                 bp_graph_cross_entropy(g, t223, labels21, BP_REDUCTION_MEAN, &out));

    CHECK_EQ(out, UNTOUCHED_NODE);
    CHECK_EQ(node_count(g), before);
    check_graph_still_works(&f);
    CHECK_OK(bp_graph_free(g));
}

static void test_unknown_reductions_are_rejected(void) {
    fixture f = make_fixture();
    static const size_t s2[] = {2};
    bp_node labels = leaf(f.graph, 2, s2, 1);
    bp_node out = UNTOUCHED_NODE;
    size_t before = node_count(f.graph);

    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT,
                 bp_graph_mse_loss(f.graph, f.m23, f.c23, (bp_reduction)9, &out));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT,
                 bp_graph_mse_loss(f.graph, f.m23, f.c23, (bp_reduction)-1, &out));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT,
                 bp_graph_cross_entropy(f.graph, f.m23, labels, (bp_reduction)3, &out));
    CHECK_EQ(out, UNTOUCHED_NODE);
    CHECK_EQ(node_count(f.graph), before);
    check_graph_still_works(&f);
    CHECK_OK(bp_graph_free(f.graph));
}

static void test_set_value_rejects_bad_buffers(void) {
    fixture f = make_fixture();
    bp_graph *g = f.graph;
    static const float good[6] = {1, 2, 3, 4, 5, 6};
    static const float other[7] = {9, 9, 9, 9, 9, 9, 9};
    static const double other64[7] = {9, 9, 9, 9, 9, 9, 9};
    float now[6] = {0};
    CHECK_OK(bp_graph_set_value(g, f.m23, good, 6));

    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_set_value(g, f.m23, other, 5));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_set_value(g, f.m23, other, 7));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_set_value(g, f.m23, other, 0));
    /* A count above SIZE_MAX / 2 is a size no memory holds: out of memory, as every such size. */
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_graph_set_value(g, f.m23, other, SIZE_MAX));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_set_value_f64(g, f.m23, other64, 5));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_set_value_f64(g, f.m23, other64, 7));
    /* Op nodes are computed, not set. */
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_set_value(g, f.sum_op, other, 6));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_set_value_f64(g, f.sum_op, other64, 6));

    CHECK_OK(bp_graph_value(g, f.m23, now, 6));
    CHECK(same_floats(now, good, 6));
    CHECK_OK(bp_graph_free(g));
}

static void test_value_and_grad_reject_bad_buffers(void) {
    fixture f = make_fixture();
    bp_graph *g = f.graph;
    float buffer[8];
    double buffer64[8];
    for (int i = 0; i < 8; i++) {
        buffer[i] = -9;
        buffer64[i] = -9;
    }
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_value(g, f.m23, buffer, 5));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_value(g, f.m23, buffer, 7));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_value(g, f.m23, buffer, 0));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_value_f64(g, f.m23, buffer64, 7));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_grad(g, f.m23, buffer, 5));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_grad_f64(g, f.m23, buffer64, 7));
    /* Constants have no gradient. */
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_grad(g, f.c23, buffer, 6));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_grad_f64(g, f.c23, buffer64, 6));
    /* Op values exist only after a forward pass. */
    CHECK_STATUS(BP_ERR_STATE, bp_graph_value(g, f.sum_op, buffer, 6));
    CHECK_STATUS(BP_ERR_STATE, bp_graph_value_f64(g, f.sum_op, buffer64, 6));

    for (int i = 0; i < 8; i++) {
        CHECK(buffer[i] == -9 && buffer64[i] == -9);
    }
    CHECK_OK(bp_graph_free(g));
}

static void test_shape_query_rejects_small_capacity(void) {
    fixture f = make_fixture();
    size_t shape[BP_MAX_RANK] = {77, 77, 77}, rank = 99;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_shape(f.graph, f.m23, shape, 1, &rank));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_shape(f.graph, f.m23, shape, 2, NULL));
    CHECK_EQ(rank, 99);
    CHECK_EQ(shape[0], 77);
    /* Capacity 0 with no buffer asks for the rank only. */
    CHECK_OK(bp_graph_shape(f.graph, f.m23, NULL, 0, &rank));
    CHECK_EQ(rank, 2);
    CHECK_OK(bp_graph_free(f.graph));
}

static void test_backward_from_non_scalar_is_a_shape_error(void) {
    fixture f = make_fixture();
    float grad[6] = {-9, -9, -9, -9, -9, -9};
    CHECK_OK(bp_graph_forward(f.graph));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_backward(f.graph, f.sum_op));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_backward(f.graph, f.m23));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_backward(f.graph, f.row3));
    /* Nothing was accumulated. */
    CHECK_OK(bp_graph_grad(f.graph, f.m23, grad, 6));
    for (int i = 0; i < 6; i++) {
        CHECK(grad[i] == 0);
    }
    check_graph_still_works(&f);
    CHECK_OK(bp_graph_free(f.graph));
}

static void test_backward_needs_a_fresh_forward(void) {
    fixture f = make_fixture();
    bp_graph *g = f.graph;
    static const float values[6] = {1, 2, 3, 4, 5, 6};
    bp_node total = UNTOUCHED_NODE, extra = UNTOUCHED_NODE;
    CHECK_OK(bp_graph_sum(g, f.sum_op, &total));

    /* Never ran forward. */
    CHECK_STATUS(BP_ERR_STATE, bp_graph_backward(g, total));

    /* A leaf changed since the forward. */
    CHECK_OK(bp_graph_forward(g));
    CHECK_OK(bp_graph_set_value(g, f.m23, values, 6));
    CHECK_STATUS(BP_ERR_STATE, bp_graph_backward(g, total));

    /* The graph changed since the forward. */
    CHECK_OK(bp_graph_forward(g));
    CHECK_OK(bp_graph_neg(g, f.scalar, &extra));
    CHECK_STATUS(BP_ERR_STATE, bp_graph_backward(g, total));

    /* Gradients were never touched by the failed calls. */
    float grad[3] = {-9, -9, -9};
    CHECK_OK(bp_graph_grad(g, f.row3, grad, 3));
    CHECK(grad[0] == 0 && grad[1] == 0 && grad[2] == 0);

    CHECK_OK(bp_graph_forward(g));
    CHECK_OK(bp_graph_backward(g, total));
    CHECK_OK(bp_graph_free(g));
}

static void test_invalid_class_labels_fail_forward(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s23[] = {2, 3}, s2[] = {2};
    bp_node logits = leaf(g, 0, s23, 2);
    bp_node labels = leaf(g, 2, s2, 1);
    bp_node loss = UNTOUCHED_NODE;
    float value = -9;
    CHECK_OK(bp_graph_cross_entropy(g, logits, labels, BP_REDUCTION_MEAN, &loss));

    static const float bad_labels[][2] = {{0, 3}, {-1, 0}, {0.5f, 1}, {1, 1e9f}};
    for (size_t i = 0; i < sizeof bad_labels / sizeof bad_labels[0]; i++) {
        CHECK_OK(bp_graph_set_value(g, labels, bad_labels[i], 2));
        CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_forward(g));
        /* After a failed forward, op values must not be read. */
        CHECK_STATUS(BP_ERR_STATE, bp_graph_value(g, loss, &value, 1));
        CHECK_STATUS(BP_ERR_STATE, bp_graph_backward(g, loss));
    }
    /* A NaN label is not a class index either (NONFINITE would describe it as well). */
    const float nan_labels[2] = {0, NAN};
    CHECK_OK(bp_graph_set_value(g, labels, nan_labels, 2));
    bp_status nan_status = bp_graph_forward(g);
    CHECK(nan_status == BP_ERR_INVALID_ARGUMENT || nan_status == BP_ERR_NONFINITE);
    CHECK_STATUS(BP_ERR_STATE, bp_graph_value(g, loss, &value, 1));
    CHECK(value == -9);

    static const float good_labels[2] = {2, 0};
    CHECK_OK(bp_graph_set_value(g, labels, good_labels, 2));
    CHECK_OK(bp_graph_forward(g));
    CHECK_OK(bp_graph_value(g, loss, &value, 1));
    CHECK_NEAR(value, log(3.0), 1e-6); /* all logits zero: uniform over 3 classes */
    CHECK_OK(bp_graph_free(g));
}

static void test_check_gradients_rejects_bad_arguments(void) {
    bp_graph *g = new_graph(BP_FLOAT64);
    static const size_t s3[] = {3};
    static const double x_values[3] = {0.5, -1, 2};
    bp_node x = UNTOUCHED_NODE, t = UNTOUCHED_NODE, total = UNTOUCHED_NODE;
    CHECK_OK(bp_graph_input(g, s3, 1, &x));
    CHECK_OK(bp_graph_set_value_f64(g, x, x_values, 3));
    CHECK_OK(bp_graph_tanh(g, x, &t));
    CHECK_OK(bp_graph_sum(g, t, &total));
    size_t before = node_count(g);
    int passed = 7;
    double max_error = -9;

    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT,
                 bp_graph_check_gradients(g, total, 0, 1e-5, 1e-3, &passed, &max_error));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT,
                 bp_graph_check_gradients(g, total, -1e-6, 1e-5, 1e-3, &passed, &max_error));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT,
                 bp_graph_check_gradients(g, total, NAN, 1e-5, 1e-3, &passed, &max_error));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT,
                 bp_graph_check_gradients(g, total, 1e-6, -1e-5, 1e-3, &passed, &max_error));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT,
                 bp_graph_check_gradients(g, total, 1e-6, 1e-5, -1e-3, &passed, &max_error));
    /* The root must be a scalar, as for backward. */
    CHECK_STATUS(BP_ERR_SHAPE,
                 bp_graph_check_gradients(g, t, 1e-6, 1e-5, 1e-3, &passed, &max_error));
    CHECK_EQ(passed, 7);
    CHECK(max_error == -9);
    CHECK_EQ(node_count(g), before);

    double after[3] = {0, 0, 0};
    CHECK_OK(bp_graph_value_f64(g, x, after, 3));
    CHECK(after[0] == x_values[0] && after[1] == x_values[1] && after[2] == x_values[2]);

    /* Both out-pointers may be NULL. */
    CHECK_OK(bp_graph_check_gradients(g, total, 1e-6, 1e-5, 1e-3, NULL, NULL));
    CHECK_OK(bp_graph_check_gradients(g, total, 1e-6, 1e-5, 1e-3, &passed, &max_error));
    CHECK_EQ(passed, 1);
    CHECK(max_error >= 0 && max_error < 1e-6);
    CHECK_OK(bp_graph_free(g));
}

/* ---- the full op set -------------------------------------------------------------------- */

/* CHECK_STATUS for the cases where the header allows either of two statuses: the call must fail
 * with one of them, with a message. */
#define CHECK_STATUS_EITHER(first, second, call) \
    check_either_((first), (second), (check_begin(__FILE__, __LINE__, #call), (call)), #call)

static int check_either_(bp_status first, bp_status second, bp_status got, const char *call) {
    const char *message = bp_last_error();
    if ((got == first || got == second) && message != NULL && message[0] != '\0') {
        return check_record(1);
    }
    printf("FAIL %s: %s\n     expected %s or %s (with a message)\n     got      %s (\"%s\")\n",
           check_test_name, call, bp_status_string(first), bp_status_string(second),
           bp_status_string(got), message ? message : "(NULL)");
    fflush(stdout);
    return check_record(0);
}

static void test_new_ops_reject_bad_parameters(void) {
    fixture f = make_fixture();
    bp_graph *g = f.graph;
    static const size_t s4[] = {4}, s32[] = {3, 2};
    bp_node v4 = leaf(g, 0, s4, 1);
    bp_node m32 = leaf(g, 1, s32, 2);
    bp_node out = UNTOUCHED_NODE;
    size_t before = node_count(g);
    const bp_status arg = BP_ERR_INVALID_ARGUMENT;

    /* Unknown enum values. */
    CHECK_STATUS(arg, bp_graph_compare(g, f.m23, f.c23, (bp_comparison)6, &out));
    CHECK_STATUS(arg, bp_graph_compare(g, f.m23, f.c23, (bp_comparison)-1, &out));
    CHECK_STATUS(arg, bp_graph_gelu(g, f.m23, (bp_gelu_approximation)2, &out));
    CHECK_STATUS(arg, bp_graph_reduce(g, f.m23, (bp_reduce_op)5, NULL, 0, 0, &out));
    CHECK_STATUS(arg, bp_graph_l1_loss(g, f.m23, f.c23, (bp_reduction)7, &out));
    CHECK_STATUS(arg, bp_graph_huber_loss(g, f.m23, f.c23, 1.0, (bp_reduction)7, &out));
    CHECK_STATUS(arg, bp_graph_bce_loss(g, f.m23, f.c23, (bp_reduction)7, &out));
    CHECK_STATUS(arg, bp_graph_bce_with_logits_loss(g, f.m23, f.c23, (bp_reduction)7, &out));
    CHECK_STATUS(arg, bp_graph_nll_loss(g, f.m23, f.row3, (bp_reduction)7, &out));

    /* Parameters that must be finite, positive or in range. */
    CHECK_STATUS(arg, bp_graph_pow_scalar(g, f.m23, NAN, &out));
    CHECK_STATUS(arg, bp_graph_pow_scalar(g, f.m23, INFINITY, &out));
    CHECK_STATUS(arg, bp_graph_leaky_relu(g, f.m23, NAN, &out));
    CHECK_STATUS(arg, bp_graph_elu(g, f.m23, -INFINITY, &out));
    CHECK_STATUS(arg, bp_graph_huber_loss(g, f.m23, f.c23, 0.0, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(arg, bp_graph_huber_loss(g, f.m23, f.c23, -1.0, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(arg, bp_graph_huber_loss(g, f.m23, f.c23, NAN, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(arg, bp_graph_dropout(g, f.m23, -0.1, &out));
    CHECK_STATUS(arg, bp_graph_dropout(g, f.m23, 1.5, &out));
    CHECK_STATUS(arg, bp_graph_dropout(g, f.m23, NAN, &out));
    CHECK_STATUS(arg, bp_graph_layer_norm(g, f.m23, 1, BP_NO_NODE, BP_NO_NODE, 0.0, &out));
    CHECK_STATUS(arg, bp_graph_layer_norm(g, f.m23, 1, BP_NO_NODE, BP_NO_NODE, -1e-5, &out));
    CHECK_STATUS(arg, bp_graph_layer_norm(g, f.m23, 1, BP_NO_NODE, BP_NO_NODE, NAN, &out));
    /* Weight and bias come together or not at all; shaped like the normalized axes. */
    CHECK_STATUS(arg, bp_graph_layer_norm(g, f.m23, 1, f.row3, BP_NO_NODE, 1e-5, &out));
    CHECK_STATUS(arg, bp_graph_layer_norm(g, f.m23, 1, BP_NO_NODE, f.row3, 1e-5, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_layer_norm(g, f.m23, 1, v4, v4, 1e-5, &out));
    CHECK_STATUS_EITHER(arg, BP_ERR_SHAPE,
                        bp_graph_layer_norm(g, f.m23, 0, BP_NO_NODE, BP_NO_NODE, 1e-5, &out));
    CHECK_STATUS_EITHER(arg, BP_ERR_SHAPE,
                        bp_graph_layer_norm(g, f.m23, 3, BP_NO_NODE, BP_NO_NODE, 1e-5, &out));

    /* Axes and ranges. A parameter that is wrong whatever the input (an axis listed twice, an
     * empty range, a list that is not a permutation) is "a parameter out of range":
     * INVALID_ARGUMENT. One that is wrong only for this input's rank or size (axis 2 of a
     * matrix, a range past the end) could be read either way, so either status passes. */
    static const int32_t axis2[] = {2}, axis_m3[] = {-3}, axes00[] = {0, 0}, axes0m2[] = {0, -2};
    const bp_status shape = BP_ERR_SHAPE;
    CHECK_STATUS_EITHER(arg, shape, bp_graph_reduce(g, f.m23, BP_REDUCE_SUM, axis2, 1, 0, &out));
    CHECK_STATUS_EITHER(arg, shape,
                        bp_graph_reduce(g, f.m23, BP_REDUCE_SUM, axis_m3, 1, 0, &out));
    CHECK_STATUS(arg, bp_graph_reduce(g, f.m23, BP_REDUCE_MEAN, axes00, 2, 1, &out));
    CHECK_STATUS_EITHER(arg, shape,
                        bp_graph_reduce(g, f.m23, BP_REDUCE_MEAN, axes0m2, 2, 1, &out));
    CHECK_STATUS(arg, bp_graph_reduce(g, f.m23, BP_REDUCE_SUM, NULL, 1, 0, &out));
    CHECK_STATUS_EITHER(arg, shape, bp_graph_softmax(g, f.m23, 2, &out));
    CHECK_STATUS_EITHER(arg, shape, bp_graph_softmax(g, f.m23, -3, &out));
    CHECK_STATUS_EITHER(arg, shape, bp_graph_log_softmax(g, f.m23, 2, &out));
    CHECK_STATUS_EITHER(arg, shape, bp_graph_log_softmax(g, f.scalar, 0, &out));
    CHECK_STATUS_EITHER(arg, shape, bp_graph_slice(g, f.m23, 2, 0, 1, &out));
    CHECK_STATUS_EITHER(arg, shape, bp_graph_slice(g, f.m23, -3, 0, 1, &out));
    CHECK_STATUS(arg, bp_graph_slice(g, f.m23, 1, 1, 1, &out)); /* empty */
    CHECK_STATUS(arg, bp_graph_slice(g, f.m23, 1, 2, 1, &out)); /* backwards */
    CHECK_STATUS_EITHER(arg, shape, bp_graph_slice(g, f.m23, 1, 0, 4, &out)); /* past the end */
    CHECK_STATUS_EITHER(arg, shape, bp_graph_slice(g, f.m23, 0, SIZE_MAX - 1, SIZE_MAX, &out));

    /* Layout parameters. */
    static const size_t s4b[] = {4}, s60[] = {6, 0}, s61[] = {6, 1};
    static const size_t big[BP_MAX_RANK + 1] = {6, 1, 1, 1, 1, 1, 1, 1, 1};
    static const size_t perm00[] = {0, 0}, perm02[] = {0, 2}, perm012[] = {0, 1, 2};
    CHECK_STATUS(arg, bp_graph_reshape(g, f.m23, NULL, 2, &out));
    CHECK_STATUS(arg, bp_graph_reshape(g, f.m23, big, BP_MAX_RANK + 1, &out));
    CHECK_STATUS_EITHER(arg, BP_ERR_SHAPE, bp_graph_reshape(g, f.m23, s4b, 1, &out));
    CHECK_STATUS_EITHER(arg, BP_ERR_SHAPE, bp_graph_reshape(g, f.m23, s60, 2, &out));
    CHECK_STATUS(arg, bp_graph_permute(g, f.m23, NULL, 2, &out));
    CHECK_STATUS(arg, bp_graph_permute(g, f.m23, perm00, 2, &out));
    CHECK_STATUS_EITHER(arg, shape, bp_graph_permute(g, f.m23, perm02, 2, &out));
    CHECK_STATUS_EITHER(arg, BP_ERR_SHAPE, bp_graph_permute(g, f.m23, perm012, 3, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_transpose(g, f.row3, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_transpose(g, f.scalar, &out));
    const bp_node mixed[2] = {f.m23, f.row3}, crossed[2] = {f.m23, m32};
    const bp_node same[2] = {f.m23, f.c23};
    CHECK_STATUS(arg, bp_graph_concat(g, NULL, 2, 0, &out));
    CHECK_STATUS(arg, bp_graph_concat(g, same, 0, 0, &out));
    CHECK_STATUS_EITHER(arg, shape, bp_graph_concat(g, same, 2, 2, &out));
    CHECK_STATUS_EITHER(arg, shape, bp_graph_concat(g, same, 2, -3, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_concat(g, mixed, 2, 0, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_concat(g, crossed, 2, 0, &out)); /* 3 vs 2 columns */
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_gather(g, f.scalar, f.row3, &out));

    /* Shapes the ops cannot combine. */
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_pow(g, f.m23, v4, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_compare(g, f.m23, v4, BP_CMP_EQ, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_where(g, v4, f.m23, f.c23, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_where(g, f.c23, f.m23, v4, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_matmul_transposed(g, f.m23, f.c23, 0, 0, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_matmul_transposed(g, f.m23, m32, 0, 1, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_matmul_transposed(g, f.row3, f.row3, 0, 1, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_l1_loss(g, f.m23, v4, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_huber_loss(g, f.m23, v4, 1.0, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_bce_loss(g, f.m23, v4, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_SHAPE,
                 bp_graph_bce_with_logits_loss(g, f.m23, v4, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_nll_loss(g, f.row3, f.row3, BP_REDUCTION_MEAN, &out));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_nll_loss(g, f.m23, f.row3, BP_REDUCTION_MEAN, &out));
    (void)s61;

    CHECK_EQ(out, UNTOUCHED_NODE);
    CHECK_EQ(node_count(g), before);
    check_graph_still_works(&f);
    CHECK_OK(bp_graph_free(g));
}

static void test_invalid_indices_fail_gather_and_nll_forward(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s32[] = {3, 2}, s2[] = {2}, s23[] = {2, 3};
    bp_node table = leaf(g, 1, s32, 2);
    bp_node indices = leaf(g, 2, s2, 1);
    bp_node logp = leaf(g, 0, s23, 2);
    bp_node labels = leaf(g, 2, s2, 1);
    bp_node rows = UNTOUCHED_NODE, nll = UNTOUCHED_NODE;
    float value[4] = {-9, -9, -9, -9};
    CHECK_OK(bp_graph_gather(g, table, indices, &rows));
    CHECK_OK(bp_graph_nll_loss(g, logp, labels, BP_REDUCTION_MEAN, &nll));

    static const float bad[][2] = {{0, 3}, {-1, 0}, {0.5f, 1}};
    static const float good[2] = {2, 0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_OK(bp_graph_set_value(g, indices, bad[i], 2));
        CHECK_OK(bp_graph_set_value(g, labels, good, 2));
        CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_forward(g));
        CHECK_STATUS(BP_ERR_STATE, bp_graph_value(g, rows, value, 4));
        CHECK_OK(bp_graph_set_value(g, indices, good, 2));
        CHECK_OK(bp_graph_set_value(g, labels, bad[i], 2));
        CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_forward(g));
        CHECK_STATUS(BP_ERR_STATE, bp_graph_value(g, nll, value, 1));
    }
    CHECK(value[0] == -9);
    CHECK_OK(bp_graph_set_value(g, labels, good, 2));
    CHECK_OK(bp_graph_forward(g));
    CHECK_OK(bp_graph_value(g, rows, value, 4));
    CHECK_OK(bp_graph_free(g));
}

static void test_custom_op_rejects_bad_definitions(void) {
    fixture f = make_fixture();
    bp_graph *g = f.graph;
    bp_node out = UNTOUCHED_NODE;
    const bp_node one[1] = {f.m23};
    bp_node many[65];
    for (int i = 0; i < 65; i++) {
        many[i] = f.m23;
    }
    size_t before = node_count(g);
    bp_custom_op op;

    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_custom(g, NULL, one, 1, &out));
    op = identity_op(NULL);
    op.size = sizeof op - 1;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_custom(g, &op, one, 1, &out));
    op.size = 0;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_custom(g, &op, one, 1, &out));
    op = identity_op(NULL);
    op.shape = NULL;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_custom(g, &op, one, 1, &out));
    op = identity_op(NULL);
    op.forward = NULL;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_custom(g, &op, one, 1, &out));
    op = identity_op(NULL);
    op.backward = NULL;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_custom(g, &op, one, 1, &out));
    op = identity_op(NULL);
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_custom(g, &op, NULL, 1, &out));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_custom(g, &op, many, 65, &out));
    int fail_shape = 1;
    op = identity_op(&fail_shape);
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_custom(g, &op, one, 1, &out));
    CHECK_EQ(out, UNTOUCHED_NODE);
    CHECK_EQ(node_count(g), before);

    /* A failing forward callback fails bp_graph_forward; a failing backward, the backward. */
    int fail_forward = 2, fail_backward = 3;
    bp_node failing = UNTOUCHED_NODE, total = UNTOUCHED_NODE;
    op = identity_op(&fail_forward);
    CHECK_OK(bp_graph_custom(g, &op, one, 1, &failing));
    CHECK_OK(bp_graph_sum(g, failing, &total));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_forward(g));
    float value = -9;
    CHECK_STATUS(BP_ERR_STATE, bp_graph_value(g, total, &value, 1));
    fail_forward = 0;
    fail_backward = 3;
    CHECK_OK(bp_graph_forward(g));
    op = identity_op(&fail_backward);
    bp_node failing_back = UNTOUCHED_NODE, total_back = UNTOUCHED_NODE;
    CHECK_OK(bp_graph_custom(g, &op, one, 1, &failing_back));
    CHECK_OK(bp_graph_sum(g, failing_back, &total_back));
    CHECK_OK(bp_graph_forward(g));
    bp_status status = bp_graph_backward(g, total_back);
    CHECK(status != BP_OK);
    CHECK(bp_last_error()[0] != '\0');

    /* The working identity op computes and differentiates. */
    CHECK_OK(bp_graph_zero_grad(g));
    CHECK_OK(bp_graph_backward(g, total));
    float grad[6];
    CHECK_OK(bp_graph_grad(g, f.m23, grad, 6));
    for (int i = 0; i < 6; i++) {
        CHECK(grad[i] == 1);
    }
    CHECK_OK(bp_graph_free(g));
}

static void test_thread_count_rejects_less_than_one(void) {
    int threads = bp_get_num_threads();
    CHECK(threads >= 1);
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_set_num_threads(0));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_set_num_threads(-1));
    CHECK_EQ(bp_get_num_threads(), threads);
    CHECK_OK(bp_set_num_threads(1));
    CHECK_EQ(bp_get_num_threads(), 1);
    CHECK_OK(bp_set_num_threads(threads));
}

/* ---- networks --------------------------------------------------------------------------- */

static void test_net_create_rejects_bad_arguments(void) {
    bp_net *net = NULL;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_create(2, 1, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_create(0, 1, &net));
    CHECK(net == NULL);
}

/* Calls every function that takes a network with `bad` in its place. */
static void check_net_functions_reject(bp_net *bad) {
    float outputs[8] = {-9, -9, -9, -9, -9, -9, -9, -9};
    float loss = -9;
    size_t value = 99;
    bp_graph *graph = NULL;
    bp_node weight = UNTOUCHED_NODE, bias = UNTOUCHED_NODE;

    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_add_dense(bad, 4, BP_ACTIVATION_RELU));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_set_loss(bad, BP_LOSS_MSE));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_input_width(bad, &value));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_output_width(bad, &value));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_layer_count(bad, &value));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_parameter_count(bad, &value));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_forward(bad, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_backward(bad, XOR_TARGETS, 8, &loss));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_backward_labels(bad, XOR_LABELS, 4, &loss));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_update(bad, 0.1f));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_zero_grad(bad));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_net_train_step(bad, 4, XOR_INPUTS, 8, XOR_TARGETS, 8, 0.1f, &loss));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_net_train_step_labels(bad, 4, XOR_INPUTS, 8, XOR_LABELS, 4, 0.1f, &loss));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_predict(bad, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_graph(bad, &graph));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_layer_nodes(bad, 0, &weight, &bias));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_net_add_dense_init(bad, 4, BP_ACTIVATION_NONE, BP_INIT_ZEROS, 0.0));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_add_dropout(bad, 0.5));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_add_layer_norm(bad, 1e-5));
    float weights[6] = {-9, -9, -9, -9, -9, -9}, biases[3] = {-9, -9, -9};
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_layer_parameters(bad, 0, weights, 6, biases, 3));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_net_set_layer_parameters(bad, 0, weights, 6, biases, 3));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_parameters(bad, outputs, 8));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_set_parameters(bad, outputs, 8));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_gradients(bad, outputs, 8));
    double norm = -9;
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_clip_grad_norm(bad, 1.0, &norm));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_clip_grad_value(bad, 1.0));
    CHECK(weights[0] == -9 && biases[0] == -9);
    CHECK(norm == -9);

    CHECK_EQ(value, 99);
    CHECK(loss == -9);
    CHECK(outputs[0] == -9 && outputs[7] == -9);
    CHECK(graph == NULL);
    CHECK_EQ(weight, UNTOUCHED_NODE);
    CHECK_EQ(bias, UNTOUCHED_NODE);
}

static void test_null_net_is_rejected_by_every_net_function(void) {
    check_net_functions_reject(NULL);
    CHECK_OK(bp_net_free(NULL));
}

static void test_freed_net_is_rejected(void) {
    bp_net *net = new_net(BP_LOSS_MSE);
    CHECK_OK(bp_net_free(net));
    check_net_functions_reject(net);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_free(net)); /* double free */
}

static void test_foreign_pointer_is_not_a_net(void) {
    uint64_t local[64];
    memset(local, 0, sizeof local);
    check_net_functions_reject((bp_net *)(void *)local);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_free((bp_net *)(void *)local));
    memset(local, 0x5A, sizeof local);
    check_net_functions_reject((bp_net *)(void *)local);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_free((bp_net *)(void *)local));
}

static void test_graph_handle_is_not_a_net(void) {
    fixture f = make_fixture();
    check_net_functions_reject((bp_net *)(void *)f.graph);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_free((bp_net *)(void *)f.graph));
    check_graph_still_works(&f);
    CHECK_OK(bp_graph_free(f.graph));

    /* A network's own graph is not a network either. */
    bp_net *net = new_net(BP_LOSS_MSE);
    bp_graph *graph = NULL;
    CHECK_OK(bp_net_graph(net, &graph));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_free((bp_net *)(void *)graph));
    CHECK_OK(bp_net_free(net));
}

static void test_add_dense_and_set_loss_reject_bad_arguments(void) {
    bp_net *net = NULL;
    size_t layers = 99, parameters = 99;
    CHECK_OK(bp_net_create(2, 1, &net));
    CHECK_OK(bp_net_add_dense(net, 3, BP_ACTIVATION_RELU));

    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_add_dense(net, 0, BP_ACTIVATION_RELU));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_add_dense(net, 4, (bp_activation)99));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_add_dense(net, 4, (bp_activation)-1));
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_add_dense(net, SIZE_MAX / 2, BP_ACTIVATION_NONE));
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY, bp_net_add_dense(net, SIZE_MAX, BP_ACTIVATION_NONE));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_set_loss(net, (bp_loss)7));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_set_loss(net, (bp_loss)-1));

    CHECK_OK(bp_net_layer_count(net, &layers));
    CHECK_EQ(layers, 1);
    CHECK_OK(bp_net_parameter_count(net, &parameters));
    CHECK_EQ(parameters, 2 * 3 + 3);

    /* Still MSE, still trains. */
    float loss = -1;
    static const float targets[12] = {0};
    CHECK_OK(bp_net_train_step(net, 4, XOR_INPUTS, 8, targets, 12, 0.1f, &loss));
    CHECK_OK(bp_net_free(net));
}

static void test_net_builders_reject_bad_arguments(void) {
    bp_net *net = NULL;
    size_t layers = 99;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_create_dtype((bp_dtype)7, 2, 1, &net));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_create_dtype(BP_FLOAT64, 0, 1, &net));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_create_dtype(BP_FLOAT64, 2, 1, NULL));
    CHECK(net == NULL);

    CHECK_OK(bp_net_create_dtype(BP_FLOAT64, 2, 1, &net));
    CHECK_OK(bp_net_add_dense(net, 3, BP_ACTIVATION_TANH));
    const bp_status arg = BP_ERR_INVALID_ARGUMENT;
    CHECK_STATUS(arg, bp_net_add_dense_init(net, 4, BP_ACTIVATION_NONE, (bp_initializer)7, 0));
    CHECK_STATUS(arg, bp_net_add_dense_init(net, 4, BP_ACTIVATION_NONE, (bp_initializer)-1, 0));
    CHECK_STATUS(arg, bp_net_add_dense_init(net, 4, BP_ACTIVATION_NONE, BP_INIT_CONSTANT, NAN));
    CHECK_STATUS(arg, bp_net_add_dense_init(net, 4, BP_ACTIVATION_NONE, BP_INIT_CONSTANT,
                                            INFINITY));
    CHECK_STATUS(arg, bp_net_add_dense_init(net, 0, BP_ACTIVATION_NONE, BP_INIT_ZEROS, 0));
    CHECK_STATUS(arg, bp_net_add_dense_init(net, 4, (bp_activation)99, BP_INIT_ZEROS, 0));
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY,
                 bp_net_add_dense_init(net, SIZE_MAX / 2, BP_ACTIVATION_NONE, BP_INIT_ZEROS, 0));
    CHECK_STATUS(arg, bp_net_add_dropout(net, -0.1));
    CHECK_STATUS(arg, bp_net_add_dropout(net, 1.5));
    CHECK_STATUS(arg, bp_net_add_dropout(net, NAN));
    CHECK_STATUS(arg, bp_net_add_layer_norm(net, 0.0));
    CHECK_STATUS(arg, bp_net_add_layer_norm(net, -1e-5));
    CHECK_STATUS(arg, bp_net_add_layer_norm(net, NAN));
    CHECK_STATUS(arg, bp_net_add_layer_norm(net, INFINITY));
    CHECK_OK(bp_net_layer_count(net, &layers));
    CHECK_EQ(layers, 1);

    /* The float64 network still runs, with float data at the boundary. */
    float outputs[12];
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 12));
    CHECK_OK(bp_net_free(net));
}

static void test_parameter_access_rejects_bad_buffers(void) {
    /* Layers: dense 2->3 (tanh), dropout, dense 3->2: parameters 9 + 8 = 17. */
    bp_net *net = NULL;
    CHECK_OK(bp_net_create(2, 7, &net));
    CHECK_OK(bp_net_add_dense(net, 3, BP_ACTIVATION_TANH));
    CHECK_OK(bp_net_add_dropout(net, 0.25));
    CHECK_OK(bp_net_add_dense(net, 2, BP_ACTIVATION_NONE));
    float all[17], again[17], buffer[20], weights[6], biases[3];
    for (int i = 0; i < 20; i++) {
        buffer[i] = -9;
    }
    memcpy(weights, buffer, sizeof weights);
    memcpy(biases, buffer, sizeof biases);
    CHECK_OK(bp_net_parameters(net, all, 17));

    const bp_status arg = BP_ERR_INVALID_ARGUMENT;
    CHECK_STATUS(arg, bp_net_parameters(net, NULL, 17));
    CHECK_STATUS(arg, bp_net_parameters(net, buffer, 16));
    CHECK_STATUS(arg, bp_net_parameters(net, buffer, 18));
    CHECK_STATUS(arg, bp_net_gradients(net, NULL, 17));
    CHECK_STATUS(arg, bp_net_gradients(net, buffer, 16));
    CHECK_STATUS(arg, bp_net_layer_parameters(net, 0, NULL, 6, biases, 3));
    CHECK_STATUS(arg, bp_net_layer_parameters(net, 0, weights, 6, NULL, 3));
    CHECK_STATUS(arg, bp_net_layer_parameters(net, 0, weights, 5, biases, 3));
    CHECK_STATUS(arg, bp_net_layer_parameters(net, 0, weights, 6, biases, 4));
    CHECK_STATUS(arg, bp_net_layer_parameters(net, 1, weights, 6, biases, 3)); /* dropout */
    CHECK_STATUS(arg, bp_net_layer_parameters(net, 3, weights, 6, biases, 3));
    CHECK_STATUS(arg, bp_net_layer_parameters(net, SIZE_MAX, weights, 6, biases, 3));
    for (int i = 0; i < 20; i++) {
        CHECK(buffer[i] == -9);
    }
    CHECK(weights[0] == -9 && weights[5] == -9 && biases[2] == -9);

    /* Setting: the same checks, and every value must be finite. */
    float values[17];
    memcpy(values, all, sizeof values);
    CHECK_STATUS(arg, bp_net_set_parameters(net, NULL, 17));
    CHECK_STATUS(arg, bp_net_set_parameters(net, values, 16));
    values[16] = NAN;
    CHECK_STATUS(BP_ERR_NONFINITE, bp_net_set_parameters(net, values, 17));
    values[16] = all[16];
    values[0] = INFINITY;
    CHECK_STATUS(BP_ERR_NONFINITE, bp_net_set_parameters(net, values, 17));
    float w[6] = {1, 2, 3, 4, 5, 6}, b[3] = {1, 2, 3};
    CHECK_STATUS(arg, bp_net_set_layer_parameters(net, 0, NULL, 6, b, 3));
    CHECK_STATUS(arg, bp_net_set_layer_parameters(net, 0, w, 6, NULL, 3));
    CHECK_STATUS(arg, bp_net_set_layer_parameters(net, 0, w, 7, b, 3));
    CHECK_STATUS(arg, bp_net_set_layer_parameters(net, 1, w, 6, b, 3));
    CHECK_STATUS(arg, bp_net_set_layer_parameters(net, 3, w, 6, b, 3));
    b[2] = NAN;
    CHECK_STATUS(BP_ERR_NONFINITE, bp_net_set_layer_parameters(net, 0, w, 6, b, 3));
    w[0] = -INFINITY;
    b[2] = 3;
    CHECK_STATUS(BP_ERR_NONFINITE, bp_net_set_layer_parameters(net, 0, w, 6, b, 3));

    CHECK_OK(bp_net_parameters(net, again, 17));
    CHECK(same_floats(all, again, 17));
    CHECK_OK(bp_net_free(net));
}

static void test_net_queries_reject_null_out_and_bad_layer(void) {
    bp_net *net = new_net(BP_LOSS_MSE);
    bp_node weight = UNTOUCHED_NODE, bias = UNTOUCHED_NODE;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_input_width(net, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_output_width(net, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_layer_count(net, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_parameter_count(net, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_graph(net, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_layer_nodes(net, 2, &weight, &bias));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_layer_nodes(net, SIZE_MAX, &weight, &bias));
    CHECK_EQ(weight, UNTOUCHED_NODE);
    CHECK_EQ(bias, UNTOUCHED_NODE);
    /* Either out-pointer may be NULL. */
    CHECK_OK(bp_net_layer_nodes(net, 1, NULL, NULL));
    CHECK_OK(bp_net_layer_nodes(net, 1, &weight, NULL));
    CHECK(weight != UNTOUCHED_NODE);
    CHECK_OK(bp_net_layer_nodes(net, 1, NULL, &bias));
    CHECK(bias != UNTOUCHED_NODE);
    CHECK_OK(bp_net_free(net));
}

/* forward and predict share their argument rules. */
typedef bp_status (*run_fn)(bp_net *, size_t, const float *, size_t, float *, size_t);

static void check_run_rejects_bad_input(run_fn run) {
    bp_net *net = NULL;
    float outputs[8] = {-9, -9, -9, -9, -9, -9, -9, -9};
    float inputs[8];
    memcpy(inputs, XOR_INPUTS, sizeof inputs);

    /* No layers yet. */
    CHECK_OK(bp_net_create(2, 3, &net));
    CHECK_STATUS(BP_ERR_STATE, run(net, 4, inputs, 8, outputs, 8));
    CHECK_OK(bp_net_free(net));

    /* 2 inputs, 2 outputs per sample: batch 4 takes 8 floats in and gives 8 out. */
    net = new_net(BP_LOSS_MSE);
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, run(net, 4, NULL, 8, outputs, 8));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, run(net, 4, inputs, 8, NULL, 8));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, run(net, 0, inputs, 0, outputs, 0));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, run(net, 4, inputs, 7, outputs, 8));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, run(net, 4, inputs, 9, outputs, 8));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, run(net, 4, inputs, 8, outputs, 7));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, run(net, 4, inputs, 8, outputs, 9));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, run(net, 3, inputs, 8, outputs, 8));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, run(net, 3, inputs, 6, outputs, 8));
    /* The batch times the widths does not fit in memory (or in a signed size). The counts are
     * consistent with the batch, so only the size can be the problem. */
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY,
                 run(net, SIZE_MAX / 4, inputs, SIZE_MAX / 4 * 2, outputs, SIZE_MAX / 4 * 2));
    CHECK_STATUS(BP_ERR_OUT_OF_MEMORY,
                 run(net, SIZE_MAX / 2, inputs, SIZE_MAX / 2 * 2, outputs, SIZE_MAX / 2 * 2));

    inputs[5] = NAN;
    CHECK_STATUS(BP_ERR_NONFINITE, run(net, 4, inputs, 8, outputs, 8));
    inputs[5] = INFINITY;
    CHECK_STATUS(BP_ERR_NONFINITE, run(net, 4, inputs, 8, outputs, 8));
    inputs[5] = -INFINITY;
    CHECK_STATUS(BP_ERR_NONFINITE, run(net, 4, inputs, 8, outputs, 8));

    for (int i = 0; i < 8; i++) {
        CHECK(outputs[i] == -9);
    }
    CHECK_OK(bp_net_free(net));
}

static void test_net_forward_rejects_bad_input(void) {
    check_run_rejects_bad_input(bp_net_forward);
}

static void test_net_predict_rejects_bad_input(void) {
    check_run_rejects_bad_input(bp_net_predict);
}

static void test_net_backward_rejects_bad_targets(void) {
    bp_net *net = new_net(BP_LOSS_MSE);
    float outputs[8], loss = -9;
    float grads_before[NET_PARAMETERS], grads_after[NET_PARAMETERS];
    float targets[8];
    memcpy(targets, XOR_TARGETS, sizeof targets);

    /* Before any forward. */
    CHECK_STATUS(BP_ERR_STATE, bp_net_backward(net, targets, 8, &loss));

    /* One good step, so that the gradients are not all zero. */
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_OK(bp_net_backward(net, targets, 8, &loss));
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_EQ(read_parameters(net, 1, grads_before), NET_PARAMETERS);
    loss = -9;

    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_backward(net, NULL, 8, &loss));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_backward(net, targets, 7, &loss));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_backward(net, targets, 9, &loss));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_backward(net, targets, 0, &loss));
    /* The labels form is for cross-entropy only. */
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_backward_labels(net, XOR_LABELS, 4, &loss));
    targets[3] = NAN;
    CHECK_STATUS(BP_ERR_NONFINITE, bp_net_backward(net, targets, 8, &loss));
    targets[3] = INFINITY;
    CHECK_STATUS(BP_ERR_NONFINITE, bp_net_backward(net, targets, 8, &loss));

    CHECK(loss == -9);
    CHECK_EQ(read_parameters(net, 1, grads_after), NET_PARAMETERS);
    CHECK(same_floats(grads_before, grads_after, NET_PARAMETERS));

    /* The forward is still there for a good backward. */
    targets[3] = XOR_TARGETS[3];
    CHECK_OK(bp_net_backward(net, targets, 8, &loss));
    CHECK(loss >= 0);
    CHECK_OK(bp_net_free(net));
}

static void test_net_backward_labels_rejects_bad_labels(void) {
    bp_net *net = new_net(BP_LOSS_CROSS_ENTROPY);
    float outputs[8], loss = -9;
    float grads_before[NET_PARAMETERS], grads_after[NET_PARAMETERS];
    int32_t labels[4];
    memcpy(labels, XOR_LABELS, sizeof labels);

    CHECK_STATUS(BP_ERR_STATE, bp_net_backward_labels(net, labels, 4, &loss));

    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_OK(bp_net_backward_labels(net, labels, 4, &loss));
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_EQ(read_parameters(net, 1, grads_before), NET_PARAMETERS);
    loss = -9;

    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_backward_labels(net, NULL, 4, &loss));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_backward_labels(net, labels, 3, &loss));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_backward_labels(net, labels, 5, &loss));
    /* The float-target form is for MSE only. */
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_backward(net, XOR_TARGETS, 8, &loss));
    /* Labels must be class indices in [0, 2). */
    labels[2] = 2;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_backward_labels(net, labels, 4, &loss));
    labels[2] = -1;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_backward_labels(net, labels, 4, &loss));
    labels[2] = INT32_MAX;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_backward_labels(net, labels, 4, &loss));

    CHECK(loss == -9);
    CHECK_EQ(read_parameters(net, 1, grads_after), NET_PARAMETERS);
    CHECK(same_floats(grads_before, grads_after, NET_PARAMETERS));

    labels[2] = XOR_LABELS[2];
    CHECK_OK(bp_net_backward_labels(net, labels, 4, &loss));
    CHECK(loss > 0);
    CHECK_OK(bp_net_free(net));
}

static void test_net_update_rejects_bad_learning_rates(void) {
    bp_net *net = new_net(BP_LOSS_MSE);
    float outputs[8], loss;
    float before[NET_PARAMETERS], after[NET_PARAMETERS];
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_OK(bp_net_backward(net, XOR_TARGETS, 8, &loss));
    CHECK_EQ(read_parameters(net, 0, before), NET_PARAMETERS);

    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_update(net, -0.1f));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_update(net, NAN));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_update(net, INFINITY));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_update(net, -INFINITY));

    CHECK_EQ(read_parameters(net, 0, after), NET_PARAMETERS);
    CHECK(same_floats(before, after, NET_PARAMETERS));

    /* A learning rate of zero is allowed and changes nothing. */
    CHECK_OK(bp_net_update(net, 0.0f));
    CHECK_EQ(read_parameters(net, 0, after), NET_PARAMETERS);
    CHECK(same_floats(before, after, NET_PARAMETERS));
    CHECK_OK(bp_net_free(net));
}

static void test_nonfinite_loss_or_gradients_change_no_weights(void) {
    /* One linear unit y = w x + b, fed x near FLT_MAX with a target of the opposite sign: every
     * input and target is finite, but y - target, the loss and the gradients overflow. */
    bp_net *net = NULL;
    bp_graph *graph = NULL;
    bp_node weight = UNTOUCHED_NODE, bias = UNTOUCHED_NODE;
    float before[2] = {0, 0}, after[2] = {0, 0}, grad[2] = {-9, -9};
    float output[1], loss = -9;

    CHECK_OK(bp_net_create(1, 11, &net));
    CHECK_OK(bp_net_add_dense(net, 1, BP_ACTIVATION_NONE));
    CHECK_OK(bp_net_graph(net, &graph));
    CHECK_OK(bp_net_layer_nodes(net, 0, &weight, &bias));
    CHECK_OK(bp_graph_value(graph, weight, &before[0], 1));
    CHECK_OK(bp_graph_value(graph, bias, &before[1], 1));

    const float input[1] = {3e38f};
    const float target[1] = {before[0] >= 0 ? -3e38f : 3e38f};
    CHECK_OK(bp_net_forward(net, 1, input, 1, output, 1));
    /* backward refuses a loss that is not finite, and then leaves the gradients alone; should
     * the loss come out finite, update must refuse the overflowing gradients instead. */
    bp_status backward = bp_net_backward(net, target, 1, &loss);
    CHECK(backward == BP_ERR_NONFINITE || backward == BP_OK);
    if (backward == BP_ERR_NONFINITE) {
        CHECK(loss == -9);
        CHECK_OK(bp_graph_grad(graph, weight, &grad[0], 1));
        CHECK_OK(bp_graph_grad(graph, bias, &grad[1], 1));
        CHECK(grad[0] == 0 && grad[1] == 0);
    } else {
        CHECK_OK(bp_graph_grad(graph, weight, &grad[0], 1));
        CHECK(!isfinite(grad[0]));
        CHECK_STATUS(BP_ERR_NONFINITE, bp_net_update(net, 0.1f));
    }
    CHECK_OK(bp_graph_value(graph, weight, &after[0], 1));
    CHECK_OK(bp_graph_value(graph, bias, &after[1], 1));
    CHECK(same_floats(before, after, 2));

    /* The same through train_step: NONFINITE, and the weights stay. */
    loss = -9;
    CHECK_STATUS(BP_ERR_NONFINITE, bp_net_train_step(net, 1, input, 1, target, 1, 0.1f, &loss));
    CHECK_OK(bp_graph_value(graph, weight, &after[0], 1));
    CHECK_OK(bp_graph_value(graph, bias, &after[1], 1));
    CHECK(same_floats(before, after, 2));
    CHECK(loss == -9);
    CHECK_OK(bp_net_free(net));
}

/* Gives the network non-zero gradients from a good forward and backward on XOR, and copies its
 * weights and gradients (NET_PARAMETERS floats each). */
static void prime_gradients(bp_net *net, bp_loss loss, float *weights, float *grads) {
    float outputs[8];
    CHECK_OK(bp_net_zero_grad(net));
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 8));
    if (loss == BP_LOSS_MSE) {
        CHECK_OK(bp_net_backward(net, XOR_TARGETS, 8, NULL));
    } else {
        CHECK_OK(bp_net_backward_labels(net, XOR_LABELS, 4, NULL));
    }
    CHECK_EQ(read_parameters(net, 0, weights), NET_PARAMETERS);
    CHECK_EQ(read_parameters(net, 1, grads), NET_PARAMETERS);
}

/* After a call that failed: the network's weights and gradients are still `weights` and
 * `grads`. Failures name the call. */
static void check_net_unchanged(bp_net *net, const float *weights, const float *grads,
                                const char *call) {
    float now[NET_PARAMETERS];
    CHECK_CONTEXT(call);
    CHECK_EQ(read_parameters(net, 0, now), NET_PARAMETERS);
    CHECK(same_floats(weights, now, NET_PARAMETERS));
    CHECK_EQ(read_parameters(net, 1, now), NET_PARAMETERS);
    CHECK(same_floats(grads, now, NET_PARAMETERS));
    CHECK_CONTEXT(NULL);
}

/* The call fails with `expected` and changes neither the weights nor the gradients, which are
 * made non-zero first so that a stray zero_grad shows. */
#define CHECK_STEP_FAILS(expected, net, loss, call)                     \
    do {                                                                \
        float weights_[NET_PARAMETERS], grads_[NET_PARAMETERS];         \
        prime_gradients(net, loss, weights_, grads_);                   \
        CHECK_STATUS(expected, call);                                   \
        check_net_unchanged(net, weights_, grads_, #call);              \
    } while (0)

/* A failed train step changes nothing: neither the weights nor the gradients that an earlier
 * backward left (train_step's zero_grad must not run when the step is going to fail). */
static void test_failed_train_steps_change_nothing(void) {
    bp_net *mse = new_net(BP_LOSS_MSE);
    bp_net *ce = new_net(BP_LOSS_CROSS_ENTROPY);
    float inputs[8], targets[8], loss = -9;
    int32_t labels[4];
    memcpy(inputs, XOR_INPUTS, sizeof inputs);
    memcpy(targets, XOR_TARGETS, sizeof targets);
    memcpy(labels, XOR_LABELS, sizeof labels);

    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, mse, BP_LOSS_MSE,
                     bp_net_train_step(mse, 4, NULL, 8, targets, 8, 0.1f, &loss));
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, mse, BP_LOSS_MSE,
                     bp_net_train_step(mse, 4, inputs, 8, NULL, 8, 0.1f, &loss));
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, mse, BP_LOSS_MSE,
                     bp_net_train_step(mse, 0, inputs, 0, targets, 0, 0.1f, &loss));
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, mse, BP_LOSS_MSE,
                     bp_net_train_step(mse, 4, inputs, 7, targets, 8, 0.1f, &loss));
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, mse, BP_LOSS_MSE,
                     bp_net_train_step(mse, 4, inputs, 9, targets, 8, 0.1f, &loss));
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, mse, BP_LOSS_MSE,
                     bp_net_train_step(mse, 4, inputs, 8, targets, 6, 0.1f, &loss));
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, mse, BP_LOSS_MSE,
                     bp_net_train_step(mse, 4, inputs, 8, targets, 8, -1.0f, &loss));
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, mse, BP_LOSS_MSE,
                     bp_net_train_step(mse, 4, inputs, 8, targets, 8, NAN, &loss));
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, mse, BP_LOSS_MSE,
                     bp_net_train_step_labels(mse, 4, inputs, 8, labels, 4, 0.1f, &loss));
    inputs[0] = NAN;
    CHECK_STEP_FAILS(BP_ERR_NONFINITE, mse, BP_LOSS_MSE,
                     bp_net_train_step(mse, 4, inputs, 8, targets, 8, 0.1f, &loss));
    inputs[0] = XOR_INPUTS[0];
    targets[7] = -INFINITY;
    CHECK_STEP_FAILS(BP_ERR_NONFINITE, mse, BP_LOSS_MSE,
                     bp_net_train_step(mse, 4, inputs, 8, targets, 8, 0.1f, &loss));

    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, ce, BP_LOSS_CROSS_ENTROPY,
                     bp_net_train_step_labels(ce, 4, inputs, 8, NULL, 4, 0.1f, &loss));
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, ce, BP_LOSS_CROSS_ENTROPY,
                     bp_net_train_step_labels(ce, 4, inputs, 8, labels, 3, 0.1f, &loss));
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, ce, BP_LOSS_CROSS_ENTROPY,
                     bp_net_train_step_labels(ce, 4, inputs, 6, labels, 4, 0.1f, &loss));
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, ce, BP_LOSS_CROSS_ENTROPY,
                     bp_net_train_step_labels(ce, 4, inputs, 8, labels, 4, -0.5f, &loss));
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, ce, BP_LOSS_CROSS_ENTROPY,
                     bp_net_train_step(ce, 4, inputs, 8, XOR_TARGETS, 8, 0.1f, &loss));
    labels[1] = 2;
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, ce, BP_LOSS_CROSS_ENTROPY,
                     bp_net_train_step_labels(ce, 4, inputs, 8, labels, 4, 0.1f, &loss));
    labels[1] = -3;
    CHECK_STEP_FAILS(BP_ERR_INVALID_ARGUMENT, ce, BP_LOSS_CROSS_ENTROPY,
                     bp_net_train_step_labels(ce, 4, inputs, 8, labels, 4, 0.1f, &loss));
    labels[1] = XOR_LABELS[1];
    inputs[6] = NAN;
    CHECK_STEP_FAILS(BP_ERR_NONFINITE, ce, BP_LOSS_CROSS_ENTROPY,
                     bp_net_train_step_labels(ce, 4, inputs, 8, labels, 4, 0.1f, &loss));

    CHECK(loss == -9);
    CHECK_OK(bp_net_free(mse));
    CHECK_OK(bp_net_free(ce));
}

/* ---- optimizers, schedules, clipping ---------------------------------------------------- */

static int same_bytes(const void *a, const void *b, size_t n) {
    return memcmp(a, b, n) == 0;
}

static void test_optimizer_options_reject_bad_values(void) {
    bp_optimizer_options options, untouched;
    bp_schedule_options schedule, schedule_untouched;
    memset(&options, 0x5A, sizeof options);
    memcpy(&untouched, &options, sizeof options);
    memset(&schedule, 0x5A, sizeof schedule);
    memcpy(&schedule_untouched, &schedule, sizeof schedule);

    const bp_status arg = BP_ERR_INVALID_ARGUMENT;
    CHECK_STATUS(arg, bp_optimizer_options_default((bp_optimizer_kind)5, &options));
    CHECK_STATUS(arg, bp_optimizer_options_default((bp_optimizer_kind)-1, &options));
    CHECK_STATUS(arg, bp_optimizer_options_default(BP_OPTIMIZER_SGD, NULL));
    CHECK(same_bytes(&options, &untouched, sizeof options));
    CHECK_STATUS(arg, bp_schedule_options_default((bp_schedule_rule)5, &schedule));
    CHECK_STATUS(arg, bp_schedule_options_default(BP_SCHEDULE_STEP, NULL));
    CHECK(same_bytes(&schedule, &schedule_untouched, sizeof schedule));

    bp_optimizer *optimizer = NULL;
    CHECK_STATUS(arg, bp_optimizer_create((bp_optimizer_kind)5, NULL, &optimizer));
    CHECK_STATUS(arg, bp_optimizer_create(BP_OPTIMIZER_SGD, NULL, NULL));
    CHECK(optimizer == NULL);

    /* Each case: a kind, then one bad change to its defaults. */
    for (int c = 0; c < 17; c++) {
        bp_optimizer_kind kind = c < 7 ? BP_OPTIMIZER_SGD
                                 : c < 11 ? BP_OPTIMIZER_ADAM
                                 : c < 13 ? BP_OPTIMIZER_RMSPROP
                                 : c < 15 ? BP_OPTIMIZER_ADAGRAD : BP_OPTIMIZER_ADAMW;
        if (!CHECK_OK(bp_optimizer_options_default(kind, &options))) {
            continue;
        }
        CHECK_EQ(options.size, sizeof options);
        switch (c) {
        case 0: options.size = sizeof options - 1; break;
        case 1: options.size = 0; break;
        case 2: options.learning_rate = -0.1; break;
        case 3: options.learning_rate = NAN; break;
        case 4: options.momentum = -0.5; break;
        case 5: options.momentum = 0; options.nesterov = 1; break; /* nesterov needs momentum */
        case 6: options.momentum = 0.9; options.dampening = 0.5; options.nesterov = 1; break;
        case 7: options.beta1 = 1.0; break;
        case 8: options.beta2 = -0.1; break;
        case 9: options.eps = -1e-8; break;
        case 10: options.weight_decay = -0.01; break;
        case 11: options.alpha = -0.5; break;
        case 12: options.learning_rate = INFINITY; break;
        case 13: options.lr_decay = -1; break;
        case 14: options.initial_accumulator_value = -1; break;
        case 15: options.beta1 = NAN; break;
        default: options.weight_decay = INFINITY; break;
        }
        CHECK_CONTEXT("bad optimizer option case");
        CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_create(kind, &options, &optimizer));
        CHECK_CONTEXT(NULL);
        if (!CHECK(optimizer == NULL)) {
            printf("     (case %d)\n", c);
            bp_optimizer_free(optimizer);
            optimizer = NULL;
        }
    }

    /* The defaults of every kind are accepted, given or not. */
    for (int kind = 0; kind <= BP_OPTIMIZER_ADAGRAD; kind++) {
        CHECK_OK(bp_optimizer_options_default((bp_optimizer_kind)kind, &options));
        CHECK_OK(bp_optimizer_create((bp_optimizer_kind)kind, &options, &optimizer));
        CHECK_OK(bp_optimizer_free(optimizer));
        optimizer = NULL;
        CHECK_OK(bp_optimizer_create((bp_optimizer_kind)kind, NULL, &optimizer));
        CHECK_OK(bp_optimizer_free(optimizer));
        optimizer = NULL;
    }
}

/* Calls every function that takes an optimizer with `bad` in its place. */
static void check_optimizer_functions_reject(bp_optimizer *bad) {
    bp_net *net = new_net(BP_LOSS_MSE);
    bp_graph *graph = NULL;
    bp_schedule_options schedule;
    double rate = -9;
    CHECK_OK(bp_net_graph(net, &graph));
    CHECK_OK(bp_schedule_options_default(BP_SCHEDULE_STEP, &schedule));

    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_step(bad, net));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_step_graph(bad, graph));
    float inputs[2] = {0, 0}, targets[2] = {0, 0}, loss = -9;
    int32_t labels[1] = {0};
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_optimizer_train_step(bad, net, 1, inputs, 2, targets, 2, &loss));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_optimizer_train_step_labels(bad, net, 1, inputs, 2, labels, 1, &loss));
    CHECK(loss == -9);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_learning_rate(bad, &rate));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_set_learning_rate(bad, 0.5));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_reset(bad));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_set_schedule(bad, &schedule));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_schedule_step(bad, NAN, &rate));
    CHECK(rate == -9);
    CHECK_OK(bp_net_free(net));
}

static void test_optimizer_handles_are_checked(void) {
    check_optimizer_functions_reject(NULL);
    CHECK_OK(bp_optimizer_free(NULL));

    uint64_t local[64];
    memset(local, 0, sizeof local);
    check_optimizer_functions_reject((bp_optimizer *)(void *)local);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_free((bp_optimizer *)(void *)local));

    /* Handles of the other kinds are not optimizers, and an optimizer is neither of them. */
    bp_net *net = new_net(BP_LOSS_MSE);
    fixture f = make_fixture();
    check_optimizer_functions_reject((bp_optimizer *)(void *)net);
    check_optimizer_functions_reject((bp_optimizer *)(void *)f.graph);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_free((bp_optimizer *)(void *)net));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_free((bp_optimizer *)(void *)f.graph));

    bp_optimizer *optimizer = NULL;
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, NULL, &optimizer));
    check_net_functions_reject((bp_net *)(void *)optimizer);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_forward((bp_graph *)(void *)optimizer));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_free((bp_net *)(void *)optimizer));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_graph_free((bp_graph *)(void *)optimizer));
    /* The network and graph arguments of a step are checked too. */
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_step(optimizer, NULL));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_step(optimizer, (bp_net *)(void *)f.graph));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_step(optimizer, (bp_net *)(void *)local));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_step_graph(optimizer, NULL));
    float inputs[2] = {0, 0}, targets[2] = {0, 0};
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_optimizer_train_step(optimizer, NULL, 1, inputs, 2, targets, 2, NULL));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_train_step(
                     optimizer, (bp_net *)(void *)f.graph, 1, inputs, 2, targets, 2, NULL));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_optimizer_step_graph(optimizer, (bp_graph *)(void *)net));

    /* Freed, then used and freed again. */
    CHECK_OK(bp_optimizer_free(optimizer));
    check_optimizer_functions_reject(optimizer);
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_optimizer_free(optimizer));

    check_graph_still_works(&f);
    CHECK_OK(bp_graph_free(f.graph));
    CHECK_OK(bp_net_free(net));
}

static void test_optimizer_rejects_bad_rates_and_schedules(void) {
    bp_optimizer *optimizer = NULL;
    bp_optimizer_options options;
    bp_schedule_options schedule;
    double rate = -9;
    CHECK_OK(bp_optimizer_options_default(BP_OPTIMIZER_SGD, &options));
    options.learning_rate = 0.25;
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, &options, &optimizer));

    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_learning_rate(optimizer, NULL));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_set_learning_rate(optimizer, -1));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_set_learning_rate(optimizer, NAN));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_set_learning_rate(optimizer, INFINITY));
    /* No schedule yet. */
    CHECK_STATUS(BP_ERR_STATE, bp_optimizer_schedule_step(optimizer, 1.0, &rate));
    CHECK(rate == -9);

    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_set_schedule(optimizer, NULL));
    for (int c = 0; c < 6; c++) {
        bp_schedule_rule rule = c < 3 ? BP_SCHEDULE_STEP
                                : c < 5 ? BP_SCHEDULE_REDUCE_ON_PLATEAU : BP_SCHEDULE_COSINE;
        if (!CHECK_OK(bp_schedule_options_default(rule, &schedule))) {
            continue;
        }
        CHECK_EQ(schedule.size, sizeof schedule);
        CHECK_EQ(schedule.rule, rule);
        switch (c) {
        case 0: schedule.size = sizeof schedule - 1; break;
        case 1: schedule.gamma = NAN; break;
        case 2: schedule.rule = (bp_schedule_rule)9; break;
        case 3: schedule.factor = 1.0; break; /* must be in (0, 1) */
        case 4: schedule.factor = 0.0; break;
        default: schedule.min_lr = -1; break;
        }
        CHECK_CONTEXT("bad schedule option case");
        CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_set_schedule(optimizer, &schedule));
        CHECK_CONTEXT(NULL);
    }
    /* Still no schedule, and the rate is as it was. */
    CHECK_STATUS(BP_ERR_STATE, bp_optimizer_schedule_step(optimizer, 1.0, &rate));
    CHECK_OK(bp_optimizer_learning_rate(optimizer, &rate));
    CHECK(rate == 0.25);
    CHECK_OK(bp_optimizer_free(optimizer));
}

static void test_optimizer_sized_for_another_network_is_refused(void) {
    bp_net *small = new_net(BP_LOSS_MSE);
    bp_net *big = NULL;
    bp_optimizer *optimizer = NULL;
    float outputs[8], before[64], after[64];
    CHECK_OK(bp_net_create(2, 9, &big));
    CHECK_OK(bp_net_add_dense(big, 5, BP_ACTIVATION_RELU));
    CHECK_OK(bp_net_add_dense(big, 2, BP_ACTIVATION_NONE));
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_ADAM, NULL, &optimizer));

    CHECK_OK(bp_net_forward(small, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_OK(bp_net_backward(small, XOR_TARGETS, 8, NULL));
    CHECK_OK(bp_optimizer_step(optimizer, small));

    CHECK_OK(bp_net_forward(big, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_OK(bp_net_backward(big, XOR_TARGETS, 8, NULL));
    bp_graph *graph = NULL;
    bp_node w = UNTOUCHED_NODE;
    CHECK_OK(bp_net_graph(big, &graph));
    CHECK_OK(bp_net_layer_nodes(big, 0, &w, NULL));
    CHECK_OK(bp_graph_value(graph, w, before, 10));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_step(optimizer, big));
    CHECK_OK(bp_graph_value(graph, w, after, 10));
    CHECK(same_floats(before, after, 10));

    /* After a reset it sizes itself anew. */
    CHECK_OK(bp_optimizer_reset(optimizer));
    CHECK_OK(bp_optimizer_step(optimizer, big));
    CHECK_OK(bp_optimizer_free(optimizer));
    CHECK_OK(bp_net_free(small));
    CHECK_OK(bp_net_free(big));
}

/* Makes the first layer's weight gradient infinite through the network's graph: the gradient
 * of sum(W0 * C + W0 * C) is 2 C, and C = 3e38 puts that past FLT_MAX. Returns the weight. */
static bp_node make_infinite_gradient(bp_net *net) {
    bp_graph *graph = NULL;
    bp_node w = UNTOUCHED_NODE, c = UNTOUCHED_NODE, p = UNTOUCHED_NODE, q = UNTOUCHED_NODE;
    bp_node total = UNTOUCHED_NODE;
    static const size_t s32[] = {3, 2};
    float huge[6];
    for (int i = 0; i < 6; i++) {
        huge[i] = 3e38f;
    }
    CHECK_OK(bp_net_graph(net, &graph));
    CHECK_OK(bp_net_layer_nodes(net, 0, &w, NULL));
    CHECK_OK(bp_graph_constant(graph, s32, 2, &c));
    CHECK_OK(bp_graph_set_value(graph, c, huge, 6));
    CHECK_OK(bp_graph_mul(graph, w, c, &p));
    CHECK_OK(bp_graph_add(graph, p, p, &q));
    CHECK_OK(bp_graph_sum(graph, q, &total));
    CHECK_OK(bp_graph_forward(graph));
    CHECK_OK(bp_graph_zero_grad(graph));
    CHECK_OK(bp_graph_backward(graph, total));
    float grad[6] = {0};
    CHECK_OK(bp_graph_grad(graph, w, grad, 6));
    CHECK(isinf(grad[0]));
    return w;
}

static void test_nonfinite_gradients_change_no_weights_anywhere(void) {
    bp_net *net = new_net(BP_LOSS_MSE);
    bp_net *twin = new_net(BP_LOSS_MSE); /* same seed: the same weights */
    float weights[NET_PARAMETERS], grads[NET_PARAMETERS], now[NET_PARAMETERS], outputs[8];
    double norm = -9;
    bp_optimizer *adam = NULL, *fresh = NULL;
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_ADAM, NULL, &adam));
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_ADAM, NULL, &fresh));

    make_infinite_gradient(net);
    CHECK_EQ(read_parameters(net, 0, weights), NET_PARAMETERS);
    CHECK_EQ(read_parameters(net, 1, grads), NET_PARAMETERS);

    CHECK_STATUS(BP_ERR_NONFINITE, bp_net_update(net, 0.1f));
    CHECK_STATUS(BP_ERR_NONFINITE, bp_optimizer_step(adam, net));
    CHECK_STATUS(BP_ERR_NONFINITE, bp_net_clip_grad_norm(net, 1.0, &norm));
    CHECK(norm == -9);
    CHECK_EQ(read_parameters(net, 0, now), NET_PARAMETERS);
    CHECK(same_floats(weights, now, NET_PARAMETERS));
    CHECK_EQ(read_parameters(net, 1, now), NET_PARAMETERS);
    CHECK(memcmp(grads, now, sizeof now) == 0); /* not clipped either */

    /* The failed step left Adam's state (moments, step count) as new: from here on it moves the
     * weights exactly as a fresh Adam moves the twin's. */
    CHECK_OK(bp_net_zero_grad(net));
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_OK(bp_net_backward(net, XOR_TARGETS, 8, NULL));
    CHECK_OK(bp_optimizer_step(adam, net));
    CHECK_OK(bp_net_forward(twin, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_OK(bp_net_backward(twin, XOR_TARGETS, 8, NULL));
    CHECK_OK(bp_optimizer_step(fresh, twin));
    CHECK_EQ(read_parameters(net, 0, weights), NET_PARAMETERS);
    CHECK_EQ(read_parameters(twin, 0, now), NET_PARAMETERS);
    CHECK(same_floats(weights, now, NET_PARAMETERS));

    CHECK_OK(bp_optimizer_free(adam));
    CHECK_OK(bp_optimizer_free(fresh));
    CHECK_OK(bp_net_free(net));
    CHECK_OK(bp_net_free(twin));
}

static void test_optimizer_step_on_a_graph_with_nonfinite_gradient_changes_nothing(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s2[] = {2};
    static const float start[2] = {1, 2}, huge[2] = {3e38f, 3e38f};
    bp_node w = leaf(g, 1, s2, 1), c = leaf(g, 2, s2, 1);
    bp_node p = UNTOUCHED_NODE, q = UNTOUCHED_NODE, total = UNTOUCHED_NODE;
    bp_optimizer *sgd = NULL;
    float now[2];
    CHECK_OK(bp_graph_set_value(g, w, start, 2));
    CHECK_OK(bp_graph_set_value(g, c, huge, 2));
    CHECK_OK(bp_graph_mul(g, w, c, &p));
    CHECK_OK(bp_graph_add(g, p, p, &q));
    CHECK_OK(bp_graph_sum(g, q, &total));
    CHECK_OK(bp_graph_forward(g));
    CHECK_OK(bp_graph_backward(g, total));
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, NULL, &sgd));
    CHECK_STATUS(BP_ERR_NONFINITE, bp_optimizer_step_graph(sgd, g));
    CHECK_OK(bp_graph_value(g, w, now, 2));
    CHECK(same_floats(now, start, 2));
    CHECK_OK(bp_optimizer_free(sgd));
    CHECK_OK(bp_graph_free(g));
}

static void test_clipping_rejects_bad_limits(void) {
    bp_net *net = new_net(BP_LOSS_MSE);
    float grads[NET_PARAMETERS], now[NET_PARAMETERS], outputs[8];
    double norm = -9;
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_OK(bp_net_backward(net, XOR_TARGETS, 8, NULL));
    CHECK_EQ(read_parameters(net, 1, grads), NET_PARAMETERS);

    static const double bad[] = {0.0, -1.0, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_clip_grad_norm(net, bad[i], &norm));
        CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_net_clip_grad_value(net, bad[i]));
    }
    CHECK(norm == -9);
    CHECK_EQ(read_parameters(net, 1, now), NET_PARAMETERS);
    CHECK(memcmp(grads, now, sizeof now) == 0);

    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_clip_grad_norm(NULL, 1.0, &norm));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_clip_grad_value(NULL, 1.0));
    /* total_norm may be NULL. */
    CHECK_OK(bp_net_clip_grad_norm(net, 1e6, NULL));
    CHECK_OK(bp_net_free(net));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_clip_grad_norm(net, 1.0, &norm));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_clip_grad_value(net, 1.0));
}

/* ---- fit and evaluate ------------------------------------------------------------------- */

/* Calls bp_net_fit / _labels with one thing wrong at a time; every call must fail with the
 * expected status and change neither the weights nor *result. */
static void check_fit_fails(bp_status expected, bp_net *net, bp_optimizer *optimizer,
                            size_t samples, const float *inputs, size_t input_count,
                            const float *targets, size_t target_count,
                            const bp_fit_options *options, const char *what) {
    float before[NET_PARAMETERS], after[NET_PARAMETERS];
    bp_fit_result result;
    memset(&result, 0x5A, sizeof result);
    result.size = sizeof result;
    bp_fit_result untouched = result;
    CHECK_CONTEXT(what);
    CHECK_EQ(read_parameters(net, 0, before), NET_PARAMETERS);
    CHECK_STATUS(expected, bp_net_fit(net, optimizer, samples, inputs, input_count, targets,
                                      target_count, options, &result));
    CHECK_EQ(read_parameters(net, 0, after), NET_PARAMETERS);
    CHECK(same_floats(before, after, NET_PARAMETERS));
    CHECK(memcmp(&result, &untouched, sizeof result) == 0);
    CHECK_CONTEXT(NULL);
}

/* What the epoch callback below needs: the network it calls into, and where to put the status. */
typedef struct busy_probe {
    bp_net *net;
    bp_status seen;
} busy_probe;

static int calls_into_the_busy_net(const bp_epoch_report *report, void *userdata) {
    busy_probe *probe = userdata;
    (void)report;
    probe->seen = bp_net_zero_grad(probe->net);
    return 1; /* stop after the first epoch */
}

static void test_fit_and_evaluate_reject_bad_input(void) {
    bp_net *net = new_net(BP_LOSS_MSE);
    bp_net *ce = new_net(BP_LOSS_CROSS_ENTROPY);
    bp_optimizer *optimizer = NULL;
    bp_fit_options options, defaults;
    float inputs[8], targets[8];
    int32_t labels[4];
    memcpy(inputs, XOR_INPUTS, sizeof inputs);
    memcpy(targets, XOR_TARGETS, sizeof targets);
    memcpy(labels, XOR_LABELS, sizeof labels);
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, NULL, &optimizer));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_fit_options_default(NULL));
    CHECK_OK(bp_fit_options_default(&defaults));
    CHECK_EQ(defaults.size, sizeof defaults);

    const bp_status arg = BP_ERR_INVALID_ARGUMENT;
    check_fit_fails(BP_ERR_INVALID_HANDLE, net, NULL, 4, inputs, 8, targets, 8, NULL,
                    "NULL optimizer");
    check_fit_fails(BP_ERR_INVALID_HANDLE, net, (bp_optimizer *)(void *)net, 4, inputs, 8,
                    targets, 8, NULL, "net as optimizer");
    check_fit_fails(arg, net, optimizer, 4, NULL, 8, targets, 8, NULL, "NULL inputs");
    check_fit_fails(arg, net, optimizer, 4, inputs, 8, NULL, 8, NULL, "NULL targets");
    check_fit_fails(arg, net, optimizer, 0, inputs, 0, targets, 0, NULL, "no samples");
    check_fit_fails(arg, net, optimizer, 4, inputs, 7, targets, 8, NULL, "short inputs");
    check_fit_fails(arg, net, optimizer, 4, inputs, 8, targets, 9, NULL, "long targets");
    options = defaults;
    options.size = sizeof options - 1;
    check_fit_fails(arg, net, optimizer, 4, inputs, 8, targets, 8, &options, "size too small");
    options = defaults;
    options.batch_size = 0;
    check_fit_fails(arg, net, optimizer, 4, inputs, 8, targets, 8, &options, "batch_size 0");
    options = defaults;
    options.validation_split = 1.0;
    check_fit_fails(arg, net, optimizer, 4, inputs, 8, targets, 8, &options, "split 1");
    options.validation_split = NAN;
    check_fit_fails(arg, net, optimizer, 4, inputs, 8, targets, 8, &options, "split NaN");
    options = defaults;
    options.clip_norm = -1;
    check_fit_fails(arg, net, optimizer, 4, inputs, 8, targets, 8, &options, "clip_norm -1");
    options = defaults;
    options.validation_samples = 2; /* but no validation buffers */
    check_fit_fails(arg, net, optimizer, 4, inputs, 8, targets, 8, &options,
                    "validation set without data");
    inputs[3] = NAN;
    check_fit_fails(BP_ERR_NONFINITE, net, optimizer, 4, inputs, 8, targets, 8, NULL,
                    "NaN input");
    inputs[3] = XOR_INPUTS[3];
    targets[5] = INFINITY;
    check_fit_fails(BP_ERR_NONFINITE, net, optimizer, 4, inputs, 8, targets, 8, NULL,
                    "infinite target");
    targets[5] = XOR_TARGETS[5];

    /* The labels form: for cross-entropy only, labels in range. */
    bp_fit_result result;
    result.size = sizeof result;
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_net_fit_labels(NULL, optimizer, 4, inputs, 8, labels, 4, NULL, &result));
    CHECK_STATUS(arg, bp_net_fit_labels(net, optimizer, 4, inputs, 8, labels, 4, NULL, &result));
    CHECK_STATUS(arg, bp_net_fit(ce, optimizer, 4, inputs, 8, targets, 8, NULL, &result));
    CHECK_STATUS(arg, bp_net_fit_labels(ce, optimizer, 4, inputs, 8, NULL, 4, NULL, &result));
    CHECK_STATUS(arg, bp_net_fit_labels(ce, optimizer, 4, inputs, 8, labels, 3, NULL, &result));
    labels[0] = 2;
    CHECK_STATUS(arg, bp_net_fit_labels(ce, optimizer, 4, inputs, 8, labels, 4, NULL, &result));
    labels[0] = -1;
    CHECK_STATUS(arg, bp_net_fit_labels(ce, optimizer, 4, inputs, 8, labels, 4, NULL, &result));
    labels[0] = XOR_LABELS[0];

    /* No layers yet. */
    bp_net *empty = NULL;
    CHECK_OK(bp_net_create(2, 1, &empty));
    CHECK_STATUS(BP_ERR_STATE,
                 bp_net_fit(empty, optimizer, 4, inputs, 8, targets, 8, NULL, &result));
    CHECK_STATUS(BP_ERR_STATE, bp_net_evaluate(empty, 4, inputs, 8, targets, 8, NULL, NULL));
    CHECK_OK(bp_net_free(empty));

    /* evaluate: the same rules; its out-pointers are written only on success. */
    double loss = -9, accuracy = -9;
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_net_evaluate(NULL, 4, inputs, 8, targets, 8, &loss, &accuracy));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE,
                 bp_net_evaluate_labels(NULL, 4, inputs, 8, labels, 4, &loss, &accuracy));
    CHECK_STATUS(arg, bp_net_evaluate(net, 4, NULL, 8, targets, 8, &loss, &accuracy));
    CHECK_STATUS(arg, bp_net_evaluate(net, 4, inputs, 8, targets, 7, &loss, &accuracy));
    CHECK_STATUS(arg, bp_net_evaluate(net, 0, inputs, 0, targets, 0, &loss, &accuracy));
    CHECK_STATUS(arg, bp_net_evaluate_labels(net, 4, inputs, 8, labels, 4, &loss, &accuracy));
    CHECK_STATUS(arg, bp_net_evaluate(ce, 4, inputs, 8, targets, 8, &loss, &accuracy));
    CHECK_STATUS(arg, bp_net_evaluate_labels(ce, 4, inputs, 9, labels, 4, &loss, &accuracy));
    labels[1] = 5;
    CHECK_STATUS(arg, bp_net_evaluate_labels(ce, 4, inputs, 8, labels, 4, &loss, &accuracy));
    labels[1] = XOR_LABELS[1];
    inputs[0] = NAN;
    CHECK_STATUS(BP_ERR_NONFINITE, bp_net_evaluate(net, 4, inputs, 8, targets, 8, &loss, NULL));
    inputs[0] = XOR_INPUTS[0];
    CHECK(loss == -9 && accuracy == -9);
    CHECK_OK(bp_net_evaluate(net, 4, inputs, 8, targets, 8, NULL, NULL));
    CHECK_OK(bp_net_evaluate_labels(ce, 4, inputs, 8, labels, 4, &loss, &accuracy));
    CHECK(loss > 0 && accuracy >= 0 && accuracy <= 1);

    /* The callback runs while the network is busy: calling into it fails with BUSY. */
    busy_probe probe = {net, BP_OK};
    options = defaults;
    options.epochs = 3;
    options.callback = calls_into_the_busy_net;
    options.userdata = &probe;
    CHECK_OK(bp_net_fit(net, optimizer, 4, inputs, 8, targets, 8, &options, &result));
    CHECK_EQ(probe.seen, BP_ERR_BUSY);
    CHECK_EQ(result.epochs_run, 1);
    CHECK_EQ(result.stopped_by_callback, 1);

    CHECK_OK(bp_optimizer_free(optimizer));
    CHECK_OK(bp_net_free(net));
    CHECK_OK(bp_net_free(ce));
}

int main(void) {
    /* First, while this process has made no call that failed. */
    RUN(test_last_error_is_empty_before_any_failure);
    RUN(test_version_matches_header);
    RUN(test_status_strings_name_every_status);

    RUN(test_graph_create_rejects_null_out_and_unknown_dtype);
    RUN(test_null_graph_is_rejected_by_every_graph_function);
    RUN(test_freed_graph_is_rejected);
    RUN(test_foreign_pointer_is_not_a_graph);
    RUN(test_net_handle_is_not_a_graph);
    RUN(test_graph_owned_by_net_cannot_be_freed);

    RUN(test_null_out_pointers_are_rejected);
    RUN(test_leaf_shapes_are_validated);
    RUN(test_node_ids_from_nowhere_are_invalid_handles);
    RUN(test_shape_mismatch_at_node_creation_leaves_graph_usable);
    RUN(test_unknown_reductions_are_rejected);
    RUN(test_set_value_rejects_bad_buffers);
    RUN(test_value_and_grad_reject_bad_buffers);
    RUN(test_shape_query_rejects_small_capacity);
    RUN(test_backward_from_non_scalar_is_a_shape_error);
    RUN(test_backward_needs_a_fresh_forward);
    RUN(test_invalid_class_labels_fail_forward);
    RUN(test_check_gradients_rejects_bad_arguments);
    RUN(test_new_ops_reject_bad_parameters);
    RUN(test_invalid_indices_fail_gather_and_nll_forward);
    RUN(test_custom_op_rejects_bad_definitions);
    RUN(test_thread_count_rejects_less_than_one);

    RUN(test_net_create_rejects_bad_arguments);
    RUN(test_null_net_is_rejected_by_every_net_function);
    RUN(test_freed_net_is_rejected);
    RUN(test_foreign_pointer_is_not_a_net);
    RUN(test_graph_handle_is_not_a_net);
    RUN(test_add_dense_and_set_loss_reject_bad_arguments);
    RUN(test_net_builders_reject_bad_arguments);
    RUN(test_parameter_access_rejects_bad_buffers);
    RUN(test_net_queries_reject_null_out_and_bad_layer);
    RUN(test_net_forward_rejects_bad_input);
    RUN(test_net_predict_rejects_bad_input);
    RUN(test_net_backward_rejects_bad_targets);
    RUN(test_net_backward_labels_rejects_bad_labels);
    RUN(test_net_update_rejects_bad_learning_rates);
    RUN(test_nonfinite_loss_or_gradients_change_no_weights);
    RUN(test_failed_train_steps_change_nothing);

    RUN(test_optimizer_options_reject_bad_values);
    RUN(test_optimizer_handles_are_checked);
    RUN(test_optimizer_rejects_bad_rates_and_schedules);
    RUN(test_optimizer_sized_for_another_network_is_refused);
    RUN(test_nonfinite_gradients_change_no_weights_anywhere);
    RUN(test_optimizer_step_on_a_graph_with_nonfinite_gradient_changes_nothing);
    RUN(test_clipping_rejects_bad_limits);
    RUN(test_fit_and_evaluate_reject_bad_input);

    return check_summary();
}
