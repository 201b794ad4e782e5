/*
 * pause.c — allocation latency with a large long-lived heap: what a
 * mutator feels of the collector's pauses.
 *
 * Phase 1 (not measured) builds a long-lived heap of --heap-mib MiB of
 * 32-byte nodes, shaped like a chained hash table: one big bucket array,
 * reachable only from a global root, whose chains are threaded through
 * memory in random order, each node also pointing at a random bucket's
 * chain. Marking it is a pointer chase with poor locality, the case that
 * makes collectors pause. A full collection then settles the heap.
 *
 * Phase 2 (measured, --seconds s) runs a mutator that allocates small
 * objects (16..64 bytes), keeps the last --window of them in a FIFO and
 * drops the rest, timing EVERY allocation with CLOCK_MONOTONIC. It reports
 * the p50/p99/p99.9/max allocation latency and, for the collectors, the
 * cycles completed within that phase and their stop-the-world pauses.
 *
 * Pauses are counted per cycle: max_pause_ms is the longest, p99_pause_ms
 * the 99th percentile (nearest rank) of the cycles completed in phase 2.
 * For cgc a sample is gc_read_stats' pause_ns entry of the cycle, i.e. its
 * two stop-the-world pauses added up (one pause, the whole mark, under
 * CGC_DEBUG=gcstoptheworld=1); pause_max_ns, the longest single pause since
 * gc_init, is not used, as it may come from phase 1. The pause_ns ring
 * keeps 256 cycles, so past 256 cycles in phase 2 the figures cover the
 * last 256 only (a note is printed). Boehm's samples are its
 * stop-the-world windows, one per collection.
 *
 * The table is checked node by node at the end, so a collector that frees
 * part of the live heap fails the run instead of just looking fast.
 *
 * --uncooperative adds, for the measured phase, two threads that never
 * cooperate with the collector, the case a collector that waits for
 * safepoints cannot handle: one blocked in read() on a pipe outside any
 * blocking region, one in a compute loop that neither allocates nor calls
 * a safepoint. Each first allocates a small object (attaching itself to the
 * collector, or registered by bk_thread_create for Boehm) and a child it
 * points to, and keeps the only reference in its registers or stack; after
 * the phase (the pipe written, the loop told to stop) each checks both
 * objects' contents, so a collector that neither stopped the thread nor
 * scanned its stack fails the run, with the mutator's allocations reusing
 * the freed memory. cgc has to preempt them with its signal (preempt.h);
 * Boehm stops them with its own signals; malloc just runs them. The compute
 * thread takes a core, which is part of what is measured.
 *
 * Usage: pause [--heap-mib M] [--seconds S] [--window W] [--uncooperative]
 */
#include "backend.h"
#include "benchutil.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

typedef struct node node;
struct node {
    node *next;   /* bucket chain */
    node *other;  /* a random chain elsewhere: cross edges for the marker */
    uint64_t key; /* 0..n-1, for the final check */
    uint64_t val;
};

/* The only path to the long-lived heap once it is built: for cgc it is
 * registered as a root; Boehm scans the data segment by itself. */
static node **g_table;

static inline uint64_t below(uint64_t r32, uint64_t n)
{
    return (r32 * n) >> 32;
}

/* Builds the table into g_table; returns the number of nodes. */
static uint64_t build_heap(long heap_mib, uint64_t *rng)
{
    uint64_t nnodes = ((uint64_t)heap_mib << 20) / sizeof(node);
    uint64_t nbuckets = nnodes / 8 ? nnodes / 8 : 1;
    if (nbuckets > UINT32_MAX)
        bu_die("pause: heap too large");

    node **table = bk_alloc(nbuckets * sizeof *table);
    if (!table)
        bu_die("pause: out of memory");
    for (uint64_t b = 0; b < nbuckets; b++)
        BK_STORE(table[b], NULL); /* malloc memory is not zeroed */
    BK_STORE(g_table, table);

    for (uint64_t i = 0; i < nnodes; i++) {
        node *n = bk_alloc(sizeof *n);
        if (!n)
            bu_die("pause: out of memory");
        uint64_t r = bu_rand(rng);
        uint64_t b = below(r >> 32, nbuckets);
        n->key = i;
        n->val = i * 0x9E3779B97F4A7C15ULL;
        BK_STORE(n->other, table[below(r & 0xffffffffu, nbuckets)]);
        BK_STORE(n->next, table[b]);
        BK_STORE(table[b], n);
    }
    return nnodes;
}

/* Walks every chain; 0 if the table still holds exactly nodes 0..n-1. */
static int check_heap(uint64_t nnodes)
{
    uint64_t nbuckets = nnodes / 8 ? nnodes / 8 : 1;
    uint64_t count = 0, keysum = 0;
    for (uint64_t b = 0; b < nbuckets; b++) {
        bk_safepoint();
        for (node *n = g_table[b]; n; n = n->next) {
            if (n->key >= nnodes || n->val != n->key * 0x9E3779B97F4A7C15ULL ||
                (n->other && n->other->key >= nnodes))
                return -1;
            count++;
            keysum += n->key;
        }
    }
    return count == nnodes && keysum == nnodes * (nnodes - 1) / 2 ? 0 : -1;
}

/* ---- --uncooperative: threads that never reach a safepoint -------------- */

/* The object an uncooperative thread holds: a pattern, and a child (a
 * second GC object) so the marker has to trace through it too. */
struct held {
    uint64_t pattern[4];
    struct held *child;
};

#define HELD_MAGIC 0xC0FFEE0DDBA11ULL

/* Allocated by the thread itself, reachable only from its locals. */
static struct held *held_new(uint64_t salt)
{
    struct held *h = bk_alloc(sizeof *h);
    struct held *c = bk_alloc(sizeof *c);
    if (!h || !c)
        bu_die("pause: out of memory");
    for (int i = 0; i < 4; i++) {
        h->pattern[i] = HELD_MAGIC ^ salt ^ (uint64_t)i;
        c->pattern[i] = ~(HELD_MAGIC ^ salt ^ (uint64_t)i);
    }
    BK_STORE(c->child, NULL);
    BK_STORE(h->child, c);
    return h;
}

static int held_ok(struct held *h, uint64_t salt)
{
    /* Forget what is known of h: the compiler may not answer from the
     * values it stored before the thread waited (malloc's memory does not
     * escape), it has to read the memory. */
    __asm__ volatile("" : "+r"(h) : : "memory");
    const struct held *c = h->child;
    if (!c || c->child)
        return 0;
    for (int i = 0; i < 4; i++)
        if (h->pattern[i] != (HELD_MAGIC ^ salt ^ (uint64_t)i) ||
            c->pattern[i] != ~(HELD_MAGIC ^ salt ^ (uint64_t)i))
            return 0;
    return 1;
}

struct uncoop {
    pthread_barrier_t ready; /* both threads hold their object */
    int pipe[2];             /* the reader blocks on pipe[0] */
    atomic_bool stop;        /* ends the compute loop */
    uint64_t spins;          /* compute loop iterations, for the report */
    int reader_ok, spinner_ok;
};

/* Blocked in read() with no blocking region: to cgc this thread is RUNNING
 * all along. Returns when the main thread writes to the pipe. */
static void *reader_main(void *arg)
{
    struct uncoop *u = arg;
    struct held *h = held_new(1);
    bk_barrier_wait(&u->ready);
    char byte;
    ssize_t n;
    do
        n = read(u->pipe[0], &byte, 1);
    while (n < 0 && errno == EINTR);
    u->reader_ok = n == 1 && held_ok(h, 1);
    bk_free(h->child);
    bk_free(h);
    return NULL;
}

/* Pure computation: no allocation, no safepoint, no system call, just a
 * relaxed load of the stop flag (which is no safepoint either). */
static void *spinner_main(void *arg)
{
    struct uncoop *u = arg;
    struct held *h = held_new(2);
    bk_barrier_wait(&u->ready);
    uint64_t x = 0x9E3779B97F4A7C15ULL, spins = 0;
    while (!atomic_load_explicit(&u->stop, memory_order_relaxed)) {
        for (int i = 0; i < 1024; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        spins++;
    }
    u->spins = spins + (x & 1); /* keeps the loop from being removed */
    u->spinner_ok = held_ok(h, 2);
    bk_free(h->child);
    bk_free(h);
    return NULL;
}

static void uncoop_start(struct uncoop *u, pthread_t tids[2])
{
    if (pipe(u->pipe) != 0 || pthread_barrier_init(&u->ready, NULL, 3) != 0)
        bu_die("pause: cannot set up the uncooperative threads");
    atomic_init(&u->stop, false);
    if (bk_thread_create(&tids[0], reader_main, u) != 0 ||
        bk_thread_create(&tids[1], spinner_main, u) != 0)
        bu_die("pause: cannot create the uncooperative threads");
    bk_barrier_wait(&u->ready);
}

/* Wakes and stops both threads, joins them; 0 if their objects survived. */
static int uncoop_finish(struct uncoop *u, pthread_t tids[2])
{
    atomic_store_explicit(&u->stop, true, memory_order_relaxed);
    if (write(u->pipe[1], "x", 1) != 1)
        bu_die("pause: cannot wake the reader thread");
    bk_thread_join(tids[0], NULL);
    bk_thread_join(tids[1], NULL);
    close(u->pipe[0]);
    close(u->pipe[1]);
    pthread_barrier_destroy(&u->ready);
    if (!u->reader_ok)
        fprintf(stderr, "pause: FAILED: the object held by the thread "
                        "blocked in read() was freed or overwritten\n");
    if (!u->spinner_ok)
        fprintf(stderr, "pause: FAILED: the object held by the computing "
                        "thread was freed or overwritten\n");
    return u->reader_ok && u->spinner_ok ? 0 : -1;
}

/* The cost of the two clock reads around each allocation, reported so the
 * latencies can be read net of it. */
static uint64_t clock_overhead_ns(void)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 1000; i++) {
        uint64_t a = bu_now_ns();
        uint64_t b = bu_now_ns();
        if (b - a < best)
            best = b - a;
    }
    return best;
}

int main(int argc, char **argv)
{
    uint64_t start = bu_now_ns();
    long heap_mib = 256, window = 4096;
    double seconds = 10;
    int uncooperative = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--uncooperative") == 0) {
            uncooperative = 1;
            continue;
        }
        if (bu_opt_long(argc, argv, &i, "--heap-mib", &heap_mib) ||
            bu_opt_double(argc, argv, &i, "--seconds", &seconds) ||
            bu_opt_long(argc, argv, &i, "--window", &window))
            continue;
        bu_die("usage: pause [--heap-mib M] [--seconds S] [--window W] "
               "[--uncooperative]");
    }
    if (heap_mib < 1 || heap_mib > (1L << 20) || seconds <= 0 || window < 1 ||
        window > (1L << 30))
        bu_die("pause: heap-mib >= 1, seconds > 0, window 1..2^30");

    bk_init();
    bk_root(&g_table, sizeof g_table);

    uint64_t rng = 0x2545F4914F6CDD1DULL;
    bk_gc_cursor c0 = bk_gc_mark();
    uint64_t tb0 = bu_now_ns();
    uint64_t nnodes = build_heap(heap_mib, &rng);
    bk_collect();
    uint64_t tb1 = bu_now_ns();
    struct bk_gc_info build_gi;
    bk_gc_since(c0, &build_gi);
    printf("built %ld MiB long-lived heap (%llu nodes) in %.2f s\n", heap_mib,
           (unsigned long long)nnodes, (tb1 - tb0) / 1e9);
    if (build_gi.gcs >= 0)
        printf("collections while building: %ld, max pause %.1f ms\n",
               build_gi.gcs, build_gi.max_pause_ms);

    /* The FIFO of recent objects: a GC-heap slot array written through the
     * barrier, like any pointer-holding object. */
    uint64_t **fifo = bk_alloc((size_t)window * sizeof *fifo);
    if (!fifo)
        bu_die("pause: out of memory");
    for (long i = 0; i < window; i++)
        BK_STORE(fifo[i], NULL);

    struct bu_hist *h = calloc(1, sizeof *h);
    if (!h)
        bu_die("pause: out of memory");
    uint64_t overhead = clock_overhead_ns();

    struct uncoop u = {0};
    pthread_t uncoop_tids[2];
    if (uncooperative) {
        uncoop_start(&u, uncoop_tids);
        printf("uncooperative: a thread blocked in read() and a computing "
               "thread, each holding an object only in its locals\n");
    }

    /* Cycles completed from here on are the measured ones (the forced
     * collection above has completed, so normally none is half done). */
    bk_gc_cursor c1 = bk_gc_mark();
    uint64_t t_start = bu_now_ns();
    uint64_t deadline = t_start + (uint64_t)(seconds * 1e9);
    uint64_t seq = 0, t1;
    long k = 0;
    do {
        uint64_t r = bu_rand(&rng);
        size_t size = 16 + 16 * (size_t)(r >> 62);
        uint64_t t0 = bu_now_ns();
        uint64_t *o = bk_alloc(size);
        t1 = bu_now_ns();
        bu_hist_add(h, t1 - t0);
        if (!o)
            bu_die("pause: out of memory");
        o[0] = ++seq;
        o[1] = size;
        uint64_t *old = fifo[k];
        BK_STORE(fifo[k], o);
        bk_free(old);
        if (++k == window)
            k = 0;
    } while (t1 < deadline);
    double measured_s = (t1 - t_start) / 1e9;
    struct bk_gc_info gi;
    bk_gc_since(c1, &gi);

    if (uncooperative && uncoop_finish(&u, uncoop_tids) != 0)
        return 1;
    if (check_heap(nnodes) != 0) {
        fprintf(stderr, "pause: FAILED: the long-lived heap is corrupted\n");
        return 1;
    }
    uint64_t end = bu_now_ns();

    uint64_t p50 = bu_hist_pct(h, 50), p99 = bu_hist_pct(h, 99),
             p999 = bu_hist_pct(h, 99.9);
    double mean = (double)h->sum / (double)h->count;
    printf("measured %.2f s: %llu allocations, latency mean %.1f ns, p50 %llu"
           " ns, p99 %llu ns, p99.9 %llu ns, max %.3f ms (clock overhead "
           "%llu ns included)\n",
           measured_s, (unsigned long long)h->count, mean,
           (unsigned long long)p50, (unsigned long long)p99,
           (unsigned long long)p999, h->max / 1e6,
           (unsigned long long)overhead);
    if (gi.gcs >= 0)
        printf("collections during the measurement: %ld, max stop-the-world "
               "pause per cycle %.3f ms, p99 %.3f ms\n",
               gi.gcs, gi.max_pause_ms, gi.p99_pause_ms);
#if defined(BACKEND_CGC)
    if (gi.gcs > 256)
        printf("note: cgc's pause_ns ring keeps 256 cycles: the pause max and"
               " p99 cover the last 256 of the %ld measured cycles\n",
               gi.gcs);
#endif

    bu_result_begin("pause", BK_NAME);
    bu_result_long("heap_mib", heap_mib);
    bu_result_long("uncooperative", uncooperative);
    bu_result_double("wall_s", (end - start) / 1e9, 3);
    bu_result_double("build_s", (tb1 - tb0) / 1e9, 3);
    bu_result_double("measured_s", measured_s, 3);
    bu_result_long("maxrss_kb", bu_maxrss_kb());
    bu_result_u64("allocs", h->count);
    bu_result_double("ns_per_alloc", mean, 1);
    bu_result_u64("p50_ns", p50);
    bu_result_u64("p99_ns", p99);
    bu_result_u64("p999_ns", p999);
    bu_result_u64("max_ns", h->max);
    bu_result_u64("clock_ns", overhead);
    bu_result_long("gcs", gi.gcs);
    bu_result_double("max_pause_ms", gi.max_pause_ms, 3);
    bu_result_double("p99_pause_ms", gi.p99_pause_ms, 3);
    bu_result_end();
    free(h);
    return 0;
}
