/*
 * test_graph.c: the graph API computes the right values and gradients.
 *
 * Every expected number here is worked out by hand (or by a one-line formula next to it), so a
 * failure points at the op, not at the test.
 */
#include "check.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static bp_graph *new_graph(bp_dtype dtype) {
    bp_graph *graph = NULL;
    CHECK_OK(bp_graph_create(dtype, &graph));
    return graph;
}

static bp_node input(bp_graph *g, const size_t *shape, size_t rank, const float *values) {
    bp_node node = -1;
    size_t count = 1;
    for (size_t i = 0; i < rank; i++) {
        count *= shape[i];
    }
    CHECK_OK(bp_graph_input(g, shape, rank, &node));
    if (values != NULL) {
        CHECK_OK(bp_graph_set_value(g, node, values, count));
    }
    return node;
}

static bp_node constant(bp_graph *g, const size_t *shape, size_t rank, const float *values) {
    bp_node node = -1;
    size_t count = 1;
    for (size_t i = 0; i < rank; i++) {
        count *= shape[i];
    }
    CHECK_OK(bp_graph_constant(g, shape, rank, &node));
    CHECK_OK(bp_graph_set_value(g, node, values, count));
    return node;
}

static bp_node scalar(bp_graph *g, float value) {
    return input(g, NULL, 0, &value);
}

static float value1(const bp_graph *g, bp_node node) {
    float v = NAN;
    CHECK_OK(bp_graph_value(g, node, &v, 1));
    return v;
}

static float grad1(const bp_graph *g, bp_node node) {
    float v = NAN;
    CHECK_OK(bp_graph_grad(g, node, &v, 1));
    return v;
}

/* Compares n floats read from the graph with the expected ones, element by element. */
static void check_floats(const float *got, const double *want, size_t n, double tolerance) {
    for (size_t i = 0; i < n; i++) {
        CHECK_NEAR(got[i], want[i], tolerance * (1.0 + fabs(want[i])));
    }
}

static void check_values(const bp_graph *g, bp_node node, const double *want, size_t n) {
    float got[16];
    if (CHECK(n <= 16) && CHECK_OK(bp_graph_value(g, node, got, n))) {
        check_floats(got, want, n, 1e-5);
    }
}

static void check_grads(const bp_graph *g, bp_node node, const double *want, size_t n) {
    float got[16];
    if (CHECK(n <= 16) && CHECK_OK(bp_graph_grad(g, node, got, n))) {
        check_floats(got, want, n, 1e-5);
    }
}

/* ---- the circuit ------------------------------------------------------------------------ */

typedef struct circuit {
    bp_graph *graph;
    bp_node x, y, z, q, f;
} circuit;

/* f = (x + y) * z with x = -2, y = 5, z = -4. */
static circuit make_circuit(void) {
    circuit c;
    c.graph = new_graph(BP_FLOAT32);
    c.x = scalar(c.graph, -2);
    c.y = scalar(c.graph, 5);
    c.z = scalar(c.graph, -4);
    c.q = -1;
    c.f = -1;
    CHECK_OK(bp_graph_add(c.graph, c.x, c.y, &c.q));
    CHECK_OK(bp_graph_mul(c.graph, c.q, c.z, &c.f));
    return c;
}

static void test_circuit_values_and_gradients(void) {
    circuit c = make_circuit();
    CHECK_OK(bp_graph_forward(c.graph));
    CHECK_NEAR(value1(c.graph, c.q), 3, 0);
    CHECK_NEAR(value1(c.graph, c.f), -12, 0);
    CHECK_OK(bp_graph_backward(c.graph, c.f));
    CHECK_NEAR(grad1(c.graph, c.f), 1, 0); /* the seed */
    CHECK_NEAR(grad1(c.graph, c.q), -4, 0); /* z */
    CHECK_NEAR(grad1(c.graph, c.x), -4, 0); /* z */
    CHECK_NEAR(grad1(c.graph, c.y), -4, 0); /* z */
    CHECK_NEAR(grad1(c.graph, c.z), 3, 0);  /* x + y */
    CHECK_OK(bp_graph_free(c.graph));
}

static void test_leaf_gradients_accumulate_until_zero_grad(void) {
    circuit c = make_circuit();
    CHECK_OK(bp_graph_forward(c.graph));
    CHECK_OK(bp_graph_backward(c.graph, c.f));
    CHECK_OK(bp_graph_backward(c.graph, c.f));
    /* Leaves add up both passes... */
    CHECK_NEAR(grad1(c.graph, c.x), -8, 0);
    CHECK_NEAR(grad1(c.graph, c.y), -8, 0);
    CHECK_NEAR(grad1(c.graph, c.z), 6, 0);
    /* ... op nodes hold the latest pass only. */
    CHECK_NEAR(grad1(c.graph, c.q), -4, 0);

    CHECK_OK(bp_graph_zero_grad(c.graph));
    CHECK_NEAR(grad1(c.graph, c.x), 0, 0);
    CHECK_NEAR(grad1(c.graph, c.z), 0, 0);
    /* Values survive zero_grad, and the forward is still good for another backward. */
    CHECK_NEAR(value1(c.graph, c.f), -12, 0);
    CHECK_OK(bp_graph_backward(c.graph, c.f));
    CHECK_NEAR(grad1(c.graph, c.x), -4, 0);
    CHECK_NEAR(grad1(c.graph, c.z), 3, 0);
    CHECK_OK(bp_graph_free(c.graph));
}

static void test_forward_reruns_with_new_leaf_values(void) {
    circuit c = make_circuit();
    CHECK_OK(bp_graph_forward(c.graph));
    const float x = 1, y = 2, z = 3;
    CHECK_OK(bp_graph_set_value(c.graph, c.x, &x, 1));
    CHECK_OK(bp_graph_set_value(c.graph, c.y, &y, 1));
    CHECK_OK(bp_graph_set_value(c.graph, c.z, &z, 1));
    CHECK_OK(bp_graph_forward(c.graph));
    CHECK_NEAR(value1(c.graph, c.f), 9, 0);
    CHECK_OK(bp_graph_backward(c.graph, c.f));
    CHECK_NEAR(grad1(c.graph, c.x), 3, 0);
    CHECK_NEAR(grad1(c.graph, c.z), 3, 0);
    CHECK_OK(bp_graph_free(c.graph));
}

static void test_node_used_twice_gets_the_sum_of_its_gradients(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    bp_node x = scalar(g, 3);
    bp_node square = -1, plus = -1, twice = -1;
    CHECK_OK(bp_graph_mul(g, x, x, &square));    /* x^2: d/dx = 2x = 6 */
    CHECK_OK(bp_graph_add(g, square, x, &plus)); /* x^2 + x: d/dx = 2x + 1 = 7 */
    CHECK_OK(bp_graph_forward(g));
    CHECK_NEAR(value1(g, plus), 12, 0);
    CHECK_OK(bp_graph_backward(g, square));
    CHECK_NEAR(grad1(g, x), 6, 0);
    CHECK_OK(bp_graph_zero_grad(g));
    CHECK_OK(bp_graph_backward(g, plus));
    CHECK_NEAR(grad1(g, x), 7, 0);

    /* x + x: the same node as both operands of one op. */
    CHECK_OK(bp_graph_add(g, x, x, &twice));
    CHECK_OK(bp_graph_forward(g));
    CHECK_OK(bp_graph_zero_grad(g));
    CHECK_OK(bp_graph_backward(g, twice));
    CHECK_NEAR(grad1(g, x), 2, 0);
    CHECK_OK(bp_graph_free(g));
}

/* ---- broadcasting ----------------------------------------------------------------------- */

static void test_broadcast_row_gradient_is_the_column_sum(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s23[] = {2, 3}, s3[] = {3};
    static const float a_values[6] = {1, 2, 3, 4, 5, 6};
    static const float row_values[3] = {10, 20, 30};
    static const float weights[6] = {1, 2, 3, 4, 5, 6};
    bp_node a = input(g, s23, 2, a_values);
    bp_node row = input(g, s3, 1, row_values);
    bp_node w = constant(g, s23, 2, weights);
    bp_node sum = -1, weighted = -1, loss = -1;
    CHECK_OK(bp_graph_add(g, a, row, &sum));       /* [2,3] + [3] -> [2,3] */
    CHECK_OK(bp_graph_mul(g, sum, w, &weighted));
    CHECK_OK(bp_graph_sum(g, weighted, &loss));    /* L = sum((a + row) * w) */

    size_t shape[BP_MAX_RANK], rank = 0;
    CHECK_OK(bp_graph_shape(g, sum, shape, BP_MAX_RANK, &rank));
    CHECK_EQ(rank, 2);
    CHECK(shape[0] == 2 && shape[1] == 3);

    CHECK_OK(bp_graph_forward(g));
    static const double sum_want[6] = {11, 22, 33, 14, 25, 36};
    check_values(g, sum, sum_want, 6);
    CHECK_NEAR(value1(g, loss), 11 + 44 + 99 + 56 + 125 + 216, 1e-3);

    CHECK_OK(bp_graph_backward(g, loss));
    static const double a_grad[6] = {1, 2, 3, 4, 5, 6};    /* dL/da = w */
    static const double row_grad[3] = {1 + 4, 2 + 5, 3 + 6}; /* column sums of w */
    check_grads(g, a, a_grad, 6);
    check_grads(g, row, row_grad, 3);
    CHECK_OK(bp_graph_free(g));
}

static void test_scalar_and_column_broadcast(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s21[] = {2, 1}, s3[] = {3};
    static const float col_values[2] = {1, 2};
    static const float row_values[3] = {10, 20, 30};
    bp_node col = input(g, s21, 2, col_values);
    bp_node row = input(g, s3, 1, row_values);
    bp_node s = scalar(g, 0.5f);
    bp_node outer = -1, scaled = -1, loss = -1;
    CHECK_OK(bp_graph_add(g, col, row, &outer));  /* [2,1] + [3] -> [2,3]: both broadcast */
    CHECK_OK(bp_graph_mul(g, s, outer, &scaled)); /* scalar * [2,3] */
    CHECK_OK(bp_graph_sum(g, scaled, &loss));

    size_t shape[BP_MAX_RANK], rank = 0;
    CHECK_OK(bp_graph_shape(g, scaled, shape, BP_MAX_RANK, &rank));
    CHECK_EQ(rank, 2);
    CHECK(shape[0] == 2 && shape[1] == 3);

    CHECK_OK(bp_graph_forward(g));
    static const double outer_want[6] = {11, 21, 31, 12, 22, 32};
    check_values(g, outer, outer_want, 6);
    CHECK_NEAR(value1(g, loss), 0.5 * (11 + 21 + 31 + 12 + 22 + 32), 1e-4);

    CHECK_OK(bp_graph_backward(g, loss));
    static const double col_grad[2] = {1.5, 1.5}; /* each column entry meets 3 row entries */
    static const double row_grad[3] = {1, 1, 1};  /* each row entry meets 2 column entries */
    check_grads(g, col, col_grad, 2);
    check_grads(g, row, row_grad, 3);
    CHECK_NEAR(grad1(g, s), 11 + 21 + 31 + 12 + 22 + 32, 1e-4); /* sum(outer) */
    CHECK_OK(bp_graph_free(g));
}

/* ---- matmul ----------------------------------------------------------------------------- */

static void test_matmul_values_and_gradients(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s23[] = {2, 3}, s32[] = {3, 2}, s22[] = {2, 2};
    static const float a_values[6] = {1, 2, 3, 4, 5, 6};
    static const float b_values[6] = {7, 8, 9, 10, 11, 12};
    static const float w_values[4] = {1, -1, 2, 0.5f};
    bp_node a = input(g, s23, 2, a_values);
    bp_node b = -1;
    CHECK_OK(bp_graph_parameter(g, s32, 2, &b));
    CHECK_OK(bp_graph_set_value(g, b, b_values, 6));
    bp_node w = constant(g, s22, 2, w_values);
    bp_node c = -1, weighted = -1, loss = -1;
    CHECK_OK(bp_graph_matmul(g, a, b, &c));
    CHECK_OK(bp_graph_mul(g, c, w, &weighted));
    CHECK_OK(bp_graph_sum(g, weighted, &loss)); /* L = sum((A B) * W) */

    size_t shape[BP_MAX_RANK], rank = 0;
    CHECK_OK(bp_graph_shape(g, c, shape, BP_MAX_RANK, &rank));
    CHECK_EQ(rank, 2);
    CHECK(shape[0] == 2 && shape[1] == 2);

    CHECK_OK(bp_graph_forward(g));
    /* A B = [[1*7+2*9+3*11, 1*8+2*10+3*12], [4*7+5*9+6*11, 4*8+5*10+6*12]] */
    static const double c_want[4] = {58, 64, 139, 154};
    check_values(g, c, c_want, 4);
    CHECK_NEAR(value1(g, loss), 58 - 64 + 2 * 139 + 0.5 * 154, 1e-3);

    CHECK_OK(bp_graph_backward(g, loss));
    /* dL/dA = W B^T, dL/dB = A^T W. */
    static const double a_grad[6] = {7 - 8, 9 - 10, 11 - 12, 14 + 4, 18 + 5, 22 + 6};
    static const double b_grad[6] = {1 + 8, -1 + 2, 2 + 10, -2 + 2.5, 3 + 12, -3 + 3};
    check_grads(g, a, a_grad, 6);
    check_grads(g, b, b_grad, 6);
    CHECK_OK(bp_graph_free(g));
}

static void test_batched_matmul_broadcasts_the_right_operand(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s222[] = {2, 2, 2}, s22[] = {2, 2};
    static const float a_values[8] = {1, 2, 3, 4, 5, 6, 7, 8}; /* two 2x2 matrices */
    static const float b_values[4] = {1, 0, 2, 1};
    bp_node a = input(g, s222, 3, a_values);
    bp_node b = input(g, s22, 2, b_values);
    bp_node c = -1, loss = -1;
    CHECK_OK(bp_graph_matmul(g, a, b, &c)); /* [2,2,2] x [2,2] -> [2,2,2] */
    CHECK_OK(bp_graph_sum(g, c, &loss));
    size_t shape[BP_MAX_RANK], rank = 0;
    CHECK_OK(bp_graph_shape(g, c, shape, BP_MAX_RANK, &rank));
    CHECK(rank == 3 && shape[0] == 2 && shape[1] == 2 && shape[2] == 2);

    CHECK_OK(bp_graph_forward(g));
    static const double c_want[8] = {5, 2, 11, 4, 17, 6, 23, 8};
    check_values(g, c, c_want, 8);
    CHECK_OK(bp_graph_backward(g, loss));
    /* dL/dA[i] = ones B^T: every row is the row sums of B. dL/dB = sum over i of A[i]^T ones. */
    static const double a_grad[8] = {1, 3, 1, 3, 1, 3, 1, 3};
    static const double b_grad[4] = {16, 16, 20, 20};
    check_grads(g, a, a_grad, 8);
    check_grads(g, b, b_grad, 4);
    CHECK_OK(bp_graph_free(g));
}

/* ---- elementwise ops -------------------------------------------------------------------- */

typedef bp_status (*unary_fn)(bp_graph *, bp_node, bp_node *);
typedef bp_status (*binary_fn)(bp_graph *, bp_node, bp_node, bp_node *);

/* Builds sum(op(x)) for the 4 values in x and checks the values and dL/dx = op'(x). */
static void check_unary(const char *name, unary_fn op, const float x[4], const double value[4],
                        const double grad[4]) {
    CHECK_CONTEXT(name);
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s4[] = {4};
    bp_node in = input(g, s4, 1, x);
    bp_node out = -1, loss = -1;
    CHECK_OK(op(g, in, &out));
    CHECK_OK(bp_graph_sum(g, out, &loss));
    CHECK_OK(bp_graph_forward(g));
    check_values(g, out, value, 4);
    CHECK_OK(bp_graph_backward(g, loss));
    check_grads(g, in, grad, 4);
    CHECK_OK(bp_graph_free(g));
    CHECK_CONTEXT(NULL);
}

static void check_binary(const char *name, binary_fn op, const float a[3], const float b[3],
                         const double value[3], const double grad_a[3], const double grad_b[3]) {
    CHECK_CONTEXT(name);
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s3[] = {3};
    bp_node na = input(g, s3, 1, a);
    bp_node nb = input(g, s3, 1, b);
    bp_node out = -1, loss = -1;
    CHECK_OK(op(g, na, nb, &out));
    CHECK_OK(bp_graph_sum(g, out, &loss));
    CHECK_OK(bp_graph_forward(g));
    check_values(g, out, value, 3);
    CHECK_OK(bp_graph_backward(g, loss));
    check_grads(g, na, grad_a, 3);
    check_grads(g, nb, grad_b, 3);
    CHECK_OK(bp_graph_free(g));
    CHECK_CONTEXT(NULL);
}

static double sigmoid(double x) {
    return 1.0 / (1.0 + exp(-x));
}

static void test_unary_ops_values_and_gradients(void) {
    static const float x[4] = {-1.5f, -0.25f, 0.5f, 2.0f};
    double value[4], grad[4];

    for (int i = 0; i < 4; i++) {
        value[i] = -x[i];
        grad[i] = -1;
    }
    check_unary("neg", bp_graph_neg, x, value, grad);

    for (int i = 0; i < 4; i++) {
        value[i] = exp(x[i]);
        grad[i] = exp(x[i]);
    }
    check_unary("exp", bp_graph_exp, x, value, grad);

    for (int i = 0; i < 4; i++) {
        value[i] = sigmoid(x[i]);
        grad[i] = sigmoid(x[i]) * (1 - sigmoid(x[i]));
    }
    check_unary("sigmoid", bp_graph_sigmoid, x, value, grad);

    for (int i = 0; i < 4; i++) {
        value[i] = tanh(x[i]);
        grad[i] = 1 - tanh(x[i]) * tanh(x[i]);
    }
    check_unary("tanh", bp_graph_tanh, x, value, grad);

    static const float positive[4] = {0.25f, 1.0f, 2.0f, 10.0f};
    for (int i = 0; i < 4; i++) {
        value[i] = log(positive[i]);
        grad[i] = 1.0 / positive[i];
    }
    check_unary("log", bp_graph_log, positive, value, grad);

    /* relu: the gradient at exactly 0 is 0. */
    static const float around_zero[4] = {-2.0f, 0.0f, 0.5f, 3.0f};
    static const double relu_value[4] = {0, 0, 0.5, 3};
    static const double relu_grad[4] = {0, 0, 1, 1};
    check_unary("relu", bp_graph_relu, around_zero, relu_value, relu_grad);
}

static void test_sigmoid_and_tanh_saturate_without_overflow(void) {
    static const float x[4] = {-1000.0f, -100.0f, 100.0f, 1000.0f};
    /* sigmoid saturates to 0 and 1 without overflowing; its gradient goes to 0. */
    static const double value[4] = {0, 0, 1, 1};
    static const double grad[4] = {0, 0, 0, 0};
    check_unary("sigmoid at extremes", bp_graph_sigmoid, x, value, grad);
    check_unary("tanh at extremes", bp_graph_tanh, x, (const double[4]){-1, -1, 1, 1}, grad);
}

static void test_binary_ops_values_and_gradients(void) {
    static const float a[3] = {1.0f, -2.0f, 3.0f};
    static const float b[3] = {4.0f, 0.5f, -2.0f};

    check_binary("add", bp_graph_add, a, b, (const double[3]){5, -1.5, 1},
                 (const double[3]){1, 1, 1}, (const double[3]){1, 1, 1});
    check_binary("sub", bp_graph_sub, a, b, (const double[3]){-3, -2.5, 5},
                 (const double[3]){1, 1, 1}, (const double[3]){-1, -1, -1});
    check_binary("mul", bp_graph_mul, a, b, (const double[3]){4, -1, -6},
                 (const double[3]){4, 0.5, -2}, (const double[3]){1, -2, 3});
    /* d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 */
    check_binary("div", bp_graph_div, a, b, (const double[3]){0.25, -4, -1.5},
                 (const double[3]){0.25, 2, -0.5}, (const double[3]){-1.0 / 16, 8, -0.75});

    /* maximum / minimum: the gradient goes to the chosen input; a tie splits it evenly. */
    static const float x[3] = {1, 2, 3};
    static const float y[3] = {3, 2, 1};
    check_binary("maximum", bp_graph_maximum, x, y, (const double[3]){3, 2, 3},
                 (const double[3]){0, 0.5, 1}, (const double[3]){1, 0.5, 0});
    check_binary("minimum", bp_graph_minimum, x, y, (const double[3]){1, 2, 1},
                 (const double[3]){1, 0.5, 0}, (const double[3]){0, 0.5, 1});
}

/* ---- reductions and losses -------------------------------------------------------------- */

static void test_sum_and_mean(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s23[] = {2, 3};
    static const float values[6] = {1, 2, 3, 4, 5, 6};
    bp_node x = input(g, s23, 2, values);
    bp_node sum = -1, mean = -1;
    CHECK_OK(bp_graph_sum(g, x, &sum));
    CHECK_OK(bp_graph_mean(g, x, &mean));
    size_t rank = 99;
    CHECK_OK(bp_graph_shape(g, sum, NULL, 0, &rank));
    CHECK_EQ(rank, 0);
    CHECK_OK(bp_graph_shape(g, mean, NULL, 0, &rank));
    CHECK_EQ(rank, 0);

    CHECK_OK(bp_graph_forward(g));
    CHECK_NEAR(value1(g, sum), 21, 0);
    CHECK_NEAR(value1(g, mean), 3.5, 1e-6);
    CHECK_OK(bp_graph_backward(g, mean));
    static const double sixth[6] = {1 / 6.0, 1 / 6.0, 1 / 6.0, 1 / 6.0, 1 / 6.0, 1 / 6.0};
    check_grads(g, x, sixth, 6);
    CHECK_OK(bp_graph_zero_grad(g));
    CHECK_OK(bp_graph_backward(g, sum));
    static const double ones[6] = {1, 1, 1, 1, 1, 1};
    check_grads(g, x, ones, 6);
    CHECK_OK(bp_graph_free(g));
}

static void test_mse_loss_reductions(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s22[] = {2, 2};
    static const float p_values[4] = {1, 2, 3, 4};
    static const float t_values[4] = {0, 2, 5, 3};
    bp_node p = input(g, s22, 2, p_values);
    bp_node t = input(g, s22, 2, t_values);
    bp_node mean = -1, sum = -1, none = -1;
    CHECK_OK(bp_graph_mse_loss(g, p, t, BP_REDUCTION_MEAN, &mean));
    CHECK_OK(bp_graph_mse_loss(g, p, t, BP_REDUCTION_SUM, &sum));
    CHECK_OK(bp_graph_mse_loss(g, p, t, BP_REDUCTION_NONE, &none));
    size_t size = 0;
    CHECK_OK(bp_graph_size(g, none, &size));
    CHECK_EQ(size, 4);

    CHECK_OK(bp_graph_forward(g));
    /* differences 1, 0, -2, 1; squares 1, 0, 4, 1 */
    static const double squares[4] = {1, 0, 4, 1};
    check_values(g, none, squares, 4);
    CHECK_NEAR(value1(g, sum), 6, 1e-6);
    CHECK_NEAR(value1(g, mean), 1.5, 1e-6);

    CHECK_OK(bp_graph_backward(g, mean)); /* d/dp = 2 (p - t) / n */
    static const double p_grad[4] = {0.5, 0, -1, 0.5};
    static const double t_grad[4] = {-0.5, 0, 1, -0.5};
    check_grads(g, p, p_grad, 4);
    check_grads(g, t, t_grad, 4);
    CHECK_OK(bp_graph_zero_grad(g));
    CHECK_OK(bp_graph_backward(g, sum)); /* d/dp = 2 (p - t) */
    static const double p_grad_sum[4] = {2, 0, -4, 2};
    check_grads(g, p, p_grad_sum, 4);
    CHECK_OK(bp_graph_free(g));
}

static void test_cross_entropy_values_and_gradients(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s23[] = {2, 3}, s2[] = {2};
    static const float logits_values[6] = {1, 2, 3, 0, 0, 0};
    static const float label_values[2] = {2, 0};
    bp_node logits = input(g, s23, 2, logits_values);
    bp_node labels = constant(g, s2, 1, label_values);
    bp_node mean = -1, sum = -1, none = -1;
    CHECK_OK(bp_graph_cross_entropy(g, logits, labels, BP_REDUCTION_MEAN, &mean));
    CHECK_OK(bp_graph_cross_entropy(g, logits, labels, BP_REDUCTION_SUM, &sum));
    CHECK_OK(bp_graph_cross_entropy(g, logits, labels, BP_REDUCTION_NONE, &none));
    size_t shape[BP_MAX_RANK], rank = 0;
    CHECK_OK(bp_graph_shape(g, none, shape, BP_MAX_RANK, &rank));
    CHECK(rank == 1 && shape[0] == 2);

    CHECK_OK(bp_graph_forward(g));
    /* Row 0: log(e + e^2 + e^3) - 3. Row 1: uniform over 3 classes, log 3. */
    double lse0 = log(exp(1.0) + exp(2.0) + exp(3.0));
    double per_sample[2] = {lse0 - 3, log(3.0)};
    check_values(g, none, per_sample, 2);
    CHECK_NEAR(value1(g, sum), per_sample[0] + per_sample[1], 1e-5);
    CHECK_NEAR(value1(g, mean), (per_sample[0] + per_sample[1]) / 2, 1e-5);

    /* (softmax - onehot) / batch */
    CHECK_OK(bp_graph_backward(g, mean));
    double grad[6];
    for (int j = 0; j < 3; j++) {
        grad[j] = exp(logits_values[j] - lse0) / 2;
        grad[3 + j] = (1.0 / 3) / 2;
    }
    grad[2] -= 0.5;
    grad[3] -= 0.5;
    check_grads(g, logits, grad, 6);
    CHECK_OK(bp_graph_free(g));
}

static void test_cross_entropy_with_probability_targets(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s13[] = {1, 3};
    static const float logits_values[3] = {1, 2, 3};
    static const float target_values[3] = {0.2f, 0.3f, 0.5f};
    bp_node logits = input(g, s13, 2, logits_values);
    bp_node targets = input(g, s13, 2, target_values);
    bp_node loss = -1;
    CHECK_OK(bp_graph_cross_entropy(g, logits, targets, BP_REDUCTION_MEAN, &loss));
    CHECK_OK(bp_graph_forward(g));
    /* loss = -sum t log softmax(z) = logsumexp(z) - sum t z, as the targets sum to 1. */
    double lse = log(exp(1.0) + exp(2.0) + exp(3.0));
    double t[3] = {target_values[0], target_values[1], target_values[2]};
    CHECK_NEAR(value1(g, loss), lse - (t[0] * 1 + t[1] * 2 + t[2] * 3), 1e-5);

    CHECK_OK(bp_graph_backward(g, loss));
    double logits_grad[3], targets_grad[3];
    for (int j = 0; j < 3; j++) {
        logits_grad[j] = exp(logits_values[j] - lse) - t[j]; /* softmax * sum(t) - t */
        targets_grad[j] = lse - logits_values[j];            /* -log softmax */
    }
    check_grads(g, logits, logits_grad, 3);
    check_grads(g, targets, targets_grad, 3);
    CHECK_OK(bp_graph_free(g));
}

static void test_cross_entropy_is_stable_for_large_logits(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s23[] = {2, 3}, s2[] = {2};
    static const float logits_values[6] = {1000, 0, -1000, 1000, 0, -1000};
    static const float label_values[2] = {0, 2};
    bp_node logits = input(g, s23, 2, logits_values);
    bp_node labels = constant(g, s2, 1, label_values);
    bp_node none = -1, mean = -1;
    CHECK_OK(bp_graph_cross_entropy(g, logits, labels, BP_REDUCTION_NONE, &none));
    CHECK_OK(bp_graph_cross_entropy(g, logits, labels, BP_REDUCTION_MEAN, &mean));
    CHECK_OK(bp_graph_forward(g));
    static const double want[2] = {0, 2000};
    check_values(g, none, want, 2);
    CHECK_OK(bp_graph_backward(g, mean));
    static const double grad[6] = {0, 0, 0, 0.5, 0, -0.5};
    check_grads(g, logits, grad, 6);
    CHECK_OK(bp_graph_free(g));
}

/* ---- float64 ---------------------------------------------------------------------------- */

static void test_float64_graph_keeps_double_precision(void) {
    bp_graph *g = new_graph(BP_FLOAT64);
    bp_dtype dtype = BP_FLOAT32;
    CHECK_OK(bp_graph_dtype(g, &dtype));
    CHECK_EQ(dtype, BP_FLOAT64);

    bp_node x = -1, y = -1, sum = -1, t = -1, loss = -1;
    CHECK_OK(bp_graph_input(g, NULL, 0, &x));
    CHECK_OK(bp_graph_input(g, NULL, 0, &y));
    const double xv = 0.1, yv = 0.2;
    CHECK_OK(bp_graph_set_value_f64(g, x, &xv, 1));
    CHECK_OK(bp_graph_set_value_f64(g, y, &yv, 1));
    CHECK_OK(bp_graph_add(g, x, y, &sum));
    CHECK_OK(bp_graph_tanh(g, sum, &t));
    CHECK_OK(bp_graph_mul(g, t, x, &loss)); /* L = tanh(x + y) * x */
    CHECK_OK(bp_graph_forward(g));

    double got = 0;
    CHECK_OK(bp_graph_value_f64(g, sum, &got, 1));
    CHECK(got == 0.1 + 0.2); /* exact in double; float would give 0.3f */
    CHECK(got != (double)(0.1f + 0.2f));
    CHECK_OK(bp_graph_value_f64(g, loss, &got, 1));
    CHECK_NEAR(got, tanh(0.3) * 0.1, 1e-15);

    CHECK_OK(bp_graph_backward(g, loss));
    double dx = 0, dy = 0;
    CHECK_OK(bp_graph_grad_f64(g, x, &dx, 1));
    CHECK_OK(bp_graph_grad_f64(g, y, &dy, 1));
    double sech2 = 1 - tanh(0.3) * tanh(0.3);
    CHECK_NEAR(dx, sech2 * 0.1 + tanh(0.3), 1e-14);
    CHECK_NEAR(dy, sech2 * 0.1, 1e-14);

    /* The float forms convert. */
    float as_float = 0;
    CHECK_OK(bp_graph_value(g, sum, &as_float, 1));
    CHECK(as_float == (float)(0.1 + 0.2));
    CHECK_OK(bp_graph_grad(g, y, &as_float, 1));
    CHECK(as_float == (float)dy);
    const float quarter = 0.25f;
    CHECK_OK(bp_graph_set_value(g, x, &quarter, 1));
    CHECK_OK(bp_graph_value_f64(g, x, &got, 1));
    CHECK(got == 0.25);
    CHECK_OK(bp_graph_free(g));
}

static void test_float32_graph_converts_doubles(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    bp_dtype dtype = BP_FLOAT64;
    CHECK_OK(bp_graph_dtype(g, &dtype));
    CHECK_EQ(dtype, BP_FLOAT32);
    bp_node x = -1;
    CHECK_OK(bp_graph_input(g, NULL, 0, &x));
    const double third = 1.0 / 3.0;
    CHECK_OK(bp_graph_set_value_f64(g, x, &third, 1));
    double back = 0;
    CHECK_OK(bp_graph_value_f64(g, x, &back, 1));
    CHECK(back == (double)(float)third); /* stored as float */
    CHECK_OK(bp_graph_free(g));
}

static void test_check_gradients_agrees_on_a_float64_graph(void) {
    /* L = mean((tanh(x W + b) - t)^2) + sum(exp(sigmoid(x)) / x): several ops, broadcasting and a
     * matmul, so that finite differences exercise every backward together. */
    bp_graph *g = new_graph(BP_FLOAT64);
    static const size_t s23[] = {2, 3}, s32[] = {3, 2}, s2[] = {2}, s22[] = {2, 2};
    static const double x_values[6] = {0.5, -1.25, 2, 1.5, 0.75, -0.5};
    static const double w_values[6] = {0.1, -0.2, 0.3, 0.4, -0.5, 0.6};
    static const double b_values[2] = {0.05, -0.15};
    static const double t_values[4] = {0.5, -0.5, 0.25, 0};
    bp_node x = -1, w = -1, b = -1, t = -1;
    CHECK_OK(bp_graph_input(g, s23, 2, &x));
    CHECK_OK(bp_graph_parameter(g, s32, 2, &w));
    CHECK_OK(bp_graph_parameter(g, s2, 1, &b));
    CHECK_OK(bp_graph_constant(g, s22, 2, &t));
    CHECK_OK(bp_graph_set_value_f64(g, x, x_values, 6));
    CHECK_OK(bp_graph_set_value_f64(g, w, w_values, 6));
    CHECK_OK(bp_graph_set_value_f64(g, b, b_values, 2));
    CHECK_OK(bp_graph_set_value_f64(g, t, t_values, 4));
    bp_node xw = -1, z = -1, y = -1, mse = -1, sig = -1, e = -1, q = -1, qs = -1, loss = -1;
    CHECK_OK(bp_graph_matmul(g, x, w, &xw));
    CHECK_OK(bp_graph_add(g, xw, b, &z));
    CHECK_OK(bp_graph_tanh(g, z, &y));
    CHECK_OK(bp_graph_mse_loss(g, y, t, BP_REDUCTION_MEAN, &mse));
    CHECK_OK(bp_graph_sigmoid(g, x, &sig));
    CHECK_OK(bp_graph_exp(g, sig, &e));
    CHECK_OK(bp_graph_div(g, e, x, &q));
    CHECK_OK(bp_graph_sum(g, q, &qs));
    CHECK_OK(bp_graph_add(g, mse, qs, &loss));

    /* One backward's worth of gradient, then a second pass accumulated on top. */
    double once[6], after[6], values[6];
    CHECK_OK(bp_graph_forward(g));
    CHECK_OK(bp_graph_backward(g, loss));
    CHECK_OK(bp_graph_grad_f64(g, w, once, 6));
    CHECK_OK(bp_graph_backward(g, loss));

    int passed = -1;
    double max_error = -1;
    CHECK_OK(bp_graph_check_gradients(g, loss, 1e-6, 1e-5, 1e-3, &passed, &max_error));
    CHECK_EQ(passed, 1);
    CHECK(max_error >= 0 && max_error < 1e-6);

    /* Leaf values are as they were; leaf gradients hold root's gradient once. */
    CHECK_OK(bp_graph_value_f64(g, x, values, 6));
    CHECK(memcmp(values, x_values, sizeof values) == 0);
    CHECK_OK(bp_graph_value_f64(g, w, values, 6));
    CHECK(memcmp(values, w_values, sizeof values) == 0);
    CHECK_OK(bp_graph_grad_f64(g, w, after, 6));
    for (int i = 0; i < 6; i++) {
        CHECK_NEAR(after[i], once[i], 1e-12);
    }
    CHECK_OK(bp_graph_free(g));
}

static void test_dropout_follows_training_mode_and_seed(void) {
    enum { N = 1000 };
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t shape[] = {N};
    static float ones[N], first[N], second[N], grad[N];
    for (int i = 0; i < N; i++) {
        ones[i] = 1;
    }
    bp_node x = input(g, shape, 1, ones);
    bp_node dropped = -1, total = -1;
    CHECK_OK(bp_graph_dropout(g, x, 0.5, &dropped));
    CHECK_OK(bp_graph_sum(g, dropped, &total));

    /* Training mode (the default): each element is 0 or 1 / (1 - p) = 2, about half of each. */
    CHECK_OK(bp_graph_seed(g, 7));
    CHECK_OK(bp_graph_forward(g));
    CHECK_OK(bp_graph_value(g, dropped, first, N));
    int zeros = 0, others = 0;
    for (int i = 0; i < N; i++) {
        zeros += first[i] == 0;
        others += first[i] != 0 && first[i] != 2;
    }
    CHECK_EQ(others, 0);
    CHECK(zeros > 400 && zeros < 600);

    /* The gradient goes through the same mask. */
    CHECK_OK(bp_graph_backward(g, total));
    CHECK_OK(bp_graph_grad(g, x, grad, N));
    CHECK(memcmp(grad, first, sizeof grad) == 0);

    /* The same seed gives the same mask; evaluation mode passes values through. */
    CHECK_OK(bp_graph_seed(g, 7));
    CHECK_OK(bp_graph_forward(g));
    CHECK_OK(bp_graph_value(g, dropped, second, N));
    CHECK(memcmp(first, second, sizeof first) == 0);
    CHECK_OK(bp_graph_set_training(g, 0));
    CHECK_OK(bp_graph_forward(g));
    CHECK_OK(bp_graph_value(g, dropped, second, N));
    CHECK(memcmp(ones, second, sizeof ones) == 0);
    CHECK_OK(bp_graph_free(g));
}

/* ---- queries ---------------------------------------------------------------------------- */

static void test_leaves_start_at_zero(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    static const size_t s23[] = {2, 3};
    bp_node in = -1, param = -1, konst = -1;
    CHECK_OK(bp_graph_input(g, s23, 2, &in));
    CHECK_OK(bp_graph_parameter(g, s23, 2, &param));
    CHECK_OK(bp_graph_constant(g, s23, 2, &konst));
    float values[6];
    bp_node leaves[3] = {in, param, konst};
    for (int k = 0; k < 3; k++) {
        memset(values, 0xFF, sizeof values);
        CHECK_OK(bp_graph_value(g, leaves[k], values, 6));
        for (int i = 0; i < 6; i++) {
            CHECK(values[i] == 0);
        }
    }
    for (int k = 0; k < 2; k++) {
        memset(values, 0xFF, sizeof values);
        CHECK_OK(bp_graph_grad(g, leaves[k], values, 6));
        for (int i = 0; i < 6; i++) {
            CHECK(values[i] == 0);
        }
    }
    CHECK_OK(bp_graph_free(g));
}

static void test_shape_size_and_node_count_queries(void) {
    bp_graph *g = new_graph(BP_FLOAT32);
    size_t count = 99;
    CHECK_OK(bp_graph_node_count(g, &count));
    CHECK_EQ(count, 0);

    static const size_t s234[] = {2, 3, 4}, s43[] = {4, 3};
    bp_node t = -1, m = -1, s = -1, mm = -1, total = -1;
    CHECK_OK(bp_graph_input(g, s234, 3, &t));
    CHECK_OK(bp_graph_constant(g, s43, 2, &m));
    CHECK_OK(bp_graph_parameter(g, NULL, 0, &s));
    CHECK_STATUS(BP_ERR_SHAPE, bp_graph_matmul(g, m, m, &mm)); /* [4,3] x [4,3] */
    CHECK_OK(bp_graph_sum(g, t, &total));
    CHECK_OK(bp_graph_node_count(g, &count));
    CHECK_EQ(count, 4); /* the failed matmul added nothing */

    /* Node ids are distinct. */
    CHECK(t != m && m != s && s != total && t != total);

    size_t shape[BP_MAX_RANK] = {0}, rank = 99, size = 0;
    CHECK_OK(bp_graph_shape(g, t, shape, BP_MAX_RANK, &rank));
    CHECK_EQ(rank, 3);
    CHECK(shape[0] == 2 && shape[1] == 3 && shape[2] == 4);
    CHECK_OK(bp_graph_shape(g, t, shape, 3, &rank)); /* capacity == rank is enough */
    CHECK_OK(bp_graph_size(g, t, &size));
    CHECK_EQ(size, 24);

    CHECK_OK(bp_graph_shape(g, m, shape, BP_MAX_RANK, &rank));
    CHECK_EQ(rank, 2);
    CHECK(shape[0] == 4 && shape[1] == 3);
    CHECK_OK(bp_graph_size(g, m, &size));
    CHECK_EQ(size, 12);

    CHECK_OK(bp_graph_shape(g, s, shape, 0, &rank));
    CHECK_EQ(rank, 0);
    CHECK_OK(bp_graph_size(g, s, &size));
    CHECK_EQ(size, 1);
    CHECK_OK(bp_graph_size(g, total, &size));
    CHECK_EQ(size, 1);

    /* A [1, 1] node is a scalar for backward: one element. */
    static const size_t s11[] = {1, 1};
    bp_node one = -1;
    CHECK_OK(bp_graph_input(g, s11, 2, &one));
    CHECK_OK(bp_graph_forward(g));
    CHECK_OK(bp_graph_backward(g, one));
    CHECK_NEAR(grad1(g, one), 1, 0);
    CHECK_OK(bp_graph_free(g));
}

int main(void) {
    RUN(test_circuit_values_and_gradients);
    RUN(test_leaf_gradients_accumulate_until_zero_grad);
    RUN(test_forward_reruns_with_new_leaf_values);
    RUN(test_node_used_twice_gets_the_sum_of_its_gradients);
    RUN(test_broadcast_row_gradient_is_the_column_sum);
    RUN(test_scalar_and_column_broadcast);
    RUN(test_matmul_values_and_gradients);
    RUN(test_batched_matmul_broadcasts_the_right_operand);
    RUN(test_unary_ops_values_and_gradients);
    RUN(test_sigmoid_and_tanh_saturate_without_overflow);
    RUN(test_binary_ops_values_and_gradients);
    RUN(test_sum_and_mean);
    RUN(test_mse_loss_reductions);
    RUN(test_cross_entropy_values_and_gradients);
    RUN(test_cross_entropy_with_probability_targets);
    RUN(test_cross_entropy_is_stable_for_large_logits);
    RUN(test_float64_graph_keeps_double_precision);
    RUN(test_float32_graph_converts_doubles);
    RUN(test_check_gradients_agrees_on_a_float64_graph);
    RUN(test_dropout_follows_training_mode_and_seed);
    RUN(test_leaves_start_at_zero);
    RUN(test_shape_size_and_node_count_queries);
    return check_summary();
}
