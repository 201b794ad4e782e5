/*
 * stats.c — gc_read_stats and the gctrace line (Go's mstats.go and the
 * gcMarkTermination trace).
 *
 * Reading never stops the world: allocation counters are summed over the
 * thread registry (each written only by its thread), frees are global
 * atomics, heap byte counts come from the page heap, and cycle records are
 * copied under stats_lock, which the collector takes only briefly.
 */
#include "stats.h"
#include "fork.h"

#include "env.h"
#include "finalize.h"
#include "gc.h"
#include "heap.h"
#include "mark.h"
#include "os.h"
#include "pacer.h"
#include "threads.h"
#include "trace.h"
#include "weak.h"

#include <cgc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static CGC_STATE struct {
    _Atomic uint64_t small_frees[NUM_SIZE_CLASSES];
    _Atomic uint64_t large_frees, large_bytes_freed;
    /* Allocation counters of threads that detached (registry lock). */
    uint64_t folded_mallocs[NUM_SIZE_CLASSES];
    uint64_t folded_large_bytes;

    pthread_mutex_t lock; /* protects the cycle records below */
    uint64_t pause_ns[256], pause_end[256];
    uint64_t pause_total_ns, pause_max_ns, last_gc, gc_cpu_ns;
    uint32_t num_gc, num_forced_gc;
} stats = {.lock = PTHREAD_MUTEX_INITIALIZER};

void stats_init(void)
{
    pthread_mutex_lock(&stats.lock);
    for (unsigned i = 0; i < NUM_SIZE_CLASSES; i++) {
        atomic_store(&stats.small_frees[i], 0);
        stats.folded_mallocs[i] = 0;
    }
    atomic_store(&stats.large_frees, 0);
    atomic_store(&stats.large_bytes_freed, 0);
    stats.folded_large_bytes = 0;
    memset(stats.pause_ns, 0, sizeof stats.pause_ns);
    memset(stats.pause_end, 0, sizeof stats.pause_end);
    stats.pause_total_ns = stats.pause_max_ns = stats.last_gc = 0;
    stats.gc_cpu_ns = 0;
    stats.num_gc = stats.num_forced_gc = 0;
    pthread_mutex_unlock(&stats.lock);
}

void stats_count_small_frees(unsigned size_class, uint32_t n)
{
    atomic_fetch_add_explicit(&stats.small_frees[size_class], n,
                              memory_order_relaxed);
}

void stats_count_large_free(uint64_t bytes)
{
    atomic_fetch_add_explicit(&stats.large_frees, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&stats.large_bytes_freed, bytes,
                              memory_order_relaxed);
}

void stats_fold_thread(struct gc_thread *t)
{
    for (unsigned i = 0; i < NUM_SIZE_CLASSES; i++)
        stats.folded_mallocs[i] +=
            atomic_load_explicit(&t->mallocs[i], memory_order_relaxed);
    stats.folded_large_bytes +=
        atomic_load_explicit(&t->large_bytes, memory_order_relaxed);
}

void stats_record_cycle(const struct cycle_record *r)
{
    uint64_t now = os_realtime_ns();
    pthread_mutex_lock(&stats.lock);
    unsigned slot = stats.num_gc % 256;
    /* As Go's PauseNs: the cycle's stop-the-world time, both pauses. */
    uint64_t pause = r->stop_ns + r->term_ns;
    if (r->stop_the_world)
        pause += r->mark_ns;
    uint64_t longest = r->stop_the_world         ? pause
                       : r->stop_ns > r->term_ns ? r->stop_ns
                                                 : r->term_ns;
    stats.pause_ns[slot] = pause;
    stats.pause_end[slot] = now;
    stats.pause_total_ns += pause;
    if (longest > stats.pause_max_ns)
        stats.pause_max_ns = longest;
    stats.last_gc = now;
    /* While the world is stopped every CPU is the collector's; while it
     * runs, the workers' and the assists' time is. */
    stats.gc_cpu_ns += pause * (uint64_t)os_cpu_count();
    if (!r->stop_the_world)
        stats.gc_cpu_ns += r->mark_cpu_ns + r->assist_ns;
    stats.num_gc++;
    if (r->forced)
        stats.num_forced_gc++;
    pthread_mutex_unlock(&stats.lock);
}

static double cpu_fraction_locked(void)
{
    uint64_t elapsed = gc_uptime_ns() * (uint64_t)os_cpu_count();
    return elapsed ? (double)stats.gc_cpu_ns / (double)elapsed : 0.0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Median and 99th percentile (nearest rank) of the recorded cycles'
 * pauses: the last min(num_gc, 256). */
static void pause_percentiles(gc_stats *out)
{
    size_t n = out->num_gc < 256 ? out->num_gc : 256;
    if (n == 0)
        return;
    uint64_t sorted[256];
    memcpy(sorted, out->pause_ns, sizeof sorted);
    /* Before the ring wraps, its used entries are [0, n). */
    qsort(sorted, n, sizeof sorted[0], compare_u64);
    out->pause_p50_ns = sorted[(n - 1) / 2];
    size_t rank = (n * 99 + 99) / 100; /* ceil(0.99 n), 1-based */
    out->pause_p99_ns = sorted[rank - 1];
}

static void read_stats(gc_stats *out);

void gc_read_stats(gc_stats *out)
{
    if (!out)
        return;
    gc_init();
    struct gc_thread *self = threads_enter_library();
    read_stats(out);
    threads_leave_library(self);
}

/* Takes the registry and stats locks, which the collector takes too:
 * inside cgc's code. */
static void read_stats(gc_stats *out)
{
    memset(out, 0, sizeof *out);

    uint64_t mallocs[NUM_SIZE_CLASSES];
    uint64_t large_bytes;
    threads_lock_registry();
    memcpy(mallocs, stats.folded_mallocs, sizeof mallocs);
    large_bytes = stats.folded_large_bytes;
    for (struct gc_thread *t = threads_first(); t; t = t->next) {
        for (unsigned i = 0; i < NUM_SIZE_CLASSES; i++)
            mallocs[i] +=
                atomic_load_explicit(&t->mallocs[i], memory_order_relaxed);
        large_bytes +=
            atomic_load_explicit(&t->large_bytes, memory_order_relaxed);
    }
    threads_unlock_registry();

    uint64_t live_bytes = 0;
    for (unsigned i = 0; i < NUM_SIZE_CLASSES; i++) {
        uint64_t frees = i == 0 ? atomic_load_explicit(&stats.large_frees,
                                                       memory_order_relaxed)
                                : atomic_load_explicit(&stats.small_frees[i],
                                                       memory_order_relaxed);
        /* As Go's BySize: small size classes only. Entry 0 stays Go's
         * empty size-0 entry; large objects (our class 0) count in
         * mallocs and frees alone. */
        if (i > 0) {
            out->by_size[i].size = size_classes[i].size;
            out->by_size[i].mallocs = mallocs[i];
            out->by_size[i].frees = frees;
        }
        out->mallocs += mallocs[i];
        out->frees += frees;
        if (i > 0) {
            out->total_alloc += mallocs[i] * size_classes[i].size;
            live_bytes += (mallocs[i] - frees) * size_classes[i].size;
        }
    }
    uint64_t large_freed =
        atomic_load_explicit(&stats.large_bytes_freed, memory_order_relaxed);
    out->total_alloc += large_bytes;
    live_bytes += large_bytes - large_freed;
    out->heap_alloc = out->alloc = live_bytes;
    out->heap_objects = out->mallocs - out->frees;

    struct heap_counters h;
    heap_read_counters(&h);
    out->heap_sys = h.sys;
    out->heap_inuse = h.inuse;
    out->heap_idle = h.sys - h.inuse;
    out->heap_released = h.released;
    out->gc_sys = h.meta;
    out->sys = h.sys + h.meta;
    out->next_gc = pacer_heap_goal();
    out->mark_workers = mark_worker_count();
    finalize_read_counts(out);
    out->weak_cleared = weak_cleared_count();
    out->gc_percent = pacer_percent();

    pthread_mutex_lock(&stats.lock);
    memcpy(out->pause_ns, stats.pause_ns, sizeof out->pause_ns);
    memcpy(out->pause_end, stats.pause_end, sizeof out->pause_end);
    out->pause_total_ns = stats.pause_total_ns;
    out->pause_max_ns = stats.pause_max_ns;
    out->last_gc = stats.last_gc;
    out->num_gc = stats.num_gc;
    out->num_forced_gc = stats.num_forced_gc;
    out->gc_cpu_fraction = cpu_fraction_locked();
    pthread_mutex_unlock(&stats.lock);
    pause_percentiles(out);
}

/* ---- gctrace ------------------------------------------------------------- */

/* Go's fmtNSAsMS: whole milliseconds from 10 ms up, otherwise two
 * significant digits with at most three decimals. */
static int format_ms(char *buf, size_t size, uint64_t ns)
{
    if (ns >= 10000000)
        return snprintf(buf, size, "%llu", (unsigned long long)(ns / 1000000));
    uint64_t x = ns / 1000;
    if (x == 0)
        return snprintf(buf, size, "0");
    int decimals = 3;
    while (x >= 100) {
        x /= 10;
        decimals--;
    }
    if (decimals == 0)
        return snprintf(buf, size, "%llu", (unsigned long long)x);
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    return snprintf(buf, size, "%llu.%0*llu", (unsigned long long)(x / scale),
                    decimals, (unsigned long long)(x % scale));
}

void stats_print_gctrace(const struct cycle_record *r)
{
    if (!gc_config.gctrace)
        return;
    uint64_t procs = (uint64_t)r->markers;
    char c1[32], c2[32], c3[32], u1[32], u2[32], u3[32], u4[32], u5[32];
    format_ms(c1, sizeof c1, r->stop_ns);
    format_ms(c2, sizeof c2, r->mark_ns);
    format_ms(c3, sizeof c3, r->term_ns);
    format_ms(u1, sizeof u1, r->stop_ns * procs);
    format_ms(u2, sizeof u2, r->assist_ns);   /* mutator assists */
    format_ms(u3, sizeof u3, r->mark_cpu_ns); /* background workers */
    format_ms(u4, sizeof u4, 0);              /* idle workers: none */
    format_ms(u5, sizeof u5, r->term_ns * procs);

    pthread_mutex_lock(&stats.lock);
    uint32_t n = stats.num_gc;
    unsigned percent = (unsigned)(cpu_fraction_locked() * 100.0);
    pthread_mutex_unlock(&stats.lock);
    double at = (double)(r->start_ns - gc_start_monotonic_ns()) / 1e9;

    trace_line("gc %u @%.3fs %u%%: %s+%s+%s ms clock, %s+%s/%s/%s+%s ms cpu, "
               "%llu->%llu->%llu MB, %llu MB goal, %llu MB stacks, %llu MB "
               "globals, %u P%s",
               n, at, percent, c1, c2, c3, u1, u2, u3, u4, u5,
               (unsigned long long)(r->heap_live_start >> 20),
               (unsigned long long)(r->heap_live_end_mark >> 20),
               (unsigned long long)(r->heap_marked >> 20),
               (unsigned long long)(r->heap_goal >> 20),
               (unsigned long long)(r->stack_bytes >> 20),
               (unsigned long long)(r->global_bytes >> 20), r->markers,
               r->forced ? " (forced)" : "");
}

void stats_fork(enum fork_phase phase)
{
    fork_mutex(&stats.lock, phase);
}
