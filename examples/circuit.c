/*
 * circuit.c: the smallest use of the graph API.
 *
 * Builds f(x, y, z) = (x + y) * z for x = -2, y = 5, z = -4, runs it forward, backpropagates
 * from f and prints the value and the three partial derivatives:
 *
 *     f = -12
 *     df/dx = -4      (z)
 *     df/dy = -4      (z)
 *     df/dz = 3       (x + y)
 *
 * Build (from the repository root, after `make lib`):
 *     cc -std=c11 -Iinclude examples/circuit.c -Lbuild/lib -lbackprop -Wl,-rpath,$PWD/build/lib -lm
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backprop.h"

/* Every library call returns a bp_status. On failure, say which call failed and why, then stop. */
#define CHECK(call)                                                                     \
    do {                                                                                \
        bp_status check_status_ = (call);                                               \
        if (check_status_ != BP_OK) {                                                   \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,    \
                    bp_status_string(check_status_), bp_last_error());                  \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

/* Adds a scalar input (rank 0: no shape array needed) holding `value`. */
static bp_node scalar_input(bp_graph *graph, float value) {
    bp_node node;
    CHECK(bp_graph_input(graph, NULL, 0, &node));
    CHECK(bp_graph_set_value(graph, node, &value, 1));
    return node;
}

/* Reads one element: the value of a node, or its gradient. */
static float value_of(const bp_graph *graph, bp_node node) {
    float value;
    CHECK(bp_graph_value(graph, node, &value, 1));
    return value;
}

static float grad_of(const bp_graph *graph, bp_node node) {
    float grad;
    CHECK(bp_graph_grad(graph, node, &grad, 1));
    return grad;
}

/* True when `got` is `want` up to float rounding. */
static int close_to(float got, float want) {
    return fabsf(got - want) <= 1e-6f * (1.0f + fabsf(want));
}

int main(void) {
    bp_graph *graph;
    CHECK(bp_graph_create(BP_FLOAT32, &graph));

    /* The leaves. */
    bp_node x = scalar_input(graph, -2.0f);
    bp_node y = scalar_input(graph, 5.0f);
    bp_node z = scalar_input(graph, -4.0f);

    /* The ops: each returns a new node. Building the graph computes nothing yet. */
    bp_node q, f;
    CHECK(bp_graph_add(graph, x, y, &q)); /* q = x + y */
    CHECK(bp_graph_mul(graph, q, z, &f)); /* f = q * z */

    /* Forward computes every node; backward from the scalar f fills in the gradients. */
    CHECK(bp_graph_forward(graph));
    CHECK(bp_graph_backward(graph, f));

    float f_value = value_of(graph, f);
    float dx = grad_of(graph, x);
    float dy = grad_of(graph, y);
    float dz = grad_of(graph, z);

    printf("f = %g\n", f_value);
    printf("df/dx = %g\n", dx);
    printf("df/dy = %g\n", dy);
    printf("df/dz = %g\n", dz);

    CHECK(bp_graph_free(graph));

    if (!close_to(f_value, -12.0f) || !close_to(dx, -4.0f) || !close_to(dy, -4.0f) ||
        !close_to(dz, 3.0f)) {
        fprintf(stderr, "wrong result: expected f = -12, df/dx = -4, df/dy = -4, df/dz = 3\n");
        return 1;
    }
    return 0;
}
