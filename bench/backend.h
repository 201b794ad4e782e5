/*
 * backend.h — the allocator shim that lets one benchmark source build
 * against cgc, Boehm's libgc or plain malloc/free.
 *
 * Compile with exactly one of -DBACKEND_CGC, -DBACKEND_BOEHM or
 * -DBACKEND_MALLOC. The benchmarks use only the bk_* functions and BK_STORE
 * below, so the three builds run the same code and differ only in what the
 * allocator (and, for malloc, explicit freeing) costs.
 *
 * Contract for the benchmarks:
 *   - bk_alloc memory is zeroed for the GCs but not for malloc, so a
 *     benchmark initialises every field it later reads;
 *   - bk_free is a real free() only for malloc (the GCs reclaim by
 *     themselves, which is the point of the comparison);
 *   - every pointer stored into heap memory or a root goes through BK_STORE
 *     (cgc's GC_WRITE; a plain store for the others);
 *   - threads are created and joined with bk_thread_create/bk_thread_join,
 *     and anything that may block goes through bk_blocking_begin/end, so
 *     that cgc never waits for a thread parked in the kernel;
 *   - finalizers exist only for the GCs (BK_HAS_FINALIZERS is 1 there, 0
 *     for malloc, which has no bk_set_finalizer): bk_set_finalizer(obj, fn,
 *     data) registers fn(obj, data) to run once obj is unreachable (obj must
 *     be the start of a bk_alloc object without a finalizer), and
 *     bk_run_finalizers() runs those found ready so far on the calling
 *     thread and returns how many ran. Where else they run is the
 *     backend's: Boehm also runs them from its allocation slow path (its
 *     default), cgc on its finalizer thread unless the benchmark chose
 *     gc_set_finalizer_mode(GC_FINALIZE_ON_DEMAND).
 *   - weak references exist only for the GCs too (BK_HAS_WEAK). One is a
 *     cell of type bk_weak, in an array from bk_weak_cells(n) (n empty
 *     cells, never freed); the program keeps the array's address in a
 *     root or a bk_alloc object, as for any bk_alloc object: for cgc the
 *     cells hold the weak handles, which are GC objects, for Boehm they
 *     hold hidden pointers and the array is memory the collector does not
 *     scan. bk_weak_set(cell, obj) makes an empty cell refer to obj (the
 *     start of a bk_alloc object) without keeping it alive, and returns 0;
 *     each cell is set once. bk_weak_get(cell) returns obj, a strong
 *     pointer again, while obj is reachable, and NULL once the collector
 *     found it unreachable (and for an empty cell);
 *   - ephemerons exist for cgc only (BK_HAS_EPHEMERONS; Boehm has none):
 *     bk_ephemeron_new(key, value) returns a handle, a GC object that the
 *     program keeps reachable, that keeps value alive while key is
 *     reachable by other paths; bk_ephemeron_key/value read them back
 *     (NULL once key died).
 *
 * bench/CMakeLists.txt defines BK_CGC_FINALIZERS, BK_CGC_WEAK and
 * BK_CGC_EPHEMERONS to 0 or 1 for the cgc builds, after what the cgc.h
 * it compiles against declares, so that the same benchmark sources build
 * against an older cgc (scripts/bench --baseline) with these parts left
 * out. A build by hand against the current cgc needs none of them.
 */
#ifndef BENCH_BACKEND_H
#define BENCH_BACKEND_H

/* clock_gettime, pthread barriers and nanosleep are POSIX, not ISO C: ask
 * for them explicitly so a strict -std=c11 build works too. Must come
 * before the first system header, hence in every bench header. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "benchutil.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if (defined(BACKEND_CGC) + defined(BACKEND_BOEHM) +                           \
     defined(BACKEND_MALLOC)) != 1
#error "define exactly one of BACKEND_CGC, BACKEND_BOEHM, BACKEND_MALLOC"
#endif

#if defined(__GNUC__) || defined(__clang__)
#define BK_UNUSED __attribute__((unused))
#else
#define BK_UNUSED
#endif

/* GC statistics over an interval of the run, filled by bk_gc_since(). A
 * field that the backend cannot provide is negative (printed as "-"). */
struct bk_gc_info {
    long gcs;              /* completed collections */
    double max_pause_ms;   /* longest stop-the-world pause */
    double p99_pause_ms;   /* 99th percentile of the recorded pauses */
    double total_pause_ms; /* sum of the recorded pauses */
};

/* The collector's fields of a RESULT line. */
static inline void bk_result_gc(const struct bk_gc_info *gi)
{
    bu_result_long("gcs", gi->gcs);
    bu_result_double("max_pause_ms", gi->max_pause_ms, 3);
    bu_result_double("p99_pause_ms", gi->p99_pause_ms, 3);
    bu_result_double("total_pause_ms", gi->total_pause_ms, 3);
}

/* Position in the pause record, taken with bk_gc_mark(); 0 means "since the
 * program started". */
typedef uint64_t bk_gc_cursor;

/* The p99 of n pause samples (nanoseconds), sorting them in place. */
static int bk_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static BK_UNUSED uint64_t bk_p99_u64(uint64_t *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, bk_cmp_u64);
    /* Nearest-rank percentile: the smallest value with at least 99% of the
     * samples at or below it. */
    size_t rank = (n * 99 + 99) / 100;
    return v[rank - 1];
}

static BK_UNUSED uint64_t bk_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ======================================================================== */
#if defined(BACKEND_CGC)

#include "cgc.h"

#define BK_NAME  "cgc"
#define BK_IS_GC 1

#define BK_STORE(lvalue, value) GC_WRITE(lvalue, value)

static BK_UNUSED void bk_init(void)
{
    gc_init();
}

static BK_UNUSED void *bk_alloc(size_t n)
{
    return gc_alloc(n);
}

static BK_UNUSED void *bk_alloc_noscan(size_t n)
{
    return gc_alloc_noscan(n);
}

static BK_UNUSED void bk_free(void *p)
{
    (void)p; /* the collector reclaims it */
}

/* cgc scans only registered roots among the globals. */
static BK_UNUSED void bk_root(void *addr, size_t size)
{
    if (gc_root_add(addr, size) != 0)
        abort();
}

static BK_UNUSED void bk_collect(void)
{
    gc_collect();
}

static BK_UNUSED void bk_blocking_begin(void)
{
    gc_blocking_begin();
}

static BK_UNUSED void bk_blocking_end(void)
{
    gc_blocking_end();
}

/* A long loop that does not allocate lets the collector in here. */
static BK_UNUSED void bk_safepoint(void)
{
    gc_safepoint();
}

/* A new thread attaches itself on its first allocation and detaches at
 * exit, so plain pthread_create is enough. */
static BK_UNUSED int bk_thread_create(pthread_t *t, void *(*fn)(void *),
                                      void *arg)
{
    return pthread_create(t, NULL, fn, arg);
}

static BK_UNUSED bk_gc_cursor bk_gc_mark(void)
{
    gc_stats *s = malloc(sizeof *s); /* ~6 KiB: keep it off small stacks */
    if (!s)
        abort();
    gc_read_stats(s);
    bk_gc_cursor c = s->num_gc;
    free(s);
    return c;
}

/* pause_ns is a ring of the last 256 cycles' pauses (Go's PauseNs): the
 * percentile covers at most those; the maximum since the start comes from
 * pause_max_ns, which sees every cycle. */
static BK_UNUSED void bk_gc_since(bk_gc_cursor since, struct bk_gc_info *out)
{
    gc_stats *s = malloc(sizeof *s);
    if (!s)
        abort();
    gc_read_stats(s);
    uint64_t n = s->num_gc - since;
    uint64_t kept = n < 256 ? n : 256;
    uint64_t v[256], max = 0, sum = 0;
    for (uint64_t i = 0; i < kept; i++) {
        v[i] = s->pause_ns[(s->num_gc - 1 - i) % 256];
        sum += v[i];
        if (v[i] > max)
            max = v[i];
    }
    /* Older pauses fell out of the ring; pause_max_ns covers them only when
     * the interval is the whole run. */
    if (since == 0 && s->pause_max_ns > max)
        max = s->pause_max_ns;
    out->gcs = (long)n;
    out->max_pause_ms = (double)max / 1e6;
    out->p99_pause_ms = (double)bk_p99_u64(v, kept) / 1e6;
    out->total_pause_ms =
        since == 0 ? (double)s->pause_total_ns / 1e6 : (double)sum / 1e6;
    free(s);
}

/* What this cgc has, as bench/CMakeLists.txt found in its cgc.h; the
 * current one has everything. */
#ifndef BK_CGC_FINALIZERS
#define BK_CGC_FINALIZERS 1
#endif
#ifndef BK_CGC_WEAK
#define BK_CGC_WEAK 1
#endif
#ifndef BK_CGC_EPHEMERONS
#define BK_CGC_EPHEMERONS 1
#endif

/* Finalizers: cgc's own API, same signature. */
#define BK_HAS_FINALIZERS BK_CGC_FINALIZERS
#if BK_HAS_FINALIZERS
typedef void (*bk_finalizer_fn)(void *obj, void *data);

static BK_UNUSED int bk_set_finalizer(void *obj, bk_finalizer_fn fn, void *data)
{
    return gc_set_finalizer(obj, fn, data);
}

static BK_UNUSED long bk_run_finalizers(void)
{
    return (long)gc_run_finalizers();
}
#endif

/* Weak references: a cell holds cgc's handle, itself a GC object that must
 * stay reachable for the reference to be read, so the cells are a GC
 * object (zeroed, scanned) and the handle is stored through the barrier. */
#define BK_HAS_WEAK BK_CGC_WEAK
#if BK_HAS_WEAK
typedef gc_weak *bk_weak;

static BK_UNUSED bk_weak *bk_weak_cells(size_t n)
{
    return gc_alloc(n * sizeof(bk_weak));
}

static BK_UNUSED int bk_weak_set(bk_weak *cell, void *obj)
{
    gc_weak *w = gc_weak_new(obj);
    if (!w)
        return -1;
    GC_WRITE(*cell, w);
    return 0;
}

static BK_UNUSED void *bk_weak_get(const bk_weak *cell)
{
    return gc_weak_get(*cell); /* NULL for an empty cell */
}
#endif

/* Ephemerons: cgc's own API. */
#define BK_HAS_EPHEMERONS BK_CGC_EPHEMERONS
#if BK_HAS_EPHEMERONS
typedef gc_ephemeron *bk_ephemeron;

static BK_UNUSED bk_ephemeron bk_ephemeron_new(void *key, void *value)
{
    return gc_ephemeron_new(key, value);
}

static BK_UNUSED void *bk_ephemeron_key(bk_ephemeron e)
{
    return gc_ephemeron_key(e);
}

static BK_UNUSED void *bk_ephemeron_value(bk_ephemeron e)
{
    return gc_ephemeron_value(e);
}
#endif

/* ======================================================================== */
#elif defined(BACKEND_BOEHM)

/* GC_THREADS must precede gc.h so that the thread-aware entry points (and
 * the thread-local allocation fast paths) are used. */
#define GC_THREADS 1
#include <gc.h>
#include <stdatomic.h>

#define BK_NAME                 "boehm"
#define BK_IS_GC                1

/* Boehm's default (non-incremental) mode needs no write barrier. */
#define BK_STORE(lvalue, value) ((lvalue) = (value))

/* Boehm reports no pause times, so the collection-event callback timestamps
 * the stop-the-world window itself: from just before the world is stopped
 * to just after it is restarted, the same window cgc calls a pause. The
 * callback runs with the GC lock held, so one writer at a time. */
#define BK_BOEHM_MAX_PAUSES     65536
static uint64_t bk_boehm_pause[BK_BOEHM_MAX_PAUSES];
static _Atomic uint64_t bk_boehm_npause;
static uint64_t bk_boehm_stop_t0;
static _Atomic uint64_t bk_boehm_pause_max;

static void GC_CALLBACK bk_boehm_event(GC_EventType ev)
{
    if (ev == GC_EVENT_PRE_STOP_WORLD) {
        bk_boehm_stop_t0 = bk_now_ns();
    } else if (ev == GC_EVENT_POST_START_WORLD && bk_boehm_stop_t0 != 0) {
        uint64_t d = bk_now_ns() - bk_boehm_stop_t0;
        uint64_t n =
            atomic_load_explicit(&bk_boehm_npause, memory_order_relaxed);
        bk_boehm_pause[n % BK_BOEHM_MAX_PAUSES] = d;
        atomic_store_explicit(&bk_boehm_npause, n + 1, memory_order_release);
        if (d > atomic_load_explicit(&bk_boehm_pause_max, memory_order_relaxed))
            atomic_store_explicit(&bk_boehm_pause_max, d, memory_order_relaxed);
        bk_boehm_stop_t0 = 0;
    }
}

static BK_UNUSED void bk_init(void)
{
    GC_INIT();
    /* Boehm starts its parallel markers only when the program creates its
     * first thread, so a single-threaded benchmark would otherwise mark on
     * one core while cgc uses its mark workers. Start them up front to
     * compare against Boehm at its best (GC_MARKERS=1 turns this off). */
    GC_start_mark_threads();
    GC_set_on_collection_event(bk_boehm_event);
}

static BK_UNUSED void *bk_alloc(size_t n)
{
    return GC_MALLOC(n);
}

static BK_UNUSED void *bk_alloc_noscan(size_t n)
{
    return GC_MALLOC_ATOMIC(n);
}

static BK_UNUSED void bk_free(void *p)
{
    (void)p; /* the collector reclaims it */
}

/* Boehm scans the data and bss segments by itself. */
static BK_UNUSED void bk_root(void *addr, size_t size)
{
    (void)addr;
    (void)size;
}

static BK_UNUSED void bk_collect(void)
{
    GC_gcollect();
}

static BK_UNUSED void bk_blocking_begin(void)
{
}

static BK_UNUSED void bk_blocking_end(void)
{
}

/* A long loop that does not allocate lets the collector in here. */
static BK_UNUSED void bk_safepoint(void)
{
    /* nothing: this backend stops threads by signals */
}

/* GC_pthread_create registers the new thread with the collector before it
 * runs, so its stack is scanned from the start. */
static BK_UNUSED int bk_thread_create(pthread_t *t, void *(*fn)(void *),
                                      void *arg)
{
    return GC_pthread_create(t, NULL, fn, arg);
}

/* The cursor counts recorded pauses; GC numbers are taken separately. */
static uint64_t bk_boehm_gc_no_at_mark;

static BK_UNUSED bk_gc_cursor bk_gc_mark(void)
{
    bk_boehm_gc_no_at_mark = GC_get_gc_no();
    return atomic_load_explicit(&bk_boehm_npause, memory_order_acquire);
}

static BK_UNUSED void bk_gc_since(bk_gc_cursor since, struct bk_gc_info *out)
{
    uint64_t n = atomic_load_explicit(&bk_boehm_npause, memory_order_acquire);
    uint64_t cnt = n - since;
    if (cnt > BK_BOEHM_MAX_PAUSES)
        cnt = BK_BOEHM_MAX_PAUSES;
    uint64_t *v = malloc((cnt ? cnt : 1) * sizeof *v);
    if (!v)
        abort();
    uint64_t max = 0, sum = 0;
    for (uint64_t i = 0; i < cnt; i++) {
        v[i] = bk_boehm_pause[(n - 1 - i) % BK_BOEHM_MAX_PAUSES];
        sum += v[i];
        if (v[i] > max)
            max = v[i];
    }
    if (since == 0) {
        uint64_t m =
            atomic_load_explicit(&bk_boehm_pause_max, memory_order_relaxed);
        if (m > max)
            max = m;
    }
    out->gcs =
        (long)(GC_get_gc_no() - (since == 0 ? 0 : bk_boehm_gc_no_at_mark));
    out->max_pause_ms = (double)max / 1e6;
    out->p99_pause_ms = (double)bk_p99_u64(v, cnt) / 1e6;
    out->total_pause_ms = (double)sum / 1e6;
    free(v);
}

/* Finalizers: GC_register_finalizer is Boehm's ordered kind, the one that,
 * like cgc's, runs a referrer's finalizer before its referent's. With
 * finalize-on-demand off (the default) Boehm also runs ready finalizers
 * from its allocation slow path; GC_invoke_finalizers runs the rest. */
#define BK_HAS_FINALIZERS       1
typedef void (*bk_finalizer_fn)(void *obj, void *data);

static BK_UNUSED int bk_set_finalizer(void *obj, bk_finalizer_fn fn, void *data)
{
    GC_finalization_proc proc = fn; /* same type unless GC_CALLBACK is set */
    GC_register_finalizer(obj, proc, data, NULL, NULL);
    return 0;
}

static BK_UNUSED long bk_run_finalizers(void)
{
    return GC_invoke_finalizers();
}

/* Weak references: Boehm's disappearing links. A cell holds the object's
 * address hidden (GC_HIDE_POINTER), so that the collector, which scans
 * memory conservatively, does not take it for a reference, and the cells
 * live in malloc memory, which it does not scan at all; the collector
 * zeroes a registered cell when the object is found unreachable. Reading
 * one takes the allocation lock, as Boehm requires: between the moment it
 * finds the object unreachable and the moment it zeroes the cell, an
 * unlocked read could turn the hidden pointer back into a strong one to
 * an object about to be freed. */
#define BK_HAS_WEAK             1
typedef GC_hidden_pointer bk_weak;

static BK_UNUSED bk_weak *bk_weak_cells(size_t n)
{
    /* Never freed: a cell may stay registered until the program exits. */
    return calloc(n ? n : 1, sizeof(bk_weak));
}

static BK_UNUSED int bk_weak_set(bk_weak *cell, void *obj)
{
    *cell = GC_HIDE_POINTER(obj);
    return GC_general_register_disappearing_link((void **)cell, obj) ==
                   GC_SUCCESS
               ? 0
               : -1;
}

static void *GC_CALLBACK bk_boehm_weak_reveal(void *cell)
{
    bk_weak h = *(const bk_weak *)cell;
    return h ? GC_REVEAL_POINTER(h) : NULL; /* 0: cleared (or never set) */
}

static BK_UNUSED void *bk_weak_get(const bk_weak *cell)
{
    return GC_call_with_alloc_lock(bk_boehm_weak_reveal, (void *)cell);
}

/* Boehm has no ephemerons. */
#define BK_HAS_EPHEMERONS       0

/* ======================================================================== */
#elif defined(BACKEND_MALLOC)

#define BK_NAME           "malloc"
#define BK_IS_GC          0
/* Nothing is ever found unreachable, so there is nothing to finalize and
 * no weak reference or ephemeron would ever be cleared. */
#define BK_HAS_FINALIZERS 0
#define BK_HAS_WEAK       0
#define BK_HAS_EPHEMERONS 0

#define BK_STORE(lvalue, value) ((lvalue) = (value))

static BK_UNUSED void bk_init(void)
{
}

static BK_UNUSED void *bk_alloc(size_t n)
{
    return malloc(n);
}

static BK_UNUSED void *bk_alloc_noscan(size_t n)
{
    return malloc(n);
}

static BK_UNUSED void bk_free(void *p)
{
    free(p);
}

static BK_UNUSED void bk_root(void *addr, size_t size)
{
    (void)addr;
    (void)size;
}

static BK_UNUSED void bk_collect(void)
{
}

static BK_UNUSED void bk_blocking_begin(void)
{
}

static BK_UNUSED void bk_blocking_end(void)
{
}

/* A long loop that does not allocate lets the collector in here. */
static BK_UNUSED void bk_safepoint(void)
{
    /* nothing: malloc has no collector */
}

static BK_UNUSED int bk_thread_create(pthread_t *t, void *(*fn)(void *),
                                      void *arg)
{
    return pthread_create(t, NULL, fn, arg);
}

static BK_UNUSED bk_gc_cursor bk_gc_mark(void)
{
    return 0;
}

/* No collector, so nothing to report. */
static BK_UNUSED void bk_gc_since(bk_gc_cursor since, struct bk_gc_info *out)
{
    (void)since;
    out->gcs = -1;
    out->max_pause_ms = -1;
    out->p99_pause_ms = -1;
    out->total_pause_ms = -1;
}

#endif
/* ======================================================================== */

/* Joining waits in the kernel: under cgc the joining thread must be inside
 * a blocking region, otherwise a collection started by the threads being
 * joined would wait for it forever. */
static BK_UNUSED void bk_thread_join(pthread_t t, void **ret)
{
    bk_blocking_begin();
#if defined(BACKEND_BOEHM)
    GC_pthread_join(t, ret);
#else
    pthread_join(t, ret);
#endif
    bk_blocking_end();
}

static BK_UNUSED void bk_barrier_wait(pthread_barrier_t *b)
{
    bk_blocking_begin();
    pthread_barrier_wait(b);
    bk_blocking_end();
}

static BK_UNUSED void bk_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    bk_blocking_begin();
    while (nanosleep(&ts, &ts) != 0)
        ;
    bk_blocking_end();
}

#endif /* BENCH_BACKEND_H */
