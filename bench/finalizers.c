/*
 * finalizers.c — what finalization costs: allocate --count small objects,
 * register a finalizer on each, drop them and collect until every
 * finalizer has run.
 *
 * Each object is 64 bytes (an id, a check word and a payload, no pointers
 * between objects: with ordered finalization a chain of finalizable objects
 * would be finalized one link per cycle, which measures the chain, not the
 * finalizers). It goes into a ring of --window slots, evicting (dropping)
 * the object allocated --window iterations before, so the live heap stays
 * small while the garbage, every object of it finalizable, flows through
 * the collector's automatic cycles. Every --batch objects the main thread
 * runs the finalizers found ready so far (bk_run_finalizers). After the
 * last one the ring is cleared and the program collects, and runs what is
 * ready, until all --count finalizers have run.
 *
 * Where finalizers run, chosen to compare like with like: Boehm's default
 * (finalize-on-demand off) runs them on the mutator thread, from its
 * allocation slow path after a collection and from GC_invoke_finalizers.
 * cgc's closest mode is GC_FINALIZE_ON_DEMAND with the mutator calling
 * gc_run_finalizers every batch, so both collectors do the whole work on
 * the main thread and the wall time compares the work, not the spare CPU.
 * --cgc-finalizer-thread runs cgc in its default mode instead: finalizers
 * on cgc's finalizer thread, concurrently with the mutator (the loop then
 * calls nothing, and the drain waits for that thread).
 *
 * Checked: each finalizer finds its object intact (id and check word: the
 * memory was not reused before the finalizer ran) and runs once (a byte
 * per id); the run fails unless exactly --count finalizers ran.
 *
 * Reported: ns per object (allocate + register + finalize: from the first
 * allocation to the last finalizer over --count), the loop and drain times,
 * GCs and pauses over the whole run. --no-finalizers registers none: the
 * same loop as a baseline for what the finalizers add.
 *
 * Usage: finalizers [--count N] [--window W] [--batch B]
 *                   [--cgc-finalizer-thread] [--no-finalizers]
 */
#include "backend.h"
#include "benchutil.h"

#if !BK_HAS_FINALIZERS
#error "finalizers: the backend has no finalizers (build it for cgc or Boehm)"
#endif

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#define CHECK_KEY 0x5DEECE66DULL

struct obj {
    uint64_t id;
    uint64_t check; /* id ^ CHECK_KEY */
    uint64_t payload[6];
};

/* What the finalizers share with main: their data argument. In the
 * finalizer-thread mode they run on another thread, hence the atomics. */
struct fin_state {
    uint64_t count;
    _Atomic uint64_t run;
    _Atomic uint64_t bad; /* damaged objects, or finalized twice */
    atomic_uchar *seen;   /* one byte per id */
};

/* The ring of live objects. Globals are scanned by both collectors; it is
 * registered too, as the other benchmarks do, so CGC_SCAN_GLOBALS=0 works. */
static struct obj **g_ring;

static void on_finalize(void *p, void *data)
{
    struct obj *o = p;
    struct fin_state *st = data;
    uint64_t id = o->id;
    if (id >= st->count || o->check != (id ^ CHECK_KEY) ||
        o->payload[5] != id + 5 ||
        atomic_exchange_explicit(&st->seen[id], 1, memory_order_relaxed))
        atomic_fetch_add_explicit(&st->bad, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->run, 1, memory_order_release);
}

struct opts {
    long count, window, batch;
    bool fin_thread; /* cgc only: run them on cgc's finalizer thread */
    bool register_fin;
};

/* The measured loop, in a function of its own so that no pointer to the
 * last objects stays in main's frame while the drain collects. */
static __attribute__((noinline)) void churn(const struct opts *o,
                                            struct fin_state *st)
{
    const long W = o->window;
    for (long i = 0; i < o->count; i++) {
        struct obj *p = bk_alloc(sizeof *p);
        if (!p)
            bu_die("finalizers: out of memory");
        p->id = (uint64_t)i;
        p->check = (uint64_t)i ^ CHECK_KEY;
        for (int j = 0; j < 6; j++)
            p->payload[j] = (uint64_t)i + (uint64_t)j;
        if (o->register_fin && bk_set_finalizer(p, on_finalize, st) != 0)
            bu_die("finalizers: cannot set a finalizer on object %ld", i);
        BK_STORE(g_ring[i % W], p); /* drops the object W iterations old */
        if (!o->fin_thread && (i + 1) % o->batch == 0)
            bk_run_finalizers();
    }
}

/* Collect until every finalizer has run; false if that does not happen
 * within the limits (a collector that loses a finalizer, or an object kept
 * by a false reference). */
static bool drain(const struct opts *o, struct fin_state *st)
{
    uint64_t last = 0, deadline = bu_now_ns() + 30000000000ull;
    int idle = 0; /* collections without progress */
    while (atomic_load_explicit(&st->run, memory_order_acquire) < st->count) {
        if (bu_now_ns() > deadline || idle > 20)
            return false;
        bu_clear_stack(); /* no stale pointer from churn */
        bk_collect();
        if (!o->fin_thread) {
            bk_run_finalizers();
        } else {
            /* Give the finalizer thread the time to go through what this
             * collection queued before collecting again. */
            uint64_t before;
            do {
                before = atomic_load_explicit(&st->run, memory_order_acquire);
                bk_sleep_ms(1);
            } while (atomic_load_explicit(&st->run, memory_order_acquire) !=
                         before &&
                     before < st->count);
        }
        uint64_t now = atomic_load_explicit(&st->run, memory_order_acquire);
        idle = now == last ? idle + 1 : 0;
        last = now;
    }
    return true;
}

int main(int argc, char **argv)
{
    uint64_t start = bu_now_ns();
    struct opts o = {.count = 1000000,
                     .window = 16384,
                     .batch = 1024,
                     .fin_thread = false,
                     .register_fin = true};
    for (int i = 1; i < argc; i++) {
        if (bu_opt_long(argc, argv, &i, "--count", &o.count) ||
            bu_opt_long(argc, argv, &i, "--window", &o.window) ||
            bu_opt_long(argc, argv, &i, "--batch", &o.batch))
            continue;
        if (strcmp(argv[i], "--cgc-finalizer-thread") == 0) {
            o.fin_thread = true;
            continue;
        }
        if (strcmp(argv[i], "--no-finalizers") == 0) {
            o.register_fin = false;
            continue;
        }
        bu_die("usage: finalizers [--count N] [--window W] [--batch B] "
               "[--cgc-finalizer-thread] [--no-finalizers]");
    }
    if (o.count < 1 || o.window < 1 || o.window > (1L << 28) || o.batch < 1)
        bu_die("finalizers: count >= 1, window 1..2^28, batch >= 1");
#if !defined(BACKEND_CGC)
    if (o.fin_thread)
        bu_die("finalizers: --cgc-finalizer-thread is for the cgc backend");
#endif

    bk_init();
#if defined(BACKEND_CGC)
    gc_set_finalizer_mode(o.fin_thread ? GC_FINALIZE_THREAD
                                       : GC_FINALIZE_ON_DEMAND);
#endif

    struct fin_state *st = malloc(sizeof *st);
    if (!st)
        bu_die("finalizers: out of memory");
    st->count = (uint64_t)o.count;
    atomic_init(&st->run, 0);
    atomic_init(&st->bad, 0);
    st->seen = calloc((size_t)o.count, sizeof *st->seen);
    if (!st->seen)
        bu_die("finalizers: out of memory");

    bk_root(&g_ring, sizeof g_ring);
    struct obj **ring = bk_alloc((size_t)o.window * sizeof *ring);
    if (!ring)
        bu_die("finalizers: out of memory");
    for (long j = 0; j < o.window; j++)
        BK_STORE(ring[j], NULL); /* contract: bk_alloc may not zero */
    BK_STORE(g_ring, ring);
    ring = NULL;

    uint64_t t0 = bu_now_ns();
    churn(&o, st);
    uint64_t t1 = bu_now_ns();
    for (long j = 0; j < o.window; j++)
        BK_STORE(g_ring[j], NULL);
    bool complete = !o.register_fin || drain(&o, st);
    uint64_t t2 = bu_now_ns();

    uint64_t run = atomic_load_explicit(&st->run, memory_order_acquire);
    uint64_t bad = atomic_load_explicit(&st->bad, memory_order_relaxed);
    uint64_t expected = o.register_fin ? (uint64_t)o.count : 0;
    if (!complete || run != expected || bad) {
        fprintf(stderr,
                "finalizers: FAILED: %" PRIu64 " of %" PRIu64
                " finalizers ran, %" PRIu64 " on a damaged object or twice\n",
                run, expected, bad);
        return 1;
    }

    const char *mode = !o.register_fin ? "none"
                       : o.fin_thread  ? "thread"
                                       : "mutator";
    double ns_per_obj = (double)(t2 - t0) / (double)o.count;
    struct bk_gc_info gi;
    bk_gc_since(0, &gi);
    printf("%ld objects (window %ld), finalizers %s: %.1f ns/object "
           "(loop %.3f s, drain %.1f ms), %" PRIu64 " finalized\n",
           o.count, o.window, mode, ns_per_obj, (double)(t1 - t0) / 1e9,
           (double)(t2 - t1) / 1e6, run);

    bu_result_begin("finalizers", BK_NAME);
    bu_result_long("count", o.count);
    bu_result_long("window", o.window);
    bu_result_str("mode", mode);
    bu_result_double("wall_s", (double)(bu_now_ns() - start) / 1e9, 3);
    bu_result_long("maxrss_kb", bu_maxrss_kb());
    bu_result_double("ns_per_obj", ns_per_obj, 1);
    bu_result_double("loop_s", (double)(t1 - t0) / 1e9, 3);
    bu_result_double("drain_ms", (double)(t2 - t1) / 1e6, 2);
    bu_result_u64("finalized", run);
    bk_result_gc(&gi);
    bu_result_end();
    free(st->seen);
    free(st);
    return 0;
}
