/*
 * digits.c: train a classifier on handwritten digits from a CSV file, with bp_net_fit.
 *
 * The data is scikit-learn's copy of the UCI handwritten digits (examples/data/README.md):
 * 1797 images of 8x8 pixels with values 0..16, one per line, the label (0..9) last.
 *
 * The held-out split is fixed and needs no random numbers: every fourth sample (index % 4 == 3)
 * is kept for testing, 25% of the data; the rest trains. Pixels are standardized with the
 * training samples' statistics. The network is 64-256-10 with ReLU and dropout, trained for 60
 * epochs with Adam on cross-entropy. Exits 0 when the held-out accuracy is at least 97%.
 *
 * Build: cc -std=c11 digits.c -lbackprop    Run: ./digits [path/to/digits.csv]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backprop.h"

/* Reports a failed call with the library's message, and leaves. */
#define CHECK(call)                                                                          \
    do {                                                                                     \
        bp_status status_ = (call);                                                          \
        if (status_ != BP_OK) {                                                              \
            fprintf(stderr, "%s failed: %s\n  %s\n", #call, bp_status_string(status_),        \
                    bp_last_error());                                                        \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

/* Prints a line every 10 epochs; returning 0 lets training go on. */
static int report_epoch(const bp_epoch_report *report, void *userdata) {
    (void)userdata;
    if (report->epoch % 10 == 0 || report->epoch == 1) {
        printf("epoch %3zu  loss %.4f  accuracy %.3f  learning rate %g%s\n", report->epoch,
               report->train_loss, report->train_accuracy, report->learning_rate,
               report->exploding ? "  (exploding gradients)" : "");
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "examples/data/digits.csv";
    enum { PIXELS = 64, CLASSES = 10 };

    /* Load the file: a header line, 64 feature columns, the label last (the defaults). */
    bp_dataset *data = NULL;
    CHECK(bp_dataset_load_csv(path, NULL, &data));
    size_t rows = 0, features = 0;
    CHECK(bp_dataset_size(data, &rows, &features));
    if (features != PIXELS) {
        fprintf(stderr, "%s: expected %d features, found %zu\n", path, PIXELS, features);
        return 1;
    }
    float *x = malloc(rows * PIXELS * sizeof *x);
    int32_t *y = malloc(rows * sizeof *y);
    if (!x || !y) return 1;
    CHECK(bp_dataset_features(data, x, rows * PIXELS));
    CHECK(bp_dataset_labels(data, y, rows));
    CHECK(bp_dataset_free(data));

    /* Split: every fourth sample is held out. */
    size_t test_rows = rows / 4, train_rows = rows - test_rows;
    float *train_x = malloc(train_rows * PIXELS * sizeof *train_x);
    float *test_x = malloc(test_rows * PIXELS * sizeof *test_x);
    int32_t *train_y = malloc(train_rows * sizeof *train_y);
    int32_t *test_y = malloc(test_rows * sizeof *test_y);
    if (!train_x || !test_x || !train_y || !test_y) return 1;
    size_t n_train = 0, n_test = 0;
    for (size_t i = 0; i < rows; i++) {
        int held_out = i % 4 == 3 && n_test < test_rows;
        float *to = held_out ? test_x + n_test * PIXELS : train_x + n_train * PIXELS;
        for (size_t j = 0; j < PIXELS; j++) to[j] = x[i * PIXELS + j];
        if (held_out) test_y[n_test++] = y[i]; else train_y[n_train++] = y[i];
    }

    /* Standardize each pixel with the training samples' mean and spread (constant pixels, such
     * as the borders, only lose their mean), and the held-out ones with the same numbers. */
    for (size_t j = 0; j < PIXELS; j++) {
        double sum = 0, squares = 0;
        for (size_t i = 0; i < n_train; i++) sum += train_x[i * PIXELS + j];
        double mean = sum / (double)n_train;
        for (size_t i = 0; i < n_train; i++) {
            double d = train_x[i * PIXELS + j] - mean;
            squares += d * d;
        }
        double spread = squares > 0 ? sqrt(squares / (double)n_train) : 1;
        for (size_t i = 0; i < n_train; i++) train_x[i * PIXELS + j] = (float)((train_x[i * PIXELS + j] - mean) / spread);
        for (size_t i = 0; i < n_test; i++) test_x[i * PIXELS + j] = (float)((test_x[i * PIXELS + j] - mean) / spread);
    }

    /* 64 -> 256 (ReLU, dropout 0.2) -> 10 logits, cross-entropy, Adam. */
    bp_net *net = NULL;
    CHECK(bp_net_create(PIXELS, 42, &net));
    CHECK(bp_net_add_dense(net, 256, BP_ACTIVATION_RELU));
    CHECK(bp_net_add_dropout(net, 0.2));
    CHECK(bp_net_add_dense(net, CLASSES, BP_ACTIVATION_NONE));
    CHECK(bp_net_set_loss(net, BP_LOSS_CROSS_ENTROPY));
    bp_optimizer_options adam;
    CHECK(bp_optimizer_options_default(BP_OPTIMIZER_ADAM, &adam));
    bp_optimizer *optimizer = NULL;
    CHECK(bp_optimizer_create(BP_OPTIMIZER_ADAM, &adam, &optimizer));

    bp_fit_options options;
    CHECK(bp_fit_options_default(&options));
    options.epochs = 60;
    options.batch_size = 32;
    options.callback = report_epoch;
    bp_fit_result result;
    result.size = sizeof result;
    CHECK(bp_net_fit_labels(net, optimizer, n_train, train_x, n_train * PIXELS, train_y, n_train,
                            &options, &result));
    printf("trained %zu epochs, final training loss %.4f\n", result.epochs_run,
           result.final_train_loss);

    double loss = 0, accuracy = 0;
    CHECK(bp_net_evaluate_labels(net, n_test, test_x, n_test * PIXELS, test_y, n_test, &loss,
                                 &accuracy));
    printf("held-out: %zu samples, loss %.4f, accuracy %.2f%%\n", n_test, loss, 100 * accuracy);

    bp_optimizer_free(optimizer);
    bp_net_free(net);
    free(x); free(y); free(train_x); free(test_x); free(train_y); free(test_y);
    return accuracy >= 0.97 ? 0 : 1;
}
