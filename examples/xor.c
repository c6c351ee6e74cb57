/*
 * xor.c: train a small network to compute XOR, one explicit step at a time.
 *
 * XOR is the classic problem a single layer cannot solve: the two classes are not linearly
 * separable. A hidden layer of 8 tanh units fixes that. The network is
 *
 *     2 inputs -> dense 8, tanh -> dense 2 (logits) -> softmax cross-entropy against labels 0/1
 *
 * and each epoch is the four calls of a training step, on the whole four-sample batch:
 *
 *     bp_net_zero_grad -> bp_net_forward -> bp_net_backward_labels -> bp_net_update
 *
 * (bp_net_train_step_labels does the same in one call). The seed is fixed, so every run prints
 * the same numbers. Exits 0 only if all four samples end up classified correctly.
 *
 * Build (from the repository root, after `make lib`):
 *     cc -std=c11 -Iinclude examples/xor.c -Lbuild/lib -lbackprop -Wl,-rpath,$PWD/build/lib -lm
 */
#include <math.h>
#include <stdint.h>
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

enum {
    SAMPLES = 4,
    INPUTS = 2,
    HIDDEN = 8,
    CLASSES = 2,
    EPOCHS = 2000,
    REPORT_EVERY = 200
};

static const float LEARNING_RATE = 0.5f;
static const uint64_t SEED = 42;

/* The training set: the whole truth table, one row per sample (row-major [SAMPLES, INPUTS]). */
static const float inputs[SAMPLES * INPUTS] = {
    0, 0,
    0, 1,
    1, 0,
    1, 1,
};
static const int32_t labels[SAMPLES] = {0, 1, 1, 0};

/* The probability of class 1 from a row of two logits: softmax, computed stably. */
static float probability_of_one(const float logits[CLASSES]) {
    float shift = logits[0] > logits[1] ? logits[0] : logits[1];
    float e0 = expf(logits[0] - shift);
    float e1 = expf(logits[1] - shift);
    return e1 / (e0 + e1);
}

int main(void) {
    printf("libbackprop %s: XOR with a %d-%d-%d network\n", bp_version(), INPUTS, HIDDEN,
           CLASSES);

    /* Build the network: layers are appended in order, then the loss is chosen. */
    bp_net *net;
    CHECK(bp_net_create(INPUTS, SEED, &net));
    CHECK(bp_net_add_dense(net, HIDDEN, BP_ACTIVATION_TANH));
    CHECK(bp_net_add_dense(net, CLASSES, BP_ACTIVATION_NONE)); /* logits: no activation */
    CHECK(bp_net_set_loss(net, BP_LOSS_CROSS_ENTROPY));

    size_t parameters;
    CHECK(bp_net_parameter_count(net, &parameters));
    printf("%zu parameters, learning rate %g, %d epochs\n\n", parameters, LEARNING_RATE, EPOCHS);

    /* Train. The output buffer is ours; the library fills it on every forward pass. */
    float logits[SAMPLES * CLASSES];
    for (int epoch = 1; epoch <= EPOCHS; epoch++) {
        float loss;
        CHECK(bp_net_zero_grad(net)); /* gradients accumulate until cleared */
        CHECK(bp_net_forward(net, SAMPLES, inputs, SAMPLES * INPUTS, logits, SAMPLES * CLASSES));
        CHECK(bp_net_backward_labels(net, labels, SAMPLES, &loss));
        CHECK(bp_net_update(net, LEARNING_RATE)); /* w -= learning_rate * grad(w) */

        if (epoch == 1 || epoch % REPORT_EVERY == 0) {
            printf("epoch %4d  loss %.6f\n", epoch, loss);
        }
    }

    /* Evaluate. predict is forward without keeping anything for a backward pass. */
    CHECK(bp_net_predict(net, SAMPLES, inputs, SAMPLES * INPUTS, logits, SAMPLES * CLASSES));

    int correct = 0;
    printf("\n  x1 x2  label  predicted  p(1)\n");
    for (int i = 0; i < SAMPLES; i++) {
        const float *row = &logits[i * CLASSES];
        int predicted = row[1] > row[0] ? 1 : 0;
        correct += predicted == labels[i];
        printf("  %2g %2g  %5d  %9d  %.4f\n", inputs[i * INPUTS], inputs[i * INPUTS + 1],
               (int)labels[i], predicted, probability_of_one(row));
    }
    printf("\naccuracy: %d/%d (%.0f%%)\n", correct, SAMPLES, 100.0 * correct / SAMPLES);

    CHECK(bp_net_free(net));
    return correct == SAMPLES ? 0 : 1;
}
