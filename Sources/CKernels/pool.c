// Persistent worker threads with a spin-then-park barrier: a dispatch to spinning workers costs well under a
// microsecond, while a futex wake costs ~100 µs here, so workers only park after an idle period.
#include "CKernels.h"
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#define RELAX() _mm_pause()
#else
#define RELAX() ((void)0)
#endif

/// Pause-spins before a waiting thread starts yielding its core (~20-50 µs).
#define YIELD_AFTER 2000u

struct valet_pool {
    int n;
    int spinMicros;
    pthread_t *threads;
    uint32_t epoch;   // futex word: bumped once per job
    int pending;      // workers still running the current job
    int sleepers;
    int stop;
    long ticket;      // next unit of dynamically shared work
    valet_pool_fn fn;
    void *ctx;
};

typedef struct { valet_pool *pool; int index; } worker_arg;

static void futex_wait(uint32_t *addr, uint32_t expected) {
#if defined(__linux__)
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    (void)addr; (void)expected;
    sched_yield();
#endif
}

static void futex_wake_all(uint32_t *addr) {
#if defined(__linux__)
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

static int64_t now_micros(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *worker_main(void *raw) {
    worker_arg arg = *(worker_arg *)raw;
    free(raw);
    valet_pool *p = arg.pool;
    uint32_t seen = 0;
    for (;;) {
        uint32_t e;
        int64_t start = now_micros();
        for (unsigned spins = 1;; spins++) {
            e = __atomic_load_n(&p->epoch, __ATOMIC_ACQUIRE);
            if (e != seen) break;
            // On a machine with more runnable threads than cores, pure spinning can keep the thread we wait
            // for off its core; after a short burst, give the core away between checks.
            if (spins < YIELD_AFTER) RELAX(); else sched_yield();
            if ((spins & 1023) == 0 && now_micros() - start > p->spinMicros) {
                __atomic_fetch_add(&p->sleepers, 1, __ATOMIC_SEQ_CST);
                if (__atomic_load_n(&p->epoch, __ATOMIC_SEQ_CST) == seen) futex_wait(&p->epoch, seen);
                __atomic_fetch_sub(&p->sleepers, 1, __ATOMIC_SEQ_CST);
                start = now_micros();
            }
        }
        seen = e;
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) return NULL;
        p->fn(p->ctx, arg.index, p->n);
        __atomic_fetch_sub(&p->pending, 1, __ATOMIC_RELEASE);
    }
}

valet_pool *valet_pool_create(int nthreads, int spinMicros) {
    valet_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = nthreads < 1 ? 1 : nthreads;
    p->spinMicros = spinMicros;
    p->threads = calloc((size_t)p->n, sizeof(pthread_t));
    for (int i = 1; i < p->n; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        arg->pool = p;
        arg->index = i;
        if (pthread_create(&p->threads[i], NULL, worker_main, arg) != 0) {
            free(arg);
            p->n = i;  // run with the workers that did start
            break;
        }
    }
    return p;
}

int valet_pool_threads(const valet_pool *pool) { return pool->n; }

long valet_pool_ticket(valet_pool *pool) { return __atomic_fetch_add(&pool->ticket, 1, __ATOMIC_RELAXED); }

void valet_pool_run(valet_pool *p, valet_pool_fn fn, void *ctx) {
    if (p->n == 1) {
        p->ticket = 0;
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    __atomic_store_n(&p->ticket, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->pending, p->n - 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&p->epoch, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) > 0) futex_wake_all(&p->epoch);
    fn(ctx, 0, p->n);
    for (unsigned spins = 1; __atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) != 0; spins++) {
        if (spins < YIELD_AFTER) RELAX(); else sched_yield();
    }
}

void valet_pool_destroy(valet_pool *p) {
    if (!p) return;
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    __atomic_fetch_add(&p->epoch, 1, __ATOMIC_SEQ_CST);
    futex_wake_all(&p->epoch);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p);
}
