/*
 * check.h: the C tests' harness. Include it before anything else (it sets the POSIX feature
 * macro that fork, pipe and sigaction need under -std=c11).
 *
 * A test file is a list of `static void test_name(void)` functions and a main that runs them:
 *
 *     int main(void) {
 *         RUN(test_something);
 *         RUN(test_something_else);
 *         return check_summary();
 *     }
 *
 * Each test runs in a child process. The library is not supposed to crash on any input, but if
 * it does (a Swift trap is SIGILL), only that test dies: the harness reports the signal and the
 * call that was running, counts a failure, and goes on with the next test. A test that takes
 * longer than CHECK_TIMEOUT_SECONDS is stopped and reported the same way.
 *
 * The checks count passes and failures; failures print the call, the file and line, and what was
 * expected. check_summary() prints the final line, "N passed, M failed", and returns the exit
 * status: 0 only when nothing failed.
 */
#ifndef BACKPROP_TEST_CHECK_H
#define BACKPROP_TEST_CHECK_H

#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backprop.h"

#ifndef CHECK_TIMEOUT_SECONDS
#define CHECK_TIMEOUT_SECONDS 120
#endif

typedef struct check_counts {
    int passed;
    int failed;
} check_counts;

/* In the parent: totals over all tests. In a child: the counts of the running test. */
static check_counts check_totals;
static check_counts check_current;

/* What the running test is doing, for the crash report. */
static const char *volatile check_test_name = "";
static const char *volatile check_where_file = "";
static volatile int check_where_line = 0;
static const char *volatile check_where_expr = "(before the first check)";
static const char *check_context = NULL;
static int check_result_fd = -1;

/* Marks the call about to run; the CHECK macros do this before evaluating their argument. */
static inline int check_begin(const char *file, int line, const char *expr) {
    check_where_file = file;
    check_where_line = line;
    check_where_expr = expr;
    return 0;
}

static inline int check_record(int ok) {
    if (ok) {
        check_current.passed++;
    } else {
        check_current.failed++;
    }
    return ok;
}

static inline void check_fail_header(const char *file, int line, const char *expr) {
    if (check_context != NULL) {
        printf("FAIL %s [%s] (%s:%d): %s\n", check_test_name, check_context, file, line, expr);
    } else {
        printf("FAIL %s (%s:%d): %s\n", check_test_name, file, line, expr);
    }
}

/* CHECK_CONTEXT(text): names what a shared helper is checking, in the failures it reports
 * until the next CHECK_CONTEXT (NULL clears it). */
#define CHECK_CONTEXT(text) (check_context = (text))

/* ---- the checks ------------------------------------------------------------------------- */

/* CHECK(condition): a plain truth. Evaluates to the condition, so a test can stop early:
 *     if (!CHECK(n == 3)) return; */
#define CHECK(cond) check_true_((check_begin(__FILE__, __LINE__, #cond), (cond) != 0), \
                                __FILE__, __LINE__, #cond)

static inline int check_true_(int ok, const char *file, int line, const char *expr) {
    if (!ok) {
        check_fail_header(file, line, expr);
        fflush(stdout);
    }
    return check_record(ok);
}

/* CHECK_STATUS(expected, call): the call returns `expected`; a failure status must come with a
 * non-empty bp_last_error(). CHECK_OK(call) is CHECK_STATUS(BP_OK, call). */
#define CHECK_STATUS(expected, call)                                                    \
    check_status_((expected), (check_begin(__FILE__, __LINE__, #call), (call)), __FILE__, \
                  __LINE__, #call)
#define CHECK_OK(call) CHECK_STATUS(BP_OK, call)

static inline int check_status_(bp_status expected, bp_status got, const char *file,
                                int line, const char *expr) {
    const char *message = bp_last_error();
    if (got != expected) {
        check_fail_header(file, line, expr);
        printf("     expected %s\n     got      %s (bp_last_error: \"%s\")\n",
               bp_status_string(expected), bp_status_string(got), message ? message : "(NULL)");
        fflush(stdout);
        return check_record(0);
    }
    if (expected != BP_OK && (message == NULL || message[0] == '\0')) {
        check_fail_header(file, line, expr);
        printf("     returned %s as expected, but bp_last_error() is empty\n",
               bp_status_string(got));
        fflush(stdout);
        return check_record(0);
    }
    return check_record(1);
}

/* CHECK_NEAR(got, want, tolerance): |got - want| <= tolerance, as doubles; NaN never passes. */
#define CHECK_NEAR(got, want, tolerance)                                                     \
    check_near_((check_begin(__FILE__, __LINE__, #got), (double)(got)), (double)(want),      \
                (double)(tolerance), __FILE__, __LINE__, #got " ~ " #want)

static inline int check_near_(double got, double want, double tolerance, const char *file,
                              int line, const char *expr) {
    int ok = fabs(got - want) <= tolerance;
    if (!ok) {
        check_fail_header(file, line, expr);
        printf("     expected %.9g (within %g)\n     got      %.9g\n", want, tolerance, got);
        fflush(stdout);
    }
    return check_record(ok);
}

/* CHECK_EQ(got, want): equal integers (any integer type), printing both when they differ. */
#define CHECK_EQ(got, want)                                                                   \
    check_eq_((check_begin(__FILE__, __LINE__, #got), (long long)(got)), (long long)(want),   \
              __FILE__, __LINE__, #got " == " #want)

static inline int check_eq_(long long got, long long want, const char *file, int line,
                            const char *expr) {
    int ok = got == want;
    if (!ok) {
        check_fail_header(file, line, expr);
        printf("     expected %lld\n     got      %lld\n", want, got);
        fflush(stdout);
    }
    return check_record(ok);
}

/* ---- running tests in child processes --------------------------------------------------- */

/* Async-signal-safe output: write(2) only. */
static inline void check_write_str(const char *s) {
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    ssize_t ignored = write(STDOUT_FILENO, s, n);
    (void)ignored;
}

static inline void check_write_int(int value) {
    char digits[16];
    int i = (int)sizeof digits - 1;
    int negative = value < 0;
    unsigned magnitude = negative ? 0u - (unsigned)value : (unsigned)value;
    digits[i] = '\0';
    do {
        digits[--i] = (char)('0' + magnitude % 10u);
        magnitude /= 10u;
    } while (magnitude != 0u && i > 1);
    if (negative) {
        digits[--i] = '-';
    }
    check_write_str(&digits[i]);
}

static inline void check_send_counts(void) {
    if (check_result_fd >= 0) {
        check_counts counts = check_current;
        ssize_t ignored = write(check_result_fd, &counts, sizeof counts);
        (void)ignored;
        close(check_result_fd);
        check_result_fd = -1;
    }
}

/* In the child: report where it died, hand the counts to the parent, then die of the signal. */
static inline void check_on_signal(int signal_number) {
    check_write_str(signal_number == SIGALRM ? "FAIL " : "CRASH ");
    check_write_str(check_test_name);
    check_write_str(signal_number == SIGALRM ? ": timed out" : ": signal ");
    if (signal_number != SIGALRM) {
        check_write_int(signal_number);
    }
    check_write_str("; the last check started was ");
    check_write_str(check_where_expr);
    check_write_str(" (");
    check_write_str(check_where_file);
    check_write_str(":");
    check_write_int(check_where_line);
    check_write_str(")\n");
    check_send_counts();
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

static inline void check_install_signal_handlers(void) {
    static const int signals[] = {SIGILL, SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGTRAP, SIGALRM};
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = check_on_signal;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        sigaction(signals[i], &action, NULL);
    }
}

#define RUN(test) check_run(#test, test)

static inline void check_run(const char *name, void (*test)(void)) {
    int fds[2];
    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(2);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        close(fds[0]);
        check_result_fd = fds[1];
        check_test_name = name;
        check_install_signal_handlers();
        alarm(CHECK_TIMEOUT_SECONDS);
        test();
        fflush(stdout);
        check_send_counts();
        _exit(0);
    }

    close(fds[1]);
    check_counts counts = {0, 0};
    size_t have = 0;
    while (have < sizeof counts) {
        ssize_t n = read(fds[0], (char *)&counts + have, sizeof counts - have);
        if (n <= 0) {
            break;
        }
        have += (size_t)n;
    }
    close(fds[0]);
    if (have != sizeof counts) {
        counts.passed = 0;
        counts.failed = 0;
    }

    int wait_status = 0;
    while (waitpid(pid, &wait_status, 0) < 0) {
    }
    int died = !(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0);
    if (died) {
        /* The crash itself is one more failure; the child already said where. */
        counts.failed++;
        if (WIFSIGNALED(wait_status)) {
            printf("FAIL %s: killed by signal %d (%s)\n", name, WTERMSIG(wait_status),
                   strsignal(WTERMSIG(wait_status)));
        } else {
            printf("FAIL %s: exited with status %d\n", name, WEXITSTATUS(wait_status));
        }
    }
    printf("%s %s (%d passed, %d failed)\n", counts.failed == 0 ? "ok  " : "FAIL", name,
           counts.passed, counts.failed);
    fflush(stdout);
    check_totals.passed += counts.passed;
    check_totals.failed += counts.failed;
}

/* Prints the closing line and returns the exit status for main. */
static inline int check_summary(void) {
    printf("%d passed, %d failed\n", check_totals.passed, check_totals.failed);
    fflush(stdout);
    return check_totals.failed == 0 ? 0 : 1;
}

#endif /* BACKPROP_TEST_CHECK_H */
