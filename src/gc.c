/*
 * gc.c — the collector's cycle and lifetime (Go's mgc.go).
 *
 * The cycle, in this stop-the-world mode (CGC_DEBUG=gcstoptheworld=1, the
 * only mode so far):
 *   0. with gc_lock held but the world running, finish sweeping the previous
 *      cycle, so marking starts from a fully swept heap;
 *   1. stop the world (threads.c);
 *   2. mark from the roots in parallel on the collecting thread and the mark
 *      workers (mark.c, roots.c);
 *   3. flush every thread cache to the central lists, flip the sweep
 *      generation (every span becomes unswept), set the next heap goal;
 *   4. start the world; sweeping then happens lazily and in the background.
 * gc_lock serialises cycles; a running thread that waits for it does so
 * inside a blocking region, because the holder may be stopping the world.
 */
#include "gc.h"

#include "central.h"
#include "env.h"
#include "heap.h"
#include "mark.h"
#include "os.h"
#include "pacer.h"
#include "report.h"
#include "roots.h"
#include "sizeclass.h"
#include "stats.h"
#include "sweep.h"
#include "threads.h"

#include <pthread.h>
#include <stdatomic.h>

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool initialized;
static pthread_mutex_t gc_lock = PTHREAD_MUTEX_INITIALIZER;
/* Completed cycles; read without gc_lock to skip a redundant cycle. */
static atomic_uint cycles_done;
static uint64_t start_ns;

bool gc_initialized(void)
{
    return atomic_load_explicit(&initialized, memory_order_acquire);
}

uint64_t gc_start_monotonic_ns(void)
{
    return start_ns;
}

uint64_t gc_uptime_ns(void)
{
    return os_monotonic_ns() - start_ns;
}

static int init_locked(void)
{
    sizeclass_init();
    env_read_config(&gc_config);
    if (heap_init())
        report_fatal("gc_init: cannot reserve the arena index");
    central_init();
    roots_init();
    pacer_init(gc_config.percent);
    stats_init();
    threads_init();
    start_ns = os_monotonic_ns();
    atomic_store(&cycles_done, 0);
    if (mark_init(gc_config.workers))
        report_warning("gc_init: could start only %u of %u mark workers",
                       mark_worker_count(), gc_config.workers);
    if (sweep_start_background())
        report_warning("gc_init: cannot start the background sweeper; "
                       "sweeping happens on allocation only");
    return 0;
}

int gc_init(void)
{
    if (likely(gc_initialized()))
        goto attach;
    pthread_mutex_lock(&init_lock);
    if (!atomic_load_explicit(&initialized, memory_order_relaxed)) {
        init_locked();
        atomic_store_explicit(&initialized, true, memory_order_release);
    }
    pthread_mutex_unlock(&init_lock);
attach:
    if (!thread_current())
        threads_attach();
    return 0;
}

void gc_shutdown(void)
{
    pthread_mutex_lock(&init_lock);
    if (!atomic_load_explicit(&initialized, memory_order_relaxed)) {
        pthread_mutex_unlock(&init_lock);
        return;
    }
    size_t others = threads_count() - (thread_current() ? 1 : 0);
    if (others) {
        pthread_mutex_unlock(&init_lock);
        report_warning("gc_shutdown: %zu other thread(s) still attached; "
                       "detach them first (nothing was shut down)",
                       others);
        return;
    }
    pthread_mutex_lock(&gc_lock);
    mark_shutdown();
    sweep_stop_background();
    threads_forget_current();
    atomic_store_explicit(&initialized, false, memory_order_release);
    roots_shutdown();
    heap_shutdown();
    pthread_mutex_unlock(&gc_lock);
    pthread_mutex_unlock(&init_lock);
}

/* ---- the cycle ------------------------------------------------------------ */

struct roots_arg {
    struct gc_thread *self;
    struct root_scan_totals totals;
};

static void scan_roots(struct marker *m, void *arg)
{
    struct roots_arg *a = arg;
    roots_scan(m, a->self, &a->totals);
}

static void run_cycle(struct gc_thread *self, bool forced)
{
    struct cycle_record r = {.forced = forced};
    r.start_ns = os_monotonic_ns();
    sweep_finish();

    threads_lock_registry();
    uint64_t t0 = os_monotonic_ns();
    threads_stop_world(self);
    threads_note_collector_stack(self);
    r.heap_live_start = pacer_heap_live();
    uint64_t t1 = os_monotonic_ns();

    struct roots_arg roots = {.self = self};
    struct mark_result marked;
    mark_run(scan_roots, &roots, &marked);
    uint64_t t2 = os_monotonic_ns();
    r.heap_live_end_mark = pacer_heap_live();

    for (struct gc_thread *t = threads_first(); t; t = t->next)
        cache_release_all(&t->cache);
    /* No list operation can see half a flip: mutators are stopped, and the
     * background sweeper finds no unswept span between sweep_finish and
     * here, so whatever it pops after the flip it claims for the new
     * generation (sweep.h). */
    sweep_flip();
    pacer_cycle_end(marked.marked_bytes);
    uint64_t t3 = os_monotonic_ns();

    r.stop_ns = t1 - t0;
    r.mark_ns = t2 - t1;
    r.term_ns = t3 - t2;
    r.pause_ns = t3 - t0;
    r.mark_cpu_ns = marked.cpu_ns;
    r.markers = marked.markers;
    r.heap_marked = marked.marked_bytes;
    r.heap_goal = pacer_heap_goal();
    r.stack_bytes = roots.totals.stack_bytes;
    r.global_bytes = roots.totals.global_bytes;
    stats_record_cycle(&r);
    atomic_fetch_add_explicit(&cycles_done, 1, memory_order_release);
    threads_start_world();
    threads_unlock_registry();

    sweep_wake_background();
    stats_print_gctrace(&r);
}

/* The registers of the collecting thread must be on its stack while its
 * stack is scanned: spill them in this frame, which outlives the cycle. */
static CGC_NOINLINE void run_cycle_spilled(struct gc_thread *self, bool forced)
{
    __builtin_unwind_init();
    run_cycle(self, forced);
}

static void lock_gc(struct gc_thread *self)
{
    if (pthread_mutex_trylock(&gc_lock) == 0)
        return;
    threads_blocking_begin_internal(self);
    pthread_mutex_lock(&gc_lock);
    threads_blocking_end_internal(self);
}

void gc_collect(void)
{
    struct gc_thread *self = thread_current_or_attach();
    if (!self)
        return;
    if (atomic_load_explicit(&self->state, memory_order_relaxed) !=
        THREAD_RUNNING)
        report_fatal("gc_collect: called inside a blocking region");
    lock_gc(self);
    run_cycle_spilled(self, true);
    sweep_finish();
    pthread_mutex_unlock(&gc_lock);
}

void gc_collect_if_due(struct gc_thread *self)
{
    if (!pacer_should_collect())
        return;
    unsigned seen = atomic_load_explicit(&cycles_done, memory_order_acquire);
    lock_gc(self);
    /* Another thread may have collected while we waited for the lock. */
    if (atomic_load_explicit(&cycles_done, memory_order_acquire) == seen &&
        pacer_should_collect())
        run_cycle_spilled(self, false);
    pthread_mutex_unlock(&gc_lock);
}

int gc_set_percent(int percent)
{
    gc_init();
    return pacer_set_percent(percent);
}
