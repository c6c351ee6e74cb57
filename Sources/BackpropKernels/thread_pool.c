// The library's worker threads. A product split into parts (split_gemm.c) runs its first part
// on the calling thread and each other part on a worker, which then waits for the next one:
// spinning for a moment (the products of a training step come microseconds apart), then asleep
// on a futex.
//
// Why not OpenBLAS's threads: OpenBLAS allocates a job table (524 kB in Debian's build) for
// every product it runs on more than one thread, and its threads cannot run the library's own
// kernel. Why not Dispatch: its workers do not survive a fork (Python's multiprocessing forks),
// and waking one costs more than a spinning worker noticing a counter change.
#include "BackpropKernels.h"

#include <immintrin.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// How long an idle worker spins before it sleeps: longer than the gaps between the products of
// a training step, short enough not to hold a CPU long after the last one.
#define SPIN_NANOSECONDS 200000L

struct worker {
    // Jobs posted to this worker and jobs it has finished: equal while it is idle. `posted` is
    // also the futex a sleeping worker waits on.
    _Alignas(64) atomic_uint posted;
    atomic_uint finished;
    atomic_bool sleeping;
};

static struct worker workers[BPK_MAX_THREADS - 1];
// Workers started, and whether the fork handler is registered: both under pool_lock.
static int started_workers;
static bool fork_handler_registered;
// One product at a time uses the workers; a caller that finds them busy runs alone.
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
// The job being run, written under pool_lock before it is posted.
static void (*job_work)(void *context, int part);
static void *job_context;

static atomic_int thread_count = 1;

int bpk_threads(void) {
    return atomic_load_explicit(&thread_count, memory_order_relaxed);
}

void bpk_set_threads(int threads) {
    atomic_store_explicit(&thread_count, threads < 1 ? 1 : threads > BPK_MAX_THREADS ? BPK_MAX_THREADS : threads,
                          memory_order_relaxed);
}

static long nanoseconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000000000L + (now.tv_nsec - start->tv_nsec);
}

static void wait_for_job(struct worker *self, unsigned finished) {
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned spins = 1; atomic_load_explicit(&self->posted, memory_order_acquire) == finished; spins++) {
        _mm_pause();
        if (spins % 256 == 0 && nanoseconds_since(&start) > SPIN_NANOSECONDS) {
            // Announce the sleep before checking once more (both sequentially consistent): a
            // poster either sees the flag and wakes the futex, or posted before that check.
            atomic_store(&self->sleeping, true);
            while (atomic_load(&self->posted) == finished) {
                syscall(SYS_futex, &self->posted, FUTEX_WAIT_PRIVATE, finished, NULL, NULL, 0);
            }
            atomic_store(&self->sleeping, false);
            return;
        }
    }
}

static void *worker_main(void *argument) {
    struct worker *self = argument;
    int part = (int)(self - workers) + 1;
    unsigned finished = atomic_load(&self->finished);
    for (;;) {
        wait_for_job(self, finished);
        finished++;
        job_work(job_context, part);
        atomic_store_explicit(&self->finished, finished, memory_order_release);
    }
    return NULL;
}

static void post_job(struct worker *worker) {
    atomic_fetch_add(&worker->posted, 1);
    if (atomic_load(&worker->sleeping)) {
        syscall(SYS_futex, &worker->posted, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

static void wait_until_finished(struct worker *worker) {
    unsigned posted = atomic_load_explicit(&worker->posted, memory_order_relaxed);
    for (unsigned spins = 1; atomic_load_explicit(&worker->finished, memory_order_acquire) != posted; spins++) {
        _mm_pause();
        // A worker preempted on a busy machine needs the CPU more than this loop does.
        if (spins % 1024 == 0) sched_yield();
    }
}

// A forked child has only the thread that forked: its workers are gone, start them again.
static void forget_workers_after_fork(void) {
    for (int i = 0; i < started_workers; i++) {
        atomic_store(&workers[i].posted, 0);
        atomic_store(&workers[i].finished, 0);
        atomic_store(&workers[i].sleeping, false);
    }
    started_workers = 0;
    pthread_mutex_init(&pool_lock, NULL);
}

static void lock_pool(void) { pthread_mutex_lock(&pool_lock); }
static void unlock_pool(void) { pthread_mutex_unlock(&pool_lock); }

// Starts workers until `count` run (at most BPK_MAX_THREADS - 1); returns how many run. Called
// under pool_lock.
static int start_workers(int count) {
    if (count > BPK_MAX_THREADS - 1) count = BPK_MAX_THREADS - 1;
    if (!fork_handler_registered) {
        if (pthread_atfork(lock_pool, unlock_pool, forget_workers_after_fork) != 0) {
            return 0;
        }
        fork_handler_registered = true;
    }
    // Workers block every signal: the host's handlers run on the host's threads.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    while (started_workers < count) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, worker_main, &workers[started_workers]) != 0) {
            break;
        }
        pthread_detach(thread);
        started_workers++;
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return started_workers;
}

int bpk_parallel_for(int parts, void (*work)(void *context, int part), void *context) {
    int helpers = 0;
    if (parts > 1 && pthread_mutex_trylock(&pool_lock) == 0) {
        helpers = start_workers(parts - 1);
        if (helpers > parts - 1) helpers = parts - 1;
        if (helpers == 0) unlock_pool();
    }
    if (helpers == 0) {
        for (int part = 0; part < parts; part++) work(context, part);
        return 1;
    }
    job_work = work;
    job_context = context;
    for (int i = 0; i < helpers; i++) post_job(&workers[i]);
    // Parts the workers do not take (fewer could be started) run here, after the first.
    work(context, 0);
    for (int part = helpers + 1; part < parts; part++) work(context, part);
    for (int i = 0; i < helpers; i++) wait_until_finished(&workers[i]);
    unlock_pool();
    return helpers + 1;
}
