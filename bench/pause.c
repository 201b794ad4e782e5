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
 * --specials N registers, before the measured phase, N finalizers, N weak
 * references and N ephemerons on N nodes of the long-lived heap (spread
 * over it: every (nodes/N)th key), to show whether the stop-the-world
 * pauses grow with the number registered. The nodes stay reachable, so no
 * finalizer may run and no reference be cleared; each ephemeron has the
 * node as its key and as its value a small object of its own, reachable
 * through the ephemeron only, which the collector has to keep alive from
 * the key (cgc traces ephemerons at mark termination). The weak
 * references' cells and the ephemeron handles are kept behind roots. At
 * the end every weak reference must still read its node, every ephemeron
 * its node and intact value, and no finalizer may have run. They add to
 * the live heap (cgc: a weak handle, an ephemeron and its value, two
 * pointer arrays, per node; Boehm: its own records), which the table's
 * pause-specials/pause ratios should be read with. Boehm has no
 * ephemerons: it gets the finalizers (ordered) and disappearing links
 * only; malloc, or a cgc that lacks any of the three, reports the
 * configuration unsupported (bu_unsupported). --specials-kinds LIST
 * registers only some of them (comma-separated: fin, weak, eph), to tell
 * which kind a change in the pauses comes from.
 *
 * Usage: pause [--heap-mib M] [--seconds S] [--window W] [--uncooperative]
 *              [--specials N] [--specials-kinds LIST]
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

/* ---- --specials: finalizers, weak references, ephemerons on the heap ---- */

/* The kinds of --specials-kinds, as bits. */
#define SPEC_FIN  1u
#define SPEC_WEAK 2u
#define SPEC_EPH  4u

/* What this build can register. */
#define SPEC_AVAILABLE                                                         \
    ((BK_HAS_FINALIZERS ? SPEC_FIN : 0u) | (BK_HAS_WEAK ? SPEC_WEAK : 0u) |    \
     (BK_HAS_EPHEMERONS ? SPEC_EPH : 0u))
/* What --specials registers by default: for cgc all three, so that a cgc
 * lacking one reports the run unsupported instead of measuring less; for
 * the others what Boehm has (no ephemerons). */
#if defined(BACKEND_CGC)
#define SPEC_DEFAULT (SPEC_FIN | SPEC_WEAK | SPEC_EPH)
#else
#define SPEC_DEFAULT (SPEC_FIN | SPEC_WEAK)
#endif

#define SPECIAL_MAGIC 0x5EC1A15EC1A1ULL

/* "fin+weak+eph", or the part of it that kinds has. */
static const char *spec_kinds_name(unsigned kinds)
{
    static char buf[32];
    buf[0] = 0;
    if (kinds & SPEC_FIN)
        strcat(buf, "+fin");
    if (kinds & SPEC_WEAK)
        strcat(buf, "+weak");
    if (kinds & SPEC_EPH)
        strcat(buf, "+eph");
    return buf[0] ? buf + 1 : "none";
}

/* A comma-separated list of fin, weak, eph. */
static unsigned spec_kinds_parse(const char *list)
{
    unsigned kinds = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 3 && strncmp(p, "fin", 3) == 0)
            kinds |= SPEC_FIN;
        else if (n == 4 && strncmp(p, "weak", 4) == 0)
            kinds |= SPEC_WEAK;
        else if (n == 3 && strncmp(p, "eph", 3) == 0)
            kinds |= SPEC_EPH;
        else
            bu_die("pause: --specials-kinds: '%.*s' is none of fin, weak, "
                   "eph",
                   (int)n, p);
        p += n + (p[n] == ',');
    }
    if (!kinds)
        bu_die("pause: --specials-kinds: empty");
    return kinds;
}

#if SPEC_AVAILABLE

/* The cells of the weak references and (cgc) the ephemeron handles, each
 * an array of N behind a root. */
#if BK_HAS_WEAK
static bk_weak *g_spec_weak;
#endif
#if BK_HAS_EPHEMERONS
static bk_ephemeron *g_spec_eph;

/* An ephemeron's value: reachable through the ephemeron only. */
struct spec_value {
    uint64_t key;   /* its key node's key */
    uint64_t check; /* key ^ SPECIAL_MAGIC */
};
#endif

#if BK_HAS_FINALIZERS
/* Finalizers that ran: they must not, every node staying reachable. */
static _Atomic uint64_t g_spec_finalized;

static void spec_finalize(void *obj, void *data)
{
    (void)obj;
    (void)data;
    atomic_fetch_add_explicit(&g_spec_finalized, 1, memory_order_relaxed);
}
#endif

/* The nodes that get specials: keys that are multiples of the stride, so
 * spread over the whole heap, taken in bucket order, the first n. Every
 * walk of the unchanged table finds them in the same order. */
static uint64_t spec_stride(uint64_t nnodes, long n)
{
    return nnodes / (uint64_t)n;
}

static void specials_register(uint64_t nnodes, long n, unsigned kinds)
{
    uint64_t nbuckets = nnodes / 8 ? nnodes / 8 : 1;
    uint64_t stride = spec_stride(nnodes, n);
#if BK_HAS_WEAK
    if (kinds & SPEC_WEAK) {
        bk_root(&g_spec_weak, sizeof g_spec_weak);
        bk_weak *cells = bk_weak_cells((size_t)n);
        if (!cells)
            bu_die("pause: out of memory");
        BK_STORE(g_spec_weak, cells);
    }
#endif
#if BK_HAS_EPHEMERONS
    if (kinds & SPEC_EPH) {
        bk_root(&g_spec_eph, sizeof g_spec_eph);
        bk_ephemeron *eph = bk_alloc((size_t)n * sizeof *eph);
        if (!eph)
            bu_die("pause: out of memory");
        for (long i = 0; i < n; i++)
            BK_STORE(eph[i], NULL);
        BK_STORE(g_spec_eph, eph);
    }
#endif
    long i = 0;
    for (uint64_t b = 0; b < nbuckets && i < n; b++) {
        for (node *nd = g_table[b]; nd && i < n; nd = nd->next) {
            if (nd->key % stride != 0)
                continue;
            int err = 0;
#if BK_HAS_FINALIZERS
            if (kinds & SPEC_FIN)
                err |= bk_set_finalizer(nd, spec_finalize, NULL);
#endif
#if BK_HAS_WEAK
            if (kinds & SPEC_WEAK)
                err |= bk_weak_set(&g_spec_weak[i], nd);
#endif
#if BK_HAS_EPHEMERONS
            if (kinds & SPEC_EPH) {
                struct spec_value *v = bk_alloc_noscan(sizeof *v);
                if (!v)
                    bu_die("pause: out of memory");
                v->key = nd->key;
                v->check = nd->key ^ SPECIAL_MAGIC;
                bk_ephemeron e = bk_ephemeron_new(nd, v);
                if (!e)
                    err = -1;
                BK_STORE(g_spec_eph[i], e);
            }
#endif
            if (err)
                bu_die("pause: cannot register the specials of node %llu",
                       (unsigned long long)nd->key);
            i++;
        }
    }
    if (i != n)
        bu_die("pause: found %ld nodes for %ld specials", i, n);
}

/* 0 if every special still refers to its node and no finalizer ran. */
static int specials_check(uint64_t nnodes, long n, unsigned kinds)
{
    uint64_t nbuckets = nnodes / 8 ? nnodes / 8 : 1;
    uint64_t stride = spec_stride(nnodes, n), weak_bad = 0, eph_bad = 0;
    uint64_t fin = 0;
    long i = 0;
    for (uint64_t b = 0; b < nbuckets && i < n; b++) {
        bk_safepoint();
        for (node *nd = g_table[b]; nd && i < n; nd = nd->next) {
            if (nd->key % stride != 0)
                continue;
#if BK_HAS_WEAK
            if ((kinds & SPEC_WEAK) && bk_weak_get(&g_spec_weak[i]) != nd)
                weak_bad++;
#endif
#if BK_HAS_EPHEMERONS
            if (kinds & SPEC_EPH) {
                bk_ephemeron e = g_spec_eph[i];
                const struct spec_value *v = bk_ephemeron_value(e);
                if (bk_ephemeron_key(e) != nd || !v || v->key != nd->key ||
                    v->check != (nd->key ^ SPECIAL_MAGIC))
                    eph_bad++;
            }
#endif
            i++;
        }
    }
#if BK_HAS_FINALIZERS
    fin = atomic_load_explicit(&g_spec_finalized, memory_order_relaxed);
#endif
    (void)kinds;
    if (i != n || weak_bad || eph_bad || fin) {
        fprintf(stderr,
                "pause: FAILED: specials: %ld of %ld nodes found, %llu weak "
                "references and %llu ephemerons no longer read their node, "
                "%llu finalizers of reachable nodes ran\n",
                i, n, (unsigned long long)weak_bad, (unsigned long long)eph_bad,
                (unsigned long long)fin);
        return -1;
    }
    return 0;
}
#endif /* SPEC_AVAILABLE */

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
    long heap_mib = 256, window = 4096, specials = 0;
    double seconds = 10;
    int uncooperative = 0;
    unsigned spec_kinds = SPEC_DEFAULT;
    const char *val;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--uncooperative") == 0) {
            uncooperative = 1;
            continue;
        }
        if ((val = bu_opt_value(argc, argv, &i, "--specials-kinds"))) {
            spec_kinds = spec_kinds_parse(val);
            continue;
        }
        if (bu_opt_long(argc, argv, &i, "--heap-mib", &heap_mib) ||
            bu_opt_double(argc, argv, &i, "--seconds", &seconds) ||
            bu_opt_long(argc, argv, &i, "--window", &window) ||
            bu_opt_long(argc, argv, &i, "--specials", &specials))
            continue;
        bu_die("usage: pause [--heap-mib M] [--seconds S] [--window W] "
               "[--uncooperative] [--specials N] [--specials-kinds LIST]");
    }
    if (heap_mib < 1 || heap_mib > (1L << 20) || seconds <= 0 || window < 1 ||
        window > (1L << 30) || specials < 0)
        bu_die("pause: heap-mib >= 1, seconds > 0, window 1..2^30, "
               "specials >= 0");
    if (specials > 0 && (spec_kinds & ~SPEC_AVAILABLE))
        bu_unsupported("pause: --specials: this %s build lacks %s", BK_NAME,
                       spec_kinds_name(spec_kinds & ~SPEC_AVAILABLE));
    if ((uint64_t)specials > ((uint64_t)heap_mib << 20) / sizeof(node))
        bu_die("pause: --specials %ld: more than the heap's %llu nodes",
               specials,
               (unsigned long long)(((uint64_t)heap_mib << 20) / sizeof(node)));

    bk_init();
    bk_root(&g_table, sizeof g_table);

    uint64_t rng = 0x2545F4914F6CDD1DULL;
    bk_gc_cursor c0 = bk_gc_mark();
    uint64_t tb0 = bu_now_ns();
    uint64_t nnodes = build_heap(heap_mib, &rng);
    uint64_t ts0 = bu_now_ns();
#if SPEC_AVAILABLE
    if (specials > 0)
        specials_register(nnodes, specials, spec_kinds);
#endif
    uint64_t ts1 = bu_now_ns();
    bk_collect();
    uint64_t tb1 = bu_now_ns();
    struct bk_gc_info build_gi;
    bk_gc_since(c0, &build_gi);
    printf("built %ld MiB long-lived heap (%llu nodes) in %.2f s\n", heap_mib,
           (unsigned long long)nnodes, (tb1 - tb0) / 1e9);
    if (specials > 0)
        printf("specials: %ld nodes, each with %s, registered in %.2f s\n",
               specials, spec_kinds_name(spec_kinds), (ts1 - ts0) / 1e9);
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
#if SPEC_AVAILABLE
    if (specials > 0 && specials_check(nnodes, specials, spec_kinds) != 0)
        return 1;
#endif
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
    bu_result_long("specials", specials);
    bu_result_str("specials_kinds",
                  spec_kinds_name(specials > 0 ? spec_kinds : 0));
    bu_result_double("specials_s", (ts1 - ts0) / 1e9, 3);
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
