/*
 * test_net.c: networks have the documented structure, compute what their weights say, train,
 * and are reproducible from their seed.
 */
#include "check.h"

#include <math.h>
#include <stdint.h>

enum { MAX_PARAMETERS = 512, MAX_WIDTH = 16 };

/* ---- helpers ---------------------------------------------------------------------------- */

static bp_net *new_net(size_t inputs, uint64_t seed, const size_t *units,
                       const bp_activation *activations, size_t layers, bp_loss loss) {
    bp_net *net = NULL;
    CHECK_OK(bp_net_create(inputs, seed, &net));
    for (size_t i = 0; i < layers; i++) {
        CHECK_OK(bp_net_add_dense(net, units[i], activations[i]));
    }
    CHECK_OK(bp_net_set_loss(net, loss));
    return net;
}

/* 2 -> 8 tanh -> 1, MSE: XOR as regression. */
static bp_net *xor_regression_net(uint64_t seed) {
    static const size_t units[] = {8, 1};
    static const bp_activation acts[] = {BP_ACTIVATION_TANH, BP_ACTIVATION_NONE};
    return new_net(2, seed, units, acts, 2, BP_LOSS_MSE);
}

/* 2 -> 8 relu -> 3, cross-entropy. */
static bp_net *three_class_net(uint64_t seed) {
    static const size_t units[] = {8, 3};
    static const bp_activation acts[] = {BP_ACTIVATION_RELU, BP_ACTIVATION_NONE};
    return new_net(2, seed, units, acts, 2, BP_LOSS_CROSS_ENTROPY);
}

static const float XOR_INPUTS[8] = {0, 0, 0, 1, 1, 0, 1, 1};
static const float XOR_TARGETS[4] = {0, 1, 1, 0};

/* Three well separated clusters of two points each. */
static const float BLOB_INPUTS[12] = {2, 2, 2.5f, 1.5f, -2, 2, -1.5f, 2.5f, 0, -2, 0.5f, -2.5f};
static const int32_t BLOB_LABELS[6] = {0, 0, 1, 1, 2, 2};

/* Copies every weight then bias, layer by layer, (grads = 1: their gradients) into out.
 * Returns how many floats were copied. */
static size_t read_parameters(bp_net *net, int grads, float *out, size_t capacity) {
    bp_graph *graph = NULL;
    size_t layers = 0, copied = 0;
    CHECK_OK(bp_net_graph(net, &graph));
    CHECK_OK(bp_net_layer_count(net, &layers));
    for (size_t layer = 0; layer < layers; layer++) {
        bp_node nodes[2] = {-1, -1};
        CHECK_OK(bp_net_layer_nodes(net, layer, &nodes[0], &nodes[1]));
        for (int i = 0; i < 2; i++) {
            size_t size = 0;
            CHECK_OK(bp_graph_size(graph, nodes[i], &size));
            if (!CHECK(copied + size <= capacity)) {
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

/* Reads one layer's weight [units, in] and bias [units]. */
static void read_layer(bp_net *net, size_t layer, float *weight, size_t weight_count,
                       float *bias, size_t bias_count) {
    bp_graph *graph = NULL;
    bp_node w = -1, b = -1;
    CHECK_OK(bp_net_graph(net, &graph));
    CHECK_OK(bp_net_layer_nodes(net, layer, &w, &b));
    CHECK_OK(bp_graph_value(graph, w, weight, weight_count));
    CHECK_OK(bp_graph_value(graph, b, bias, bias_count));
}

static double activate(bp_activation activation, double x) {
    switch (activation) {
    case BP_ACTIVATION_RELU:
        return x > 0 ? x : 0;
    case BP_ACTIVATION_SIGMOID:
        return 1 / (1 + exp(-x));
    case BP_ACTIVATION_TANH:
        return tanh(x);
    default:
        return x;
    }
}

/* y[units] = activation(W x + b) for one sample, with W [units, in] row-major. */
static void dense(const float *w, const float *b, size_t units, size_t in, bp_activation act,
                  const double *x, double *y) {
    for (size_t j = 0; j < units; j++) {
        double sum = b[j];
        for (size_t k = 0; k < in; k++) {
            sum += (double)w[j * in + k] * x[k];
        }
        y[j] = activate(act, sum);
    }
}

/* ---- structure -------------------------------------------------------------------------- */

static void test_widths_layers_and_parameter_count(void) {
    bp_net *net = NULL;
    size_t value = 99;
    CHECK_OK(bp_net_create(3, 1, &net));
    CHECK_OK(bp_net_input_width(net, &value));
    CHECK_EQ(value, 3);
    CHECK_OK(bp_net_output_width(net, &value)); /* no layers: the input width */
    CHECK_EQ(value, 3);
    CHECK_OK(bp_net_layer_count(net, &value));
    CHECK_EQ(value, 0);
    CHECK_OK(bp_net_parameter_count(net, &value));
    CHECK_EQ(value, 0);

    CHECK_OK(bp_net_add_dense(net, 5, BP_ACTIVATION_RELU));
    CHECK_OK(bp_net_add_dense(net, 2, BP_ACTIVATION_NONE));
    CHECK_OK(bp_net_output_width(net, &value));
    CHECK_EQ(value, 2);
    CHECK_OK(bp_net_layer_count(net, &value));
    CHECK_EQ(value, 2);
    CHECK_OK(bp_net_parameter_count(net, &value));
    CHECK_EQ(value, (3 * 5 + 5) + (5 * 2 + 2));

    /* Weights are [out, in] as in nn.Linear, biases [out]. */
    bp_graph *graph = NULL;
    bp_node w = -1, b = -1;
    size_t shape[BP_MAX_RANK], rank = 0;
    CHECK_OK(bp_net_graph(net, &graph));
    CHECK_OK(bp_net_layer_nodes(net, 0, &w, &b));
    CHECK_OK(bp_graph_shape(graph, w, shape, BP_MAX_RANK, &rank));
    CHECK(rank == 2 && shape[0] == 5 && shape[1] == 3);
    CHECK_OK(bp_graph_shape(graph, b, shape, BP_MAX_RANK, &rank));
    CHECK(rank == 1 && shape[0] == 5);
    CHECK_OK(bp_net_layer_nodes(net, 1, &w, &b));
    CHECK_OK(bp_graph_shape(graph, w, shape, BP_MAX_RANK, &rank));
    CHECK(rank == 2 && shape[0] == 2 && shape[1] == 5);
    CHECK_OK(bp_graph_shape(graph, b, shape, BP_MAX_RANK, &rank));
    CHECK(rank == 1 && shape[0] == 2);

    /* The graph really is a float32 graph. */
    bp_dtype dtype = BP_FLOAT64;
    CHECK_OK(bp_graph_dtype(graph, &dtype));
    CHECK_EQ(dtype, BP_FLOAT32);
    CHECK_OK(bp_net_free(net));
}

static void test_initial_weights_are_uniform_within_pytorch_bounds(void) {
    static const size_t units[] = {16, 4};
    static const bp_activation acts[] = {BP_ACTIVATION_RELU, BP_ACTIVATION_NONE};
    bp_net *net = new_net(9, 5, units, acts, 2, BP_LOSS_MSE);
    float w0[16 * 9], b0[16], w1[4 * 16], b1[4];
    read_layer(net, 0, w0, 16 * 9, b0, 16);
    read_layer(net, 1, w1, 4 * 16, b1, 4);

    /* Layer 0 has 9 inputs: bound 1/3. Layer 1 has 16: bound 1/4. */
    int out_of_bounds = 0, negative = 0, positive = 0;
    for (size_t i = 0; i < 16 * 9; i++) {
        out_of_bounds += fabsf(w0[i]) > 1.0f / 3;
        negative += w0[i] < 0;
        positive += w0[i] > 0;
    }
    for (size_t i = 0; i < 16; i++) {
        out_of_bounds += fabsf(b0[i]) > 1.0f / 3;
    }
    for (size_t i = 0; i < 4 * 16; i++) {
        out_of_bounds += fabsf(w1[i]) > 0.25f;
    }
    for (size_t i = 0; i < 4; i++) {
        out_of_bounds += fabsf(b1[i]) > 0.25f;
    }
    CHECK_EQ(out_of_bounds, 0);
    /* Spread over the whole range, both signs (144 draws: these fail with negligible odds). */
    CHECK(negative > 30 && positive > 30);
    float largest = 0;
    for (size_t i = 0; i < 16 * 9; i++) {
        largest = fabsf(w0[i]) > largest ? fabsf(w0[i]) : largest;
    }
    CHECK(largest > 0.25f);
    CHECK_OK(bp_net_free(net));
}

/* ---- forward and backward against hand computation -------------------------------------- */

static void test_forward_computes_what_the_weights_say(void) {
    /* Three layers covering every activation: 3 -> 4 relu -> 5 sigmoid -> 2 tanh. */
    static const size_t units[] = {4, 5, 2};
    static const bp_activation acts[] = {BP_ACTIVATION_RELU, BP_ACTIVATION_SIGMOID,
                                         BP_ACTIVATION_TANH};
    bp_net *net = new_net(3, 99, units, acts, 3, BP_LOSS_MSE);
    static const float inputs[3 * 3] = {0.5f, -1, 2, -0.3f, 0.8f, 0.1f, 1.5f, 1.5f, -2};
    float outputs[3 * 2];
    CHECK_OK(bp_net_forward(net, 3, inputs, 9, outputs, 6));

    float w0[4 * 3], b0[4], w1[5 * 4], b1[5], w2[2 * 5], b2[2];
    read_layer(net, 0, w0, 12, b0, 4);
    read_layer(net, 1, w1, 20, b1, 5);
    read_layer(net, 2, w2, 10, b2, 2);
    for (size_t i = 0; i < 3; i++) {
        double x[3] = {inputs[i * 3], inputs[i * 3 + 1], inputs[i * 3 + 2]};
        double h0[4], h1[5], y[2];
        dense(w0, b0, 4, 3, BP_ACTIVATION_RELU, x, h0);
        dense(w1, b1, 5, 4, BP_ACTIVATION_SIGMOID, h0, h1);
        dense(w2, b2, 2, 5, BP_ACTIVATION_TANH, h1, y);
        CHECK_NEAR(outputs[i * 2], y[0], 1e-5);
        CHECK_NEAR(outputs[i * 2 + 1], y[1], 1e-5);
    }
    CHECK_OK(bp_net_free(net));
}

static void test_mse_backward_matches_hand_gradients(void) {
    /* 2 -> 3 tanh -> 2 linear, batch 3. With h the hidden activations and y the outputs:
     *   loss = mean((y - t)^2) over all 6 elements, dL/dy = 2 (y - t) / 6,
     *   dL/db2 = sum over the batch of dL/dy, dL/dW2 = (dL/dy)^T h. */
    static const size_t units[] = {3, 2};
    static const bp_activation acts[] = {BP_ACTIVATION_TANH, BP_ACTIVATION_NONE};
    bp_net *net = new_net(2, 3, units, acts, 2, BP_LOSS_MSE);
    static const float inputs[6] = {1, 2, -1, 0.5f, 0.25f, -3};
    static const float targets[6] = {0.5f, -0.5f, 1, 0, -1, 2};
    float outputs[6], loss = -1;
    CHECK_OK(bp_net_zero_grad(net));
    CHECK_OK(bp_net_forward(net, 3, inputs, 6, outputs, 6));
    CHECK_OK(bp_net_backward(net, targets, 6, &loss));

    double expected_loss = 0, dy[6];
    for (int i = 0; i < 6; i++) {
        double d = (double)outputs[i] - targets[i];
        expected_loss += d * d / 6;
        dy[i] = 2 * d / 6;
    }
    CHECK_NEAR(loss, expected_loss, 1e-5 * (1 + expected_loss));

    float w0[6], b0[3], w1[6], b1[2];
    read_layer(net, 0, w0, 6, b0, 3);
    read_layer(net, 1, w1, 6, b1, 2);
    double grad_w1[6] = {0}, grad_b1[2] = {0};
    for (int i = 0; i < 3; i++) {
        double x[2] = {inputs[i * 2], inputs[i * 2 + 1]}, h[3];
        dense(w0, b0, 3, 2, BP_ACTIVATION_TANH, x, h);
        for (int j = 0; j < 2; j++) {
            grad_b1[j] += dy[i * 2 + j];
            for (int k = 0; k < 3; k++) {
                grad_w1[j * 3 + k] += dy[i * 2 + j] * h[k];
            }
        }
    }

    bp_graph *graph = NULL;
    bp_node w = -1, b = -1;
    float got_w[6], got_b[2];
    CHECK_OK(bp_net_graph(net, &graph));
    CHECK_OK(bp_net_layer_nodes(net, 1, &w, &b));
    CHECK_OK(bp_graph_grad(graph, w, got_w, 6));
    CHECK_OK(bp_graph_grad(graph, b, got_b, 2));
    for (int i = 0; i < 6; i++) {
        CHECK_NEAR(got_w[i], grad_w1[i], 1e-5);
    }
    CHECK_NEAR(got_b[0], grad_b1[0], 1e-5);
    CHECK_NEAR(got_b[1], grad_b1[1], 1e-5);
    CHECK_OK(bp_net_free(net));
}

static void test_cross_entropy_backward_matches_softmax_minus_onehot(void) {
    bp_net *net = three_class_net(21);
    float logits[6 * 3], loss = -1;
    CHECK_OK(bp_net_forward(net, 6, BLOB_INPUTS, 12, logits, 18));
    CHECK_OK(bp_net_backward_labels(net, BLOB_LABELS, 6, &loss));

    /* loss = mean over samples of logsumexp(z) - z[label]; dL/db = mean of softmax - onehot. */
    double expected_loss = 0, grad_b[3] = {0, 0, 0};
    for (int i = 0; i < 6; i++) {
        const float *z = &logits[i * 3];
        double top = fmax(z[0], fmax(z[1], z[2]));
        double total = exp(z[0] - top) + exp(z[1] - top) + exp(z[2] - top);
        double lse = top + log(total);
        expected_loss += (lse - z[BLOB_LABELS[i]]) / 6;
        for (int j = 0; j < 3; j++) {
            grad_b[j] += (exp(z[j] - lse) - (j == BLOB_LABELS[i])) / 6;
        }
    }
    CHECK_NEAR(loss, expected_loss, 1e-5);

    bp_graph *graph = NULL;
    bp_node b = -1;
    float got[3];
    CHECK_OK(bp_net_graph(net, &graph));
    CHECK_OK(bp_net_layer_nodes(net, 1, NULL, &b));
    CHECK_OK(bp_graph_grad(graph, b, got, 3));
    for (int j = 0; j < 3; j++) {
        CHECK_NEAR(got[j], grad_b[j], 1e-6);
    }
    CHECK_OK(bp_net_free(net));
}

/* ---- the training steps ----------------------------------------------------------------- */

static void test_update_is_plain_gradient_descent(void) {
    bp_net *net = xor_regression_net(8);
    float before[MAX_PARAMETERS], grads[MAX_PARAMETERS], after[MAX_PARAMETERS], outputs[4];
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 4));
    CHECK_OK(bp_net_backward(net, XOR_TARGETS, 4, NULL)); /* loss may be NULL */
    size_t n = read_parameters(net, 0, before, MAX_PARAMETERS);
    CHECK_EQ(read_parameters(net, 1, grads, MAX_PARAMETERS), n);
    CHECK_EQ(n, 2 * 8 + 8 + 8 + 1);

    const float lr = 0.25f;
    CHECK_OK(bp_net_update(net, lr));
    CHECK_EQ(read_parameters(net, 0, after, MAX_PARAMETERS), n);
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK_NEAR(after[i], before[i] - lr * grads[i], 1e-7);
        nonzero += grads[i] != 0;
    }
    CHECK(nonzero > (int)n / 2);

    /* Gradients are kept after the update. */
    float grads_after[MAX_PARAMETERS];
    CHECK_EQ(read_parameters(net, 1, grads_after, MAX_PARAMETERS), n);
    CHECK(memcmp(grads, grads_after, n * sizeof(float)) == 0);
    CHECK_OK(bp_net_free(net));
}

static void test_gradients_accumulate_until_zero_grad(void) {
    bp_net *net = xor_regression_net(8);
    float once[MAX_PARAMETERS], twice[MAX_PARAMETERS], outputs[4], loss1 = 0, loss2 = 0;
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 4));
    CHECK_OK(bp_net_backward(net, XOR_TARGETS, 4, &loss1));
    size_t n = read_parameters(net, 1, once, MAX_PARAMETERS);
    CHECK_OK(bp_net_backward(net, XOR_TARGETS, 4, &loss2));
    CHECK(loss1 == loss2);
    CHECK_EQ(read_parameters(net, 1, twice, MAX_PARAMETERS), n);
    for (size_t i = 0; i < n; i++) {
        CHECK_NEAR(twice[i], 2 * once[i], 1e-6);
    }
    CHECK_OK(bp_net_zero_grad(net));
    CHECK_EQ(read_parameters(net, 1, twice, MAX_PARAMETERS), n);
    for (size_t i = 0; i < n; i++) {
        CHECK(twice[i] == 0);
    }
    CHECK_OK(bp_net_free(net));
}

static void test_backward_after_update_needs_a_new_forward(void) {
    bp_net *net = xor_regression_net(8);
    float outputs[4];
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 4));
    CHECK_OK(bp_net_backward(net, XOR_TARGETS, 4, NULL));
    CHECK_OK(bp_net_update(net, 0.1f));
    /* The weights changed, so the kept forward pass is stale. */
    CHECK_STATUS(BP_ERR_STATE, bp_net_backward(net, XOR_TARGETS, 4, NULL));
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 4));
    CHECK_OK(bp_net_backward(net, XOR_TARGETS, 4, NULL));
    CHECK_OK(bp_net_free(net));
}

static void test_train_step_lowers_the_mse_loss(void) {
    bp_net *net = xor_regression_net(1);
    float first = -1, loss = -1;
    CHECK_OK(bp_net_train_step(net, 4, XOR_INPUTS, 8, XOR_TARGETS, 4, 0.2f, &first));
    for (int step = 0; step < 1500; step++) {
        if (!CHECK_OK(bp_net_train_step(net, 4, XOR_INPUTS, 8, XOR_TARGETS, 4, 0.2f, &loss))) {
            break;
        }
    }
    printf("    mse: first loss %g, last loss %g\n", first, loss);
    CHECK(first > 0.05f);
    CHECK(loss < first / 10);
    CHECK(loss < 0.02f);

    /* It learned XOR. */
    float outputs[4];
    CHECK_OK(bp_net_predict(net, 4, XOR_INPUTS, 8, outputs, 4));
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(outputs[i], XOR_TARGETS[i], 0.25);
    }
    CHECK_OK(bp_net_free(net));
}

static void test_train_step_labels_lowers_the_cross_entropy_loss(void) {
    bp_net *net = three_class_net(2);
    float first = -1, loss = -1;
    CHECK_OK(bp_net_train_step_labels(net, 6, BLOB_INPUTS, 12, BLOB_LABELS, 6, 0.1f, &first));
    for (int step = 0; step < 300; step++) {
        if (!CHECK_OK(bp_net_train_step_labels(net, 6, BLOB_INPUTS, 12, BLOB_LABELS, 6, 0.1f,
                                               &loss))) {
            break;
        }
    }
    printf("    cross-entropy: first loss %g, last loss %g\n", first, loss);
    CHECK(first > 0.3f);
    CHECK(loss < first / 10);

    float logits[18];
    CHECK_OK(bp_net_predict(net, 6, BLOB_INPUTS, 12, logits, 18));
    for (int i = 0; i < 6; i++) {
        const float *z = &logits[i * 3];
        int best = z[1] > z[0] ? 1 : 0;
        best = z[2] > z[best] ? 2 : best;
        CHECK_EQ(best, BLOB_LABELS[i]);
    }
    CHECK_OK(bp_net_free(net));
}

/* The parameters of two networks are the same, bit for bit. */
static void check_same_parameters(bp_net *a, bp_net *b) {
    float wa[MAX_PARAMETERS], wb[MAX_PARAMETERS];
    size_t n = read_parameters(a, 0, wa, MAX_PARAMETERS);
    CHECK_EQ(read_parameters(b, 0, wb, MAX_PARAMETERS), n);
    CHECK(memcmp(wa, wb, n * sizeof(float)) == 0);
}

static void test_train_step_equals_the_four_separate_calls(void) {
    bp_net *a = xor_regression_net(77);
    bp_net *b = xor_regression_net(77);
    float outputs[4];
    for (int step = 0; step < 25; step++) {
        float loss_a = -1, loss_b = -2;
        CHECK_OK(bp_net_train_step(a, 4, XOR_INPUTS, 8, XOR_TARGETS, 4, 0.3f, &loss_a));
        CHECK_OK(bp_net_zero_grad(b));
        CHECK_OK(bp_net_forward(b, 4, XOR_INPUTS, 8, outputs, 4));
        CHECK_OK(bp_net_backward(b, XOR_TARGETS, 4, &loss_b));
        CHECK_OK(bp_net_update(b, 0.3f));
        CHECK(loss_a == loss_b);
    }
    check_same_parameters(a, b);
    CHECK_OK(bp_net_free(a));
    CHECK_OK(bp_net_free(b));
}

/* One optimizer step of `optimizer` on `net` through the four calls, for comparison. */
static void four_call_step(bp_optimizer *optimizer, bp_net *net, const int32_t *labels,
                           float *loss) {
    float outputs[18];
    CHECK_OK(bp_net_zero_grad(net));
    CHECK_OK(bp_net_forward(net, 6, BLOB_INPUTS, 12, outputs, 18));
    CHECK_OK(bp_net_backward_labels(net, labels, 6, loss));
    CHECK_OK(bp_optimizer_step(optimizer, net));
}

static void test_optimizer_train_step_equals_the_four_separate_calls(void) {
    for (int kind = BP_OPTIMIZER_SGD; kind <= BP_OPTIMIZER_ADAM; kind++) {
        bp_optimizer_options options;
        CHECK_OK(bp_optimizer_options_default((bp_optimizer_kind)kind, &options));
        options.momentum = 0.9; /* read by SGD only */
        bp_optimizer *one = NULL, *four = NULL;
        CHECK_OK(bp_optimizer_create((bp_optimizer_kind)kind, &options, &one));
        CHECK_OK(bp_optimizer_create((bp_optimizer_kind)kind, &options, &four));
        bp_net *a = three_class_net(5), *b = three_class_net(5);
        for (int step = 0; step < 10; step++) {
            float loss_a = -1, loss_b = -2;
            CHECK_OK(bp_optimizer_train_step_labels(one, a, 6, BLOB_INPUTS, 12, BLOB_LABELS, 6,
                                                    &loss_a));
            four_call_step(four, b, BLOB_LABELS, &loss_b);
            CHECK(loss_a == loss_b);
        }
        check_same_parameters(a, b);
        CHECK_OK(bp_net_free(a));
        CHECK_OK(bp_net_free(b));
        CHECK_OK(bp_optimizer_free(one));
        CHECK_OK(bp_optimizer_free(four));
    }
}

static void test_optimizer_train_step_refusals_change_nothing(void) {
    bp_optimizer_options options;
    CHECK_OK(bp_optimizer_options_default(BP_OPTIMIZER_SGD, &options));
    options.momentum = 0.9;
    bp_optimizer *optimizer = NULL, *twin = NULL;
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, &options, &optimizer));
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, &options, &twin));
    bp_net *net = three_class_net(6), *copy = three_class_net(6);
    float loss = -1;
    CHECK_OK(bp_optimizer_train_step_labels(optimizer, net, 6, BLOB_INPUTS, 12, BLOB_LABELS, 6,
                                            &loss));
    four_call_step(twin, copy, BLOB_LABELS, &loss);

    float before[MAX_PARAMETERS], grads[MAX_PARAMETERS], after[MAX_PARAMETERS];
    size_t n = read_parameters(net, 0, before, MAX_PARAMETERS);
    read_parameters(net, 1, grads, MAX_PARAMETERS);
    const int32_t bad_labels[6] = {0, 0, 1, 3, 2, 2};
    float bad_inputs[12];
    memcpy(bad_inputs, BLOB_INPUTS, sizeof bad_inputs);
    bad_inputs[5] = INFINITY;
    float targets[18] = {0};
    loss = -7;
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_train_step_labels(
                     optimizer, net, 6, BLOB_INPUTS, 12, bad_labels, 6, &loss));
    CHECK_STATUS(BP_ERR_NONFINITE, bp_optimizer_train_step_labels(
                     optimizer, net, 6, bad_inputs, 12, BLOB_LABELS, 6, &loss));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_train_step_labels(
                     optimizer, net, 6, BLOB_INPUTS, 11, BLOB_LABELS, 6, &loss));
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_train_step(
                     optimizer, net, 6, BLOB_INPUTS, 12, targets, 18, &loss)); /* not MSE */
    /* The optimizer's momentum is sized for `net`: a network of another size is refused. */
    bp_net *other = xor_regression_net(3);
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_optimizer_train_step(
                     optimizer, other, 4, XOR_INPUTS, 8, XOR_TARGETS, 4, &loss));
    CHECK(loss == -7);
    CHECK_EQ(read_parameters(net, 0, after, MAX_PARAMETERS), n);
    CHECK(memcmp(before, after, n * sizeof(float)) == 0);
    read_parameters(net, 1, after, MAX_PARAMETERS);
    CHECK(memcmp(grads, after, n * sizeof(float)) == 0);

    /* Nothing changed, the momentum included: the next step still matches the four calls. */
    float loss_a = -1, loss_b = -2;
    CHECK_OK(bp_optimizer_train_step_labels(optimizer, net, 6, BLOB_INPUTS, 12, BLOB_LABELS, 6,
                                            &loss_a));
    four_call_step(twin, copy, BLOB_LABELS, &loss_b);
    CHECK(loss_a == loss_b);
    check_same_parameters(net, copy);
    CHECK_OK(bp_net_free(net));
    CHECK_OK(bp_net_free(copy));
    CHECK_OK(bp_net_free(other));
    CHECK_OK(bp_optimizer_free(optimizer));
    CHECK_OK(bp_optimizer_free(twin));
}

/* Every node of two networks' graphs reads the same: each value and gradient gives the same
 * status and, where it is OK, the same bits. */
static void check_same_graphs(bp_net *a, bp_net *b) {
    bp_graph *ga = NULL, *gb = NULL;
    size_t na = 0, nb = 0;
    CHECK_OK(bp_net_graph(a, &ga));
    CHECK_OK(bp_net_graph(b, &gb));
    CHECK_OK(bp_graph_node_count(ga, &na));
    CHECK_OK(bp_graph_node_count(gb, &nb));
    CHECK_EQ(na, nb);
    enum { MAX_NODE = 1024 };
    float va[MAX_NODE], vb[MAX_NODE];
    int differing = 0;
    for (bp_node node = 0; (size_t)node < na && (size_t)node < nb; node++) {
        size_t size = 0;
        CHECK_OK(bp_graph_size(ga, node, &size));
        if (size > MAX_NODE) continue;
        for (int grads = 0; grads < 2; grads++) {
            bp_status (*read)(const bp_graph *, bp_node, float *, size_t) =
                grads ? bp_graph_grad : bp_graph_value;
            bp_status sa = read(ga, node, va, size), sb = read(gb, node, vb, size);
            differing += sa != sb || (sa == BP_OK && memcmp(va, vb, size * sizeof(float)) != 0);
        }
    }
    CHECK_EQ(differing, 0);
}

/* A one-call step (which plans its work for networks of dense layers) against the four calls,
 * through activations of every kind, batch sizes that change, a layer added halfway, and a
 * node of the caller's on the graph: the same losses, and every node reads the same. */
static void test_one_call_step_leaves_the_graph_as_the_four_calls_do(void) {
    static const size_t units[] = {5, 4, 3};
    static const bp_activation acts[] = {BP_ACTIVATION_SIGMOID, BP_ACTIVATION_NONE,
                                         BP_ACTIVATION_TANH};
    static const float inputs[6 * 2] = {2, 2, 2.5f, 1.5f, -2, 2, -1.5f, 2.5f, 0, -2, 0.5f, -2.5f};
    int32_t labels[6] = {0, 1, 2, 2, 1, 0};
    static const size_t batches[] = {6, 3, 6, 1};
    bp_net *one = new_net(2, 9, units, acts, 3, BP_LOSS_CROSS_ENTROPY);
    bp_net *four = new_net(2, 9, units, acts, 3, BP_LOSS_CROSS_ENTROPY);
    bp_optimizer *opt_one = NULL, *opt_four = NULL;
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_ADAM, NULL, &opt_one));
    CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_ADAM, NULL, &opt_four));
    float outputs[6 * 3];
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
            size_t batch = batches[i], width = round ? 2 : 3;
            float loss_one = -1, loss_four = -2;
            CHECK_OK(bp_optimizer_train_step_labels(opt_one, one, batch, inputs, 2 * batch, labels,
                                                    batch, &loss_one));
            CHECK_OK(bp_net_zero_grad(four));
            CHECK_OK(bp_net_forward(four, batch, inputs, 2 * batch, outputs, width * batch));
            CHECK_OK(bp_net_backward_labels(four, labels, batch, &loss_four));
            CHECK_OK(bp_optimizer_step(opt_four, four));
            CHECK(loss_one == loss_four);
            check_same_graphs(one, four);
        }
        if (round == 0) {
            /* Two classes from here on: a ReLU layer of 2, and new optimizers for the new size. */
            CHECK_OK(bp_net_add_dense(one, 2, BP_ACTIVATION_RELU));
            CHECK_OK(bp_net_add_dense(four, 2, BP_ACTIVATION_RELU));
            CHECK_OK(bp_optimizer_reset(opt_one));
            CHECK_OK(bp_optimizer_reset(opt_four));
            static const int32_t binary[6] = {0, 1, 1, 1, 0, 0};
            memcpy(labels, binary, sizeof binary);
        }
    }
    /* The caller's node on top of the outputs sees the new weights after either step. */
    bp_node out_one, out_four, sum_one, sum_four;
    bp_graph *g_one, *g_four;
    CHECK_OK(bp_net_graph(one, &g_one));
    CHECK_OK(bp_net_graph(four, &g_four));
    CHECK_OK(bp_net_nodes(one, NULL, &out_one, NULL));
    CHECK_OK(bp_net_nodes(four, NULL, &out_four, NULL));
    CHECK_OK(bp_graph_sum(g_one, out_one, &sum_one));
    CHECK_OK(bp_graph_sum(g_four, out_four, &sum_four));
    CHECK_OK(bp_graph_forward(g_one));
    CHECK_OK(bp_graph_forward(g_four));
    float loss = 0;
    CHECK_OK(bp_optimizer_train_step_labels(opt_one, one, 6, inputs, 12, labels, 6, &loss));
    CHECK_OK(bp_net_zero_grad(four));
    CHECK_OK(bp_net_forward(four, 6, inputs, 12, outputs, 12));
    CHECK_OK(bp_net_backward_labels(four, labels, 6, &loss));
    CHECK_OK(bp_optimizer_step(opt_four, four));
    float value = 0;
    CHECK_STATUS(BP_ERR_STATE, bp_graph_value(g_one, sum_one, &value, 1));
    check_same_graphs(one, four);
    CHECK_OK(bp_graph_forward(g_one));
    CHECK_OK(bp_graph_forward(g_four));
    check_same_graphs(one, four);
    CHECK_OK(bp_net_free(one));
    CHECK_OK(bp_net_free(four));
    CHECK_OK(bp_optimizer_free(opt_one));
    CHECK_OK(bp_optimizer_free(opt_four));
}

/* The same for MSE and bp_net_train_step's gradient descent. */
static void test_one_call_mse_step_leaves_the_graph_as_the_four_calls_do(void) {
    bp_net *one = xor_regression_net(12), *four = xor_regression_net(12);
    float outputs[4];
    for (int step = 0; step < 5; step++) {
        size_t batch = step == 2 ? 3 : 4;
        float loss_one = -1, loss_four = -2;
        CHECK_OK(bp_net_train_step(one, batch, XOR_INPUTS, 2 * batch, XOR_TARGETS, batch, 0.2f,
                                   &loss_one));
        CHECK_OK(bp_net_zero_grad(four));
        CHECK_OK(bp_net_forward(four, batch, XOR_INPUTS, 2 * batch, outputs, batch));
        CHECK_OK(bp_net_backward(four, XOR_TARGETS, batch, &loss_four));
        CHECK_OK(bp_net_update(four, 0.2f));
        CHECK(loss_one == loss_four);
        check_same_graphs(one, four);
    }
    CHECK_OK(bp_net_free(one));
    CHECK_OK(bp_net_free(four));
}

/* 24 -> 40 ReLU -> 10, cross-entropy: at batch 12, its weight-gradient products are past the
 * small loops (40 x 24 x 12 and 10 x 40 x 12 multiply-adds). */
static bp_net *mid_size_net(uint64_t seed) {
    static const size_t units[] = {40, 10};
    static const bp_activation acts[] = {BP_ACTIVATION_RELU, BP_ACTIVATION_NONE};
    return new_net(24, seed, units, acts, 2, BP_LOSS_CROSS_ENTROPY);
}

/* float32 weight gradients past the small loops go through the library's own GEMM, which
 * stores them whole (instead of adding them to zeros) and checks them as it stores them, at one
 * thread and at two. Either way the one-call step leaves every node as the four calls
 * do, and a gradient that overflows while the loss stays finite is refused with the weights
 * unchanged. */
static void test_larger_steps_store_and_check_weight_gradients(void) {
    const int threads_before = bp_get_num_threads();
    enum { BATCH = 12, INPUTS = 24, CLASSES = 10 };
    float inputs[BATCH * INPUTS], outputs[BATCH * CLASSES];
    int32_t labels[BATCH];
    for (size_t i = 0; i < BATCH * INPUTS; i++) inputs[i] = 2.0f * sinf(0.37f * (float)i + 0.1f);
    for (int i = 0; i < BATCH; i++) labels[i] = (int32_t)(i * 7 % CLASSES);
    for (int threads = 1; threads <= 2; threads++) {
        CHECK_OK(bp_set_num_threads(threads));
        bp_net *one = mid_size_net(3), *four = mid_size_net(3);
        bp_optimizer_options options;
        CHECK_OK(bp_optimizer_options_default(BP_OPTIMIZER_SGD, &options));
        options.momentum = 0.9;
        bp_optimizer *opt_one = NULL, *opt_four = NULL;
        CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, &options, &opt_one));
        CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, &options, &opt_four));
        for (int step = 0; step < 4; step++) {
            float loss_one = -1, loss_four = -2;
            CHECK_OK(bp_optimizer_train_step_labels(opt_one, one, BATCH, inputs, BATCH * INPUTS,
                                                    labels, BATCH, &loss_one));
            CHECK_OK(bp_net_zero_grad(four));
            CHECK_OK(bp_net_forward(four, BATCH, inputs, BATCH * INPUTS, outputs,
                                    BATCH * CLASSES));
            CHECK_OK(bp_net_backward_labels(four, labels, BATCH, &loss_four));
            CHECK_OK(bp_optimizer_step(opt_four, four));
            CHECK(loss_one == loss_four);
            check_same_graphs(one, four);
        }
        CHECK_OK(bp_net_free(one));
        CHECK_OK(bp_net_free(four));
        CHECK_OK(bp_optimizer_free(opt_one));
        CHECK_OK(bp_optimizer_free(opt_four));
    }

    /* MSE, 24 -> 16, weights 1e-20 and inputs 1e30: the loss (about 6e22) is finite, the
     * weight gradient (about 3e40) is not. */
    static const size_t units[] = {16};
    static const bp_activation none[] = {BP_ACTIVATION_NONE};
    enum { OUTPUTS = 16, PARAMETERS = OUTPUTS * INPUTS + OUTPUTS };
    float parameters[PARAMETERS], after[PARAMETERS], huge[BATCH * INPUTS];
    float targets[BATCH * OUTPUTS] = {0};
    for (int i = 0; i < PARAMETERS; i++) parameters[i] = i < OUTPUTS * INPUTS ? 1e-20f : 0.0f;
    for (int i = 0; i < BATCH * INPUTS; i++) huge[i] = 1e30f;
    for (int threads = 1; threads <= 2; threads++) {
        CHECK_OK(bp_set_num_threads(threads));
        bp_net *net = new_net(INPUTS, 5, units, none, 1, BP_LOSS_MSE);
        CHECK_OK(bp_net_set_parameters(net, parameters, PARAMETERS));
        bp_optimizer *optimizer = NULL;
        CHECK_OK(bp_optimizer_create(BP_OPTIMIZER_SGD, NULL, &optimizer));
        float loss = 0;
        CHECK_STATUS(BP_ERR_NONFINITE, bp_optimizer_train_step(optimizer, net, BATCH, huge,
                                                               BATCH * INPUTS, targets,
                                                               BATCH * OUTPUTS, &loss));
        CHECK(strstr(bp_last_error(), "gradient") != NULL);
        CHECK_OK(bp_net_parameters(net, after, PARAMETERS));
        CHECK(memcmp(parameters, after, sizeof after) == 0);
        CHECK_OK(bp_net_free(net));
        CHECK_OK(bp_optimizer_free(optimizer));
    }
    CHECK_OK(bp_set_num_threads(threads_before));
}

static void test_own_nodes_on_the_network_graph_add_a_regularizer(void) {
    /* The header's example: an L2 penalty sum(W0 * W0) built on the network's graph, whose
     * gradient 2 W0 is added to the loss gradient before the update. */
    bp_net *net = xor_regression_net(4);
    bp_graph *graph = NULL;
    bp_node w0 = -1, square = -1, penalty = -1;
    size_t nodes_before = 0, nodes_after = 0;
    CHECK_OK(bp_net_graph(net, &graph));
    CHECK_OK(bp_net_layer_nodes(net, 0, &w0, NULL));
    CHECK_OK(bp_graph_node_count(graph, &nodes_before));
    CHECK_OK(bp_graph_mul(graph, w0, w0, &square));
    CHECK_OK(bp_graph_sum(graph, square, &penalty));
    CHECK_OK(bp_graph_node_count(graph, &nodes_after));
    CHECK_EQ(nodes_after, nodes_before + 2);

    float outputs[4], weights[16], loss_grad[16], total_grad[16], penalty_value = -1;
    CHECK_OK(bp_net_zero_grad(net));
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 4));
    CHECK_OK(bp_net_backward(net, XOR_TARGETS, 4, NULL));
    CHECK_OK(bp_graph_value(graph, w0, weights, 16));
    CHECK_OK(bp_graph_grad(graph, w0, loss_grad, 16));

    CHECK_OK(bp_graph_forward(graph));
    CHECK_OK(bp_graph_value(graph, penalty, &penalty_value, 1));
    double want = 0;
    for (int i = 0; i < 16; i++) {
        want += (double)weights[i] * weights[i];
    }
    CHECK_NEAR(penalty_value, want, 1e-5);
    CHECK_OK(bp_graph_backward(graph, penalty));
    CHECK_OK(bp_graph_grad(graph, w0, total_grad, 16));
    for (int i = 0; i < 16; i++) {
        CHECK_NEAR(total_grad[i], loss_grad[i] + 2 * weights[i], 1e-6);
    }

    /* The network still trains with the extra nodes in its graph. */
    CHECK_OK(bp_net_update(net, 0.1f));
    CHECK_OK(bp_net_train_step(net, 4, XOR_INPUTS, 8, XOR_TARGETS, 4, 0.1f, NULL));
    CHECK_OK(bp_net_free(net));
}

/* ---- reproducibility -------------------------------------------------------------------- */

static void test_same_seed_gives_same_weights_and_losses(void) {
    bp_net *a = three_class_net(42);
    bp_net *b = three_class_net(42);
    bp_net *c = three_class_net(43);
    float wa[MAX_PARAMETERS], wb[MAX_PARAMETERS], wc[MAX_PARAMETERS];
    size_t n = read_parameters(a, 0, wa, MAX_PARAMETERS);
    CHECK_EQ(read_parameters(b, 0, wb, MAX_PARAMETERS), n);
    CHECK_EQ(read_parameters(c, 0, wc, MAX_PARAMETERS), n);
    CHECK(memcmp(wa, wb, n * sizeof(float)) == 0);
    CHECK(memcmp(wa, wc, n * sizeof(float)) != 0); /* another seed, other weights */

    for (int step = 0; step < 40; step++) {
        float loss_a = -1, loss_b = -2;
        CHECK_OK(bp_net_train_step_labels(a, 6, BLOB_INPUTS, 12, BLOB_LABELS, 6, 0.05f, &loss_a));
        CHECK_OK(bp_net_train_step_labels(b, 6, BLOB_INPUTS, 12, BLOB_LABELS, 6, 0.05f, &loss_b));
        CHECK(loss_a == loss_b);
    }
    CHECK_EQ(read_parameters(a, 0, wa, MAX_PARAMETERS), n);
    CHECK_EQ(read_parameters(b, 0, wb, MAX_PARAMETERS), n);
    CHECK(memcmp(wa, wb, n * sizeof(float)) == 0);
    CHECK_OK(bp_net_free(a));
    CHECK_OK(bp_net_free(b));
    CHECK_OK(bp_net_free(c));
}

/* ---- predict ---------------------------------------------------------------------------- */

static void test_predict_equals_forward_and_keeps_gradients(void) {
    bp_net *net = three_class_net(5);
    float forward_out[18], predict_out[18];
    float grads_before[MAX_PARAMETERS], grads_after[MAX_PARAMETERS];
    CHECK_OK(bp_net_forward(net, 6, BLOB_INPUTS, 12, forward_out, 18));
    CHECK_OK(bp_net_backward_labels(net, BLOB_LABELS, 6, NULL));
    size_t n = read_parameters(net, 1, grads_before, MAX_PARAMETERS);

    CHECK_OK(bp_net_predict(net, 6, BLOB_INPUTS, 12, predict_out, 18));
    CHECK(memcmp(forward_out, predict_out, sizeof forward_out) == 0);
    CHECK_EQ(read_parameters(net, 1, grads_after, MAX_PARAMETERS), n);
    CHECK(memcmp(grads_before, grads_after, n * sizeof(float)) == 0);
    CHECK_OK(bp_net_free(net));
}

static void test_backward_after_predict_is_a_state_error(void) {
    bp_net *ce = three_class_net(5);
    bp_net *mse = xor_regression_net(5);
    float out[18];

    CHECK_OK(bp_net_forward(ce, 6, BLOB_INPUTS, 12, out, 18));
    CHECK_OK(bp_net_predict(ce, 6, BLOB_INPUTS, 12, out, 18));
    CHECK_STATUS(BP_ERR_STATE, bp_net_backward_labels(ce, BLOB_LABELS, 6, NULL));
    CHECK_OK(bp_net_forward(ce, 6, BLOB_INPUTS, 12, out, 18));
    CHECK_OK(bp_net_backward_labels(ce, BLOB_LABELS, 6, NULL));

    CHECK_OK(bp_net_forward(mse, 4, XOR_INPUTS, 8, out, 4));
    CHECK_OK(bp_net_predict(mse, 4, XOR_INPUTS, 8, out, 4));
    CHECK_STATUS(BP_ERR_STATE, bp_net_backward(mse, XOR_TARGETS, 4, NULL));
    CHECK_OK(bp_net_forward(mse, 4, XOR_INPUTS, 8, out, 4));
    CHECK_OK(bp_net_backward(mse, XOR_TARGETS, 4, NULL));
    CHECK_OK(bp_net_free(ce));
    CHECK_OK(bp_net_free(mse));
}

static void test_batch_size_can_change_between_calls(void) {
    bp_net *net = xor_regression_net(12);
    float all[4], one[1], three[3];
    CHECK_OK(bp_net_predict(net, 4, XOR_INPUTS, 8, all, 4));
    CHECK_OK(bp_net_predict(net, 1, XOR_INPUTS + 2, 2, one, 1));
    CHECK_OK(bp_net_forward(net, 3, XOR_INPUTS + 2, 6, three, 3));
    CHECK_NEAR(one[0], all[1], 1e-6);
    for (int i = 0; i < 3; i++) {
        CHECK_NEAR(three[i], all[i + 1], 1e-6);
    }
    /* Training works at either size. */
    CHECK_OK(bp_net_backward(net, XOR_TARGETS + 1, 3, NULL));
    CHECK_OK(bp_net_train_step(net, 4, XOR_INPUTS, 8, XOR_TARGETS, 4, 0.1f, NULL));
    CHECK_OK(bp_net_train_step(net, 1, XOR_INPUTS, 2, XOR_TARGETS, 1, 0.1f, NULL));
    CHECK_OK(bp_net_free(net));
}

/* bp_net_nodes gives the loss node, so a float64 network's every layer can be checked against
 * finite differences through its graph. */
static void test_a_float64_network_passes_the_gradient_check_through_its_nodes(void) {
    bp_net *net = NULL;
    CHECK_OK(bp_net_create_dtype(BP_FLOAT64, 2, 5, &net));
    CHECK_OK(bp_net_add_dense(net, 4, BP_ACTIVATION_TANH));
    CHECK_OK(bp_net_add_layer_norm(net, 1e-5));
    CHECK_OK(bp_net_add_dense(net, 2, BP_ACTIVATION_NONE));
    CHECK_OK(bp_net_set_loss(net, BP_LOSS_CROSS_ENTROPY));
    bp_node input = 0, output = 0, loss = 0;
    CHECK_OK(bp_net_nodes(net, &input, &output, &loss));
    CHECK_EQ(loss, BP_NO_NODE); /* no backward yet */
    float outputs[8];
    const int32_t labels[4] = {0, 1, 1, 0};
    CHECK_OK(bp_net_forward(net, 4, XOR_INPUTS, 8, outputs, 8));
    CHECK_OK(bp_net_backward_labels(net, labels, 4, NULL));
    CHECK_OK(bp_net_nodes(net, &input, &output, &loss));
    CHECK(loss != BP_NO_NODE && output != input);
    bp_graph *graph = NULL;
    CHECK_OK(bp_net_graph(net, &graph));
    size_t rank = 0, shape[BP_MAX_RANK];
    CHECK_OK(bp_graph_shape(graph, output, shape, BP_MAX_RANK, &rank));
    CHECK(rank == 2 && shape[0] == 4 && shape[1] == 2);
    int passed = 0;
    double error = 1;
    CHECK_OK(bp_graph_check_gradients(graph, loss, 1e-6, 1e-5, 1e-3, &passed, &error));
    CHECK(passed);
    CHECK(error < 1e-6);
    /* The input has no gradient: backward does not compute one. */
    float input_gradient[8];
    CHECK_STATUS(BP_ERR_INVALID_ARGUMENT, bp_graph_grad(graph, input, input_gradient, 8));
    CHECK_STATUS(BP_ERR_INVALID_HANDLE, bp_net_nodes(NULL, &input, NULL, NULL));
    CHECK_OK(bp_net_free(net));
}

int main(void) {
    RUN(test_widths_layers_and_parameter_count);
    RUN(test_a_float64_network_passes_the_gradient_check_through_its_nodes);
    RUN(test_initial_weights_are_uniform_within_pytorch_bounds);
    RUN(test_forward_computes_what_the_weights_say);
    RUN(test_mse_backward_matches_hand_gradients);
    RUN(test_cross_entropy_backward_matches_softmax_minus_onehot);
    RUN(test_update_is_plain_gradient_descent);
    RUN(test_gradients_accumulate_until_zero_grad);
    RUN(test_backward_after_update_needs_a_new_forward);
    RUN(test_train_step_lowers_the_mse_loss);
    RUN(test_train_step_labels_lowers_the_cross_entropy_loss);
    RUN(test_train_step_equals_the_four_separate_calls);
    RUN(test_optimizer_train_step_equals_the_four_separate_calls);
    RUN(test_optimizer_train_step_refusals_change_nothing);
    RUN(test_one_call_step_leaves_the_graph_as_the_four_calls_do);
    RUN(test_one_call_mse_step_leaves_the_graph_as_the_four_calls_do);
    RUN(test_larger_steps_store_and_check_weight_gradients);
    RUN(test_own_nodes_on_the_network_graph_add_a_regularizer);
    RUN(test_same_seed_gives_same_weights_and_losses);
    RUN(test_predict_equals_forward_and_keeps_gradients);
    RUN(test_backward_after_predict_is_a_state_error);
    RUN(test_batch_size_can_change_between_calls);
    return check_summary();
}
