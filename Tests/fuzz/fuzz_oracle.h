/*
 * fuzz_oracle.h: what every fuzz harness asserts about a call, whatever the input.
 *
 * libFuzzer reports a crash, a hang, an AddressSanitizer finding or an allocation above its
 * -malloc_limit_mb on its own. These checks add the promises of backprop.h that a crash
 * detector cannot see: a call returns one of the statuses its comment lists, a failure comes with
 * a non-empty bp_last_error(), and a failed call writes no out-pointer. A broken promise prints
 * the call, the status and the message, then aborts, so libFuzzer keeps the input as a crash.
 */
#ifndef BACKPROP_FUZZ_ORACLE_H
#define BACKPROP_FUZZ_ORACLE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "backprop.h"

/* Stops the run: the input that got here breaks a promise of the header. */
static void fuzz_fail(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fprintf(stderr, "\nbroken promise: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n(bp_last_error: \"%s\")\n", bp_last_error());
    va_end(args);
    abort();
}

/* The status is one of the `count` allowed ones, and a failure has a message. */
static void fuzz_expect(const char *call, bp_status status, const bp_status *allowed,
                        size_t count) {
    int known = 0;
    for (size_t i = 0; i < count; i++) {
        known |= status == allowed[i];
    }
    if (!known) {
        fuzz_fail("%s returned %d (%s), which its comment in backprop.h does not list", call,
                  (int)status, bp_status_string(status));
    }
    const char *message = bp_last_error();
    if (status != BP_OK && (message == NULL || message[0] == '\0')) {
        fuzz_fail("%s failed with %s but bp_last_error() is empty", call,
                  bp_status_string(status));
    }
}

/* EXPECT(call, status, ...): runs the call and checks its status is one of those listed. */
#define EXPECT(status_var, call, ...)                                                     \
    do {                                                                                  \
        static const bp_status expect_allowed_[] = {__VA_ARGS__};                         \
        (status_var) = (call);                                                            \
        fuzz_expect(#call, (status_var), expect_allowed_,                                 \
                    sizeof expect_allowed_ / sizeof expect_allowed_[0]);                  \
    } while (0)

#endif /* BACKPROP_FUZZ_ORACLE_H */
