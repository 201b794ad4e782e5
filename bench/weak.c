/*
 * weak.c — what weak references cost: allocate --count small objects, make
 * a weak reference to each, drop them, collect, and check that every weak
 * reference to a dropped object reads NULL and every one to a live object
 * reads that object.
 *
 * The loop is the one of finalizers.c, with a weak reference where that
 * one registers a finalizer: each object is 64 bytes (an id, a check word
 * and a payload, no pointers) and goes into a ring of --window slots,
 * evicting the object allocated --window iterations before, so the live
 * heap stays small while every object, weakly referenced, flows through
 * the collector's automatic cycles. The weak references themselves (cells
 * from bk_weak_cells, one per object) are all kept to the end: for cgc
 * each cell holds a gc_weak_new handle, a GC object, in a GC array behind
 * a root; for Boehm it holds the hidden pointer of a disappearing link
 * (GC_general_register_disappearing_link), in malloc memory that the
 * collector does not scan. Every --probe objects the loop reads the weak
 * reference of a dropped object, alternately the one just evicted (likely
 * still in the heap, not yet found unreachable) and a random older one:
 * what it reads must be NULL or that object intact, never memory reused
 * for another.
 *
 * After the loop the last --window objects are still in the ring: the
 * program collects and reads every weak reference. The ones of dropped
 * objects must read NULL and those of the ring's objects their object;
 * if a dropped object's reference is still set (a false reference left on
 * the stack can keep it, under conservative stack scanning), it collects
 * again, a few times at most, and fails if some remain.
 *
 * Reported: ns per object (allocate + weak reference + drop, up to the end
 * of the first collection after the loop, over --count), the loop and
 * collection times, ns per read of a weak reference (the check pass over
 * all of them: cgc's gc_weak_get is lock-free, Boehm's read takes its
 * allocation lock), GCs and pauses over the whole run. --no-weak runs the
 * same loop without weak references: the baseline for what they add.
 *
 * Usage: weak [--count N] [--window W] [--probe P] [--no-weak]
 */
#include "backend.h"
#include "benchutil.h"

#if !BK_HAS_WEAK
#error "weak: the backend has no weak references (build it for cgc or Boehm)"
#endif

#include <stdbool.h>
#include <stdio.h>

#define CHECK_KEY 0x5DEECE66DULL

struct obj {
    uint64_t id;
    uint64_t check; /* id ^ CHECK_KEY */
    uint64_t payload[6];
};

/* The ring of live objects and the weak references. Globals are scanned
 * by both collectors; they are registered too, as the other benchmarks
 * do, so CGC_SCAN_GLOBALS=0 works. */
static struct obj **g_ring;
static bk_weak *g_weak;

struct opts {
    long count, window, probe;
    bool make_weak;
};

/* What the loop's probes found. */
struct probes {
    uint64_t count; /* weak references read */
    uint64_t set;   /* of those, still set (object not yet found dead) */
    uint64_t bad;   /* set, but to memory that is no longer the object */
};

static bool obj_ok(const struct obj *p, uint64_t id)
{
    return p->id == id && p->check == (id ^ CHECK_KEY) &&
           p->payload[5] == id + 5;
}

static void probe(long j, struct probes *pr)
{
    const struct obj *q = bk_weak_get(&g_weak[j]);
    pr->count++;
    if (q) {
        pr->set++;
        if (!obj_ok(q, (uint64_t)j))
            pr->bad++;
    }
}

/* The measured loop, in a function of its own so that no pointer to the
 * dropped objects stays in main's frame while it collects. */
static __attribute__((noinline)) void churn(const struct opts *o,
                                            struct probes *pr)
{
    const long W = o->window;
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    for (long i = 0; i < o->count; i++) {
        struct obj *p = bk_alloc(sizeof *p);
        if (!p)
            bu_die("weak: out of memory");
        p->id = (uint64_t)i;
        p->check = (uint64_t)i ^ CHECK_KEY;
        for (int j = 0; j < 6; j++)
            p->payload[j] = (uint64_t)i + (uint64_t)j;
        if (o->make_weak && bk_weak_set(&g_weak[i], p) != 0)
            bu_die("weak: cannot make a weak reference to object %ld", i);
        BK_STORE(g_ring[i % W], p); /* drops the object W iterations old */
        if (o->make_weak && i >= W && i % o->probe == 0) {
            /* Objects 0..i-W are out of the ring. */
            long dropped = i - W + 1;
            long j = (i / o->probe) % 2 == 0
                         ? i - W
                         : (long)((bu_rand(&rng) >> 33) % (uint64_t)dropped);
            probe(j, pr);
        }
    }
}

/* One pass over every weak reference, after a collection. */
struct check {
    uint64_t stale;   /* dropped objects whose reference is still set */
    uint64_t cleared; /* dropped objects whose reference reads NULL */
    uint64_t live;    /* ring objects whose reference reads them */
    uint64_t wrong;   /* a ring object's reference reading something else,
                         or a stale one to a damaged object */
};

static __attribute__((noinline)) void check_all(const struct opts *o,
                                                struct check *c)
{
    long first_live = o->count > o->window ? o->count - o->window : 0;
    memset(c, 0, sizeof *c);
    for (long i = 0; i < first_live; i++) {
        const struct obj *q = bk_weak_get(&g_weak[i]);
        if (!q) {
            c->cleared++;
        } else {
            c->stale++;
            if (!obj_ok(q, (uint64_t)i))
                c->wrong++;
        }
    }
    for (long i = first_live; i < o->count; i++) {
        const struct obj *q = bk_weak_get(&g_weak[i]);
        if (q && q == g_ring[i % o->window] && obj_ok(q, (uint64_t)i))
            c->live++;
        else
            c->wrong++;
    }
}

int main(int argc, char **argv)
{
    uint64_t start = bu_now_ns();
    struct opts o = {
        .count = 1000000, .window = 16384, .probe = 64, .make_weak = true};
    for (int i = 1; i < argc; i++) {
        if (bu_opt_long(argc, argv, &i, "--count", &o.count) ||
            bu_opt_long(argc, argv, &i, "--window", &o.window) ||
            bu_opt_long(argc, argv, &i, "--probe", &o.probe))
            continue;
        if (strcmp(argv[i], "--no-weak") == 0) {
            o.make_weak = false;
            continue;
        }
        bu_die("usage: weak [--count N] [--window W] [--probe P] "
               "[--no-weak]");
    }
    if (o.count < 1 || o.count > (1L << 32) || o.window < 1 ||
        o.window > (1L << 28) || o.probe < 1)
        bu_die("weak: count 1..2^32, window 1..2^28, probe >= 1");

    bk_init();

    bk_root(&g_weak, sizeof g_weak);
    bk_weak *cells = bk_weak_cells((size_t)o.count);
    if (!cells)
        bu_die("weak: out of memory");
    BK_STORE(g_weak, cells);
    cells = NULL;

    bk_root(&g_ring, sizeof g_ring);
    struct obj **ring = bk_alloc((size_t)o.window * sizeof *ring);
    if (!ring)
        bu_die("weak: out of memory");
    for (long j = 0; j < o.window; j++)
        BK_STORE(ring[j], NULL); /* contract: bk_alloc may not zero */
    BK_STORE(g_ring, ring);
    ring = NULL;

    struct probes pr = {0};
    uint64_t t0 = bu_now_ns();
    churn(&o, &pr);
    uint64_t t1 = bu_now_ns();
    bu_clear_stack(); /* no stale pointer from churn */
    bk_collect();
    uint64_t t2 = bu_now_ns();

    struct check c = {0};
    uint64_t get_ns = 0;
    int retries = 0;
    uint64_t stale_first = 0;
    if (o.make_weak) {
        check_all(&o, &c);
        get_ns = bu_now_ns() - t2;
        stale_first = c.stale;
        /* A dropped object may be kept by a false reference: collect again
         * (check_all's frame, which read them, is below this one and is
         * cleared too). */
        while (c.stale && !c.wrong && retries < 4) {
            retries++;
            bu_clear_stack();
            bk_collect();
            check_all(&o, &c);
        }
    }

    long first_live = o.count > o.window ? o.count - o.window : 0;
    if (c.stale || c.wrong || pr.bad ||
        (o.make_weak && (c.cleared != (uint64_t)first_live ||
                         c.live != (uint64_t)(o.count - first_live)))) {
        fprintf(stderr,
                "weak: FAILED: of %ld dropped objects %" PRIu64
                " read NULL and %" PRIu64 " are still set after %d "
                "collections; %" PRIu64 " of %ld live ones read their object;"
                " %" PRIu64
                " references read a wrong or damaged object; %" PRIu64
                " probes in the loop read memory that was reused\n",
                first_live, c.cleared, c.stale, retries + 1, c.live,
                o.count - first_live, c.wrong, pr.bad);
        return 1;
    }

    const char *mode = o.make_weak ? "weak" : "none";
    double ns_per_obj = (double)(t2 - t0) / (double)o.count;
    double ns_per_get = (double)get_ns / (double)o.count;
    struct bk_gc_info gi;
    bk_gc_since(0, &gi);
    printf("%ld objects (window %ld), weak references %s: %.1f ns/object "
           "(loop %.3f s, collection %.1f ms), %.1f ns per read; %" PRIu64
           " cleared, %" PRIu64 " live, %" PRIu64 " probes (%" PRIu64
           " still set); %" PRIu64 " dropped still set after the first "
           "collection, %d extra collections\n",
           o.count, o.window, mode, ns_per_obj, (double)(t1 - t0) / 1e9,
           (double)(t2 - t1) / 1e6, ns_per_get, c.cleared, c.live, pr.count,
           pr.set, stale_first, retries);

    bu_result_begin("weak", BK_NAME);
    bu_result_long("count", o.count);
    bu_result_long("window", o.window);
    bu_result_str("mode", mode);
    bu_result_double("wall_s", (double)(bu_now_ns() - start) / 1e9, 3);
    bu_result_long("maxrss_kb", bu_maxrss_kb());
    bu_result_double("ns_per_obj", ns_per_obj, 1);
    bu_result_double("loop_s", (double)(t1 - t0) / 1e9, 3);
    bu_result_double("collect_ms", (double)(t2 - t1) / 1e6, 2);
    bu_result_double("ns_per_get", o.make_weak ? ns_per_get : -1, 1);
    bu_result_u64("cleared", c.cleared);
    bu_result_u64("live", c.live);
    bu_result_u64("probes", pr.count);
    bu_result_u64("probes_set", pr.set);
    bu_result_u64("stale_first", stale_first);
    bu_result_long("retries", retries);
    bk_result_gc(&gi);
    bu_result_end();
    return 0;
}
