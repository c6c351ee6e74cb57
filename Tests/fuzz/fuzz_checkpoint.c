/*
 * fuzz_checkpoint.c: libFuzzer harness for the checkpoint loader, bp_net_load_buffer.
 *
 * Every input is a candidate checkpoint. The loader must refuse it with one of the statuses the
 * header lists (BP_ERR_FORMAT, BP_ERR_NONFINITE, BP_ERR_OUT_OF_MEMORY) and a message, writing
 * nothing, or load it. A loaded network must then behave like any other:
 *   - it predicts, runs a training step and, with a loaded optimizer, takes an optimizer step,
 *     each returning a documented status;
 *   - saving it gives a checkpoint that loads again, and saving that one gives the same bytes
 *     (save . load is the identity on what the library writes).
 * Out-of-bounds reads, leaks of a failed load and oversized allocations are AddressSanitizer's
 * and libFuzzer's to report (the loader promises to allocate nothing the input's size does not
 * justify; run with -malloc_limit_mb to hold it to that).
 *
 * Build and run: `make fuzz-smoke` or `make fuzz FUZZ_SECONDS=300` (docs/RELIABILITY.md).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_oracle.h"

/* A pointer value no call may write on failure. */
#define UNTOUCHED ((void *)(uintptr_t)0x5e117)

static unsigned char *save(const bp_net *net, const bp_optimizer *optimizer, size_t *size) {
    bp_status status;
    *size = 0;
    EXPECT(status, bp_net_save_buffer(net, optimizer, NULL, 0, size), BP_OK);
    unsigned char *bytes = malloc(*size);
    if (bytes == NULL) {
        fuzz_fail("the harness could not allocate %zu bytes", *size);
    }
    size_t written = 0;
    EXPECT(status, bp_net_save_buffer(net, optimizer, bytes, *size, &written), BP_OK);
    if (written != *size) {
        fuzz_fail("bp_net_save_buffer wrote %zu bytes after asking for %zu", written, *size);
    }
    return bytes;
}

/* A loaded network is a network: it predicts and trains, with documented statuses only. */
static void exercise(bp_net *net, bp_optimizer *optimizer) {
    bp_status status;
    size_t in = 0, out = 0, layers = 0;
    EXPECT(status, bp_net_input_width(net, &in), BP_OK);
    EXPECT(status, bp_net_output_width(net, &out), BP_OK);
    EXPECT(status, bp_net_layer_count(net, &layers), BP_OK);
    /* The loader refuses an input width the file's size does not justify. */
    if (in == 0 || in > (1u << 20) || out == 0 || out > (1u << 20)) {
        fuzz_fail("a loaded network has input width %zu and output width %zu", in, out);
    }
    enum { BATCH = 2 };
    float *inputs = calloc(BATCH * in, sizeof(float));
    float *outputs = calloc(BATCH * out, sizeof(float));
    float *targets = calloc(BATCH * out, sizeof(float));
    int32_t labels[BATCH] = {0, (int32_t)(out - 1)};
    if (inputs == NULL || outputs == NULL || targets == NULL) {
        fuzz_fail("the harness could not allocate buffers for widths %zu and %zu", in, out);
    }
    for (size_t i = 0; i < BATCH * in; i++) {
        inputs[i] = (float)(i % 7) - 3.0f;
    }
    if (layers == 0) {
        EXPECT(status, bp_net_predict(net, BATCH, inputs, BATCH * in, outputs, BATCH * out),
               BP_ERR_STATE);
    } else {
        EXPECT(status, bp_net_predict(net, BATCH, inputs, BATCH * in, outputs, BATCH * out),
               BP_OK);
    }
    if (layers > 0) {
        EXPECT(status, bp_net_zero_grad(net), BP_OK);
        EXPECT(status, bp_net_forward(net, BATCH, inputs, BATCH * in, outputs, BATCH * out),
               BP_OK);
        /* The loss decides which backward applies; the other is refused. A huge loaded weight
         * can make the loss or a gradient overflow: that is NONFINITE, never a crash. */
        bp_status mse = bp_net_backward(net, targets, BATCH * out, NULL);
        if (mse == BP_ERR_INVALID_ARGUMENT) {
            EXPECT(status, bp_net_backward_labels(net, labels, BATCH, NULL), BP_OK,
                   BP_ERR_NONFINITE);
        } else if (mse != BP_OK && mse != BP_ERR_NONFINITE) {
            fuzz_fail("bp_net_backward on a loaded network returned %s",
                      bp_status_string(mse));
        } else {
            status = mse;
        }
        if (status == BP_OK && optimizer != NULL) {
            EXPECT(status, bp_optimizer_step(optimizer, net), BP_OK, BP_ERR_NONFINITE);
        }
    }
    free(inputs);
    free(outputs);
    free(targets);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t empty[1] = {0};
    bp_status status;
    bp_net *net = UNTOUCHED;
    bp_optimizer *optimizer = UNTOUCHED;
    EXPECT(status, bp_net_load_buffer(size > 0 ? data : empty, size, &net, &optimizer), BP_OK,
           BP_ERR_FORMAT, BP_ERR_NONFINITE, BP_ERR_OUT_OF_MEMORY);
    if (status != BP_OK) {
        if (net != UNTOUCHED || optimizer != UNTOUCHED) {
            fuzz_fail("a failed bp_net_load_buffer wrote its out-pointers");
        }
        return 0;
    }
    if (net == UNTOUCHED || net == NULL || optimizer == UNTOUCHED) {
        fuzz_fail("a successful bp_net_load_buffer left *out or *optimizer_out unset");
    }

    /* Saving what was loaded, loading that and saving again reproduces the same bytes. The
     * comparison comes before training, which changes the weights. */
    size_t first_size = 0, second_size = 0;
    unsigned char *first = save(net, optimizer, &first_size);
    bp_net *again = NULL;
    bp_optimizer *again_optimizer = NULL;
    EXPECT(status, bp_net_load_buffer(first, first_size, &again, &again_optimizer), BP_OK);
    if ((again_optimizer == NULL) != (optimizer == NULL)) {
        fuzz_fail("the optimizer did not survive a save and a load");
    }
    unsigned char *second = save(again, again_optimizer, &second_size);
    if (second_size != first_size || memcmp(first, second, first_size) != 0) {
        fuzz_fail("save(load(save(x))) differs from save(x): %zu and %zu bytes", first_size,
                  second_size);
    }
    free(first);
    free(second);

    exercise(net, optimizer);
    EXPECT(status, bp_optimizer_free(again_optimizer), BP_OK);
    EXPECT(status, bp_net_free(again), BP_OK);
    EXPECT(status, bp_optimizer_free(optimizer), BP_OK);
    EXPECT(status, bp_net_free(net), BP_OK);
    return 0;
}
