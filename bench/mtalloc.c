/*
 * mtalloc.c — multi-threaded small-object churn: the cost of one
 * allocation when several threads allocate at once.
 *
 * Each thread keeps a window of W live objects (a heap-allocated slot
 * array, so the collectors see it) and, for every iteration, allocates an
 * object of 16..128 bytes (multiples of 8, uniformly mixed), stores it into
 * a random slot through BK_STORE and drops the object that was there (the
 * malloc build frees it). The live set per thread thus stays at W objects
 * while every slot store also exercises the write barrier.
 *
 * Every object carries a sequence number, checked when it is dropped: an
 * object freed or reused while still referenced fails the run.
 *
 * Reported: ns per allocation (the summed per-thread time of the churn
 * loop over all allocations, i.e. per-thread cost including the store,
 * the check and, for malloc, the free) and the aggregate rate.
 *
 * Usage: mtalloc [--threads T] [--iters N per thread] [--window W]
 */
#include "backend.h"
#include "benchutil.h"

#include <stdio.h>

struct worker {
    long id;
    long iters;
    long window;
    pthread_barrier_t *start;
    uint64_t ns;   /* time spent in the churn loop */
    long failures; /* objects found corrupted */
    pthread_t tid;
};

/* Map a random 32-bit value onto [0, n) without a division. */
static inline uint64_t below(uint64_t r32, uint64_t n)
{
    return (r32 * n) >> 32;
}

static void *churn(void *arg)
{
    struct worker *w = arg;
    const long W = w->window;
    uint64_t rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(w->id + 1);
    uint64_t seq = 1;

    /* The slots live in the GC heap (a conservative object), so stores into
     * them must go through the barrier; the expected sequence numbers are
     * plain data kept in malloc memory, invisible to the collectors. */
    uint64_t **slot = bk_alloc((size_t)W * sizeof *slot);
    uint64_t *expect = malloc((size_t)W * sizeof *expect);
    if (!slot || !expect)
        bu_die("mtalloc: out of memory");
    for (long i = 0; i < W; i++) {
        uint64_t *o = bk_alloc(16);
        if (!o)
            bu_die("mtalloc: out of memory");
        o[0] = seq;
        o[1] = 16;
        BK_STORE(slot[i], o);
        expect[i] = seq++;
    }

    bk_barrier_wait(w->start);

    long failures = 0;
    uint64_t t0 = bu_now_ns();
    for (long i = 0; i < w->iters; i++) {
        uint64_t r = bu_rand(&rng);
        uint64_t s = below(r >> 32, (uint64_t)W);
        size_t size = 16 + 8 * (size_t)below(r & 0xffffffffu, 15);
        uint64_t *o = bk_alloc(size);
        if (!o)
            bu_die("mtalloc: out of memory");
        o[0] = seq;
        o[1] = size;
        uint64_t *old = slot[s];
        if (old[0] != expect[s])
            failures++;
        BK_STORE(slot[s], o);
        expect[s] = seq++;
        bk_free(old);
    }
    uint64_t t1 = bu_now_ns();

    for (long i = 0; i < W; i++) {
        if (slot[i][0] != expect[i])
            failures++;
        bk_free(slot[i]);
    }
    bk_free(slot);
    free(expect);

    w->ns = t1 - t0;
    w->failures = failures;
    return NULL;
}

#define MAX_THREADS 64

int main(int argc, char **argv)
{
    uint64_t start = bu_now_ns();
    long nthreads = 2, iters = 20000000, window = 4096;

    for (int i = 1; i < argc; i++) {
        if (bu_opt_long(argc, argv, &i, "--threads", &nthreads) ||
            bu_opt_long(argc, argv, &i, "--iters", &iters) ||
            bu_opt_long(argc, argv, &i, "--window", &window))
            continue;
        bu_die("usage: mtalloc [--threads T] [--iters N] [--window W]");
    }
    if (nthreads < 1 || nthreads > MAX_THREADS || iters < 1 || window < 1 ||
        window > (1L << 30))
        bu_die("mtalloc: threads 1..%d, iters >= 1, window 1..2^30",
               MAX_THREADS);

    bk_init();

    struct worker w[MAX_THREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
    for (long t = 0; t < nthreads; t++) {
        w[t] = (struct worker){
            .id = t, .iters = iters, .window = window, .start = &barrier};
        if (bk_thread_create(&w[t].tid, churn, &w[t]) != 0)
            bu_die("mtalloc: cannot create a thread");
    }
    uint64_t sum_ns = 0, max_ns = 0;
    long failures = 0;
    for (long t = 0; t < nthreads; t++) {
        bk_thread_join(w[t].tid, NULL);
        sum_ns += w[t].ns;
        if (w[t].ns > max_ns)
            max_ns = w[t].ns;
        failures += w[t].failures;
    }
    pthread_barrier_destroy(&barrier);
    uint64_t end = bu_now_ns();

    if (failures) {
        fprintf(stderr,
                "mtalloc: FAILED: %ld objects were corrupted while live\n",
                failures);
        return 1;
    }

    double total = (double)iters * (double)nthreads;
    double ns_per_alloc = (double)sum_ns / total;
    double mallocs_per_s = total / ((double)max_ns / 1e9);
    struct bk_gc_info gi;
    bk_gc_since(0, &gi);
    printf("%ld threads x %ld allocations (window %ld): %.1f ns/alloc per "
           "thread, %.1f M allocs/s in total\n",
           nthreads, iters, window, ns_per_alloc, mallocs_per_s / 1e6);

    bu_result_begin("mtalloc", BK_NAME);
    bu_result_long("threads", nthreads);
    bu_result_double("wall_s", (end - start) / 1e9, 3);
    bu_result_long("maxrss_kb", bu_maxrss_kb());
    bu_result_double("ns_per_alloc", ns_per_alloc, 2);
    bu_result_double("mallocs_per_s", mallocs_per_s, 0);
    bk_result_gc(&gi);
    bu_result_end();
    return 0;
}
