/*
 * gc.c — the collector's cycle and lifetime (Go's mgc.go).
 *
 * Cycles run on one collector thread, which is not attached: it holds no
 * GC pointers and never has to stop. Allocating threads ask it for a cycle
 * when the heap reaches the pacer's trigger; gc_collect asks and waits.
 *
 * The concurrent cycle (the default):
 *   0. finish sweeping the previous cycle (world running);
 *   1. STW 1: turn the write barrier and allocate-black on, start the mark
 *      workers, ask every thread to scan its own stack at its next safepoint
 *      (SAFEPOINT_MARK_DUTY); nothing here is proportional to the heap;
 *   2. concurrent mark: workers drain grey work; this thread scans the
 *      registered roots and the stacks of threads inside blocking regions
 *      (claiming them, so gc_blocking_end waits for the scan); allocating
 *      threads assist in proportion to what they allocate;
 *   3. ragged termination: when no grey work is left, every thread flushes
 *      its barrier buffer at its next safepoint (this thread flushes the
 *      blocked ones); if that greyed nothing new, marking is done;
 *   4. STW 2: flush every buffer once more and scan any stack still unscanned
 *      (a thread attached a moment ago), drain what that found (normally
 *      nothing), barrier off, flush thread caches, flip the sweep generation,
 *      set the next goal; nothing proportional to the heap either;
 *   5. concurrent sweep: lazily on allocation and in the background.
 * Why a stack needs no rescan: the barrier shades both the overwritten and
 * the written pointer, so an object a thread loads after its stack scan is
 * either still reachable from the heap (and will be marked through it) or
 * was shaded when the heap lost it; objects allocated meanwhile are black.
 *
 * CGC_DEBUG=gcstoptheworld=1 runs the whole mark inside one pause instead,
 * with this thread marking beside the workers and no barrier.
 */
#include "gc.h"

#include "barrier.h"
#include "central.h"
#include "checkmark.h"
#include "env.h"
#include "ephemeron.h"
#include "finalize.h"
#include "fork.h"
#include "globals.h"
#include "heap.h"
#include "mark.h"
#include "os.h"
#include "pacer.h"
#include "preempt.h"
#include "report.h"
#include "roots.h"
#include "scavenge.h"
#include "service.h"
#include "sizeclass.h"
#include "stats.h"
#include "sweep.h"
#include "thread_role.h"
#include "threads.h"
#include "trace.h"
#include "weak.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static CGC_STATE pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
/* Held by the collector thread from the start of a cycle to its end
 * (sweep and release included); fork's prepare takes it so that no cycle
 * is in flight when the address space is copied (fork.h). */
static CGC_STATE pthread_mutex_t cycle_lock = PTHREAD_MUTEX_INITIALIZER;
/* Set in a forked child, where the collector's threads do not exist;
 * cleared once they are started again (acquire/release: the restart's
 * writes are seen by whoever sees it clear). */
static CGC_STATE atomic_bool services_lost;
static void start_services(void);
static CGC_STATE atomic_bool initialized;
static CGC_STATE uint64_t start_ns;

/* The mark cycle number (bumped in STW 1) and the flush epoch (bumped per
 * ragged flush): threads compare their stamps with them (release/acquire). */
static CGC_STATE _Atomic uint32_t mark_cycle;
static CGC_STATE _Atomic uint32_t flush_epoch;
/* Time spent in assists this cycle, for gctrace and the CPU fraction. */
static CGC_STATE _Atomic uint64_t assist_ns;
/* Scan work an allocating thread does per turn once past the hard goal. */
#define THROTTLE_ASSIST_BYTES ((uint64_t)256 << 10)

static CGC_STATE struct {
    struct service svc;      /* sleeps on svc.wake for a request */
    pthread_cond_t finished; /* gc_collect callers wait for a cycle */
    atomic_bool auto_requested;
    uint32_t forced_wanted;      /* cycles up to this number must run */
    uint32_t release_all_wanted; /* ...and return every free page after */
    uint32_t started, completed;
    uint64_t last_end_ns, last_duration_ns;
} collector = {
    .svc = SERVICE_INITIALIZER,
    .finished = PTHREAD_COND_INITIALIZER,
};

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

/* ---- per-thread marking duties --------------------------------------------
 */

void gc_thread_mark_duties(struct gc_thread *t)
{
    if (!atomic_load_explicit(&gc_internal_barrier_enabled,
                              memory_order_relaxed))
        return;
    uint32_t cycle = atomic_load_explicit(&mark_cycle, memory_order_acquire);
    if (atomic_load_explicit(&t->stack_scanned_cycle, memory_order_relaxed) !=
        cycle) {
        roots_scan_own_stack(t);
        atomic_store_explicit(&t->stack_scanned_cycle, cycle,
                              memory_order_release);
    }
    uint32_t epoch = atomic_load_explicit(&flush_epoch, memory_order_acquire);
    if (atomic_load_explicit(&t->flushed_epoch, memory_order_relaxed) !=
        epoch) {
        barrier_flush(t);
        atomic_store_explicit(&t->flushed_epoch, epoch, memory_order_release);
    }
}

/* Scan up to `budget` bytes of queued grey work on this thread. */
static uint64_t help_mark(uint64_t budget)
{
    uint64_t t0 = os_monotonic_ns();
    struct marker m;
    mark_helper_begin(&m);
    uint64_t done = mark_helper_drain(&m, budget);
    mark_helper_end(&m);
    atomic_fetch_add_explicit(&assist_ns, os_monotonic_ns() - t0,
                              memory_order_relaxed);
    return done;
}

void gc_assist(struct gc_thread *t, uint64_t allocated)
{
    int64_t debt = pacer_assist_debt(allocated) - t->assist_credit;
    if (debt <= 0) {
        t->assist_credit = -debt;
        return;
    }
    debt -= mark_take_background_credit(debt);
    t->assist_credit = 0;
    if (debt <= 0)
        return;
    uint64_t done = help_mark((uint64_t)debt);
    if (done > (uint64_t)debt)
        t->assist_credit = (int64_t)(done - (uint64_t)debt);
}

/* Do a thread's outstanding duties for it while it is held still: `how` is
 * THREAD_CLAIMED (in a blocking region) or THREAD_SUSPENDED (held in the
 * preemption signal's handler). */
static void do_duties_for(struct gc_thread *t, enum thread_state how,
                          bool scanned, bool flushed, uint32_t cycle,
                          uint32_t epoch)
{
    if (!scanned) {
        struct marker m;
        mark_helper_begin(&m);
        roots_scan_thread(&m, t, how);
        mark_helper_end(&m);
        atomic_store_explicit(&t->stack_scanned_cycle, cycle,
                              memory_order_release);
    }
    if (!flushed) {
        barrier_flush(t);
        atomic_store_explicit(&t->flushed_epoch, epoch, memory_order_release);
    }
}

/* Do the duties of threads that cannot: scan the stacks of blocked threads
 * and flush their buffers (claiming each so it holds still), and likewise
 * for threads stopped by the preemption signal; signal running threads
 * that keep marking waiting for more than the grace period (since `since`).
 * Returns whether some running thread still owes a duty, which it will do
 * at its next safepoint or once the signal stops it. */
static bool duties_pending(uint32_t cycle, uint32_t epoch, uint64_t since,
                           unsigned *warned)
{
    bool pending = false;
    uint64_t now = os_monotonic_ns();
    unsigned seconds = (unsigned)((now - since) / 1000000000u);
    bool warn = seconds > *warned;
    if (warn)
        *warned = seconds;
    threads_lock_registry();
    for (struct gc_thread *t = threads_first(), *next; t; t = next) {
        next = t->next;
        bool scanned = atomic_load_explicit(&t->stack_scanned_cycle,
                                            memory_order_acquire) == cycle;
        bool flushed = atomic_load_explicit(&t->flushed_epoch,
                                            memory_order_acquire) == epoch;
        if (scanned && flushed) {
            if (atomic_load_explicit(&t->hold, memory_order_seq_cst))
                preempt_release(t); /* it did them itself meanwhile */
            continue;
        }
        if (threads_try_claim(t)) {
            do_duties_for(t, THREAD_CLAIMED, scanned, flushed, cycle, epoch);
            threads_release_claim(t);
            continue;
        }
        if (preempt_is_held(t)) {
            do_duties_for(t, THREAD_SUSPENDED, scanned, flushed, cycle, epoch);
            preempt_release(t);
            continue;
        }
        if (preempt_enabled() && now - since >= PREEMPT_GRACE_NS)
            preempt_hold(t);
        if (!preempt_poke(t, since, now, PREEMPT_AFTER_GRACE)) {
            threads_reap_exited_locked(t);
            continue;
        }
        pending = true;
        if (warn)
            threads_warn_late(t, seconds, "marking waits for it");
    }
    threads_unlock_registry();
    return pending;
}

/* Between polls of the threads' duties: yield at first (a running thread
 * reaches its next safepoint within microseconds, and a sleep costs a
 * timer's slack), sleep once the wait is long. */
static void pause_between_polls(unsigned polls)
{
    if (polls < 64) {
        sched_yield();
        return;
    }
    struct timespec ts = {0, 50000}; /* 50 µs */
    nanosleep(&ts, NULL);
}

/* Wait until every thread did its duties for this cycle and epoch. */
static void wait_for_duties(uint32_t cycle, uint32_t epoch)
{
    uint64_t since = os_monotonic_ns();
    unsigned warned = 0;
    for (unsigned polls = 0; duties_pending(cycle, epoch, since, &warned);
         polls++)
        pause_between_polls(polls);
    /* Every hold is released now: records of vanished threads can go. */
    threads_lock_registry();
    threads_free_reaped_locked();
    threads_unlock_registry();
}

/* One pass over the ephemerons as a helper, then wait for the workers to
 * drain what it greyed (their values; it counts in the helpers' greyed
 * bytes, so the termination loop goes round again if it found any). */
static void trace_ephemerons(void)
{
    if (!ephemerons_exist())
        return;
    struct marker m;
    mark_helper_begin(&m);
    ephemerons_trace(&m);
    mark_helper_end(&m);
    mark_wait_quiescent();
}

/* Steps 2 and 3 of the cycle: mark until a ragged flush finds nothing. */
static void mark_concurrently(uint32_t cycle)
{
    /* Every stack first, and with it the threads STW 1 stopped by signal
     * and still holds: they must not run before their stacks are scanned
     * (design.md, "Preemption and the barrier"), and one may be stopped
     * inside dl_iterate_phdr holding the loader's lock, which the scan of
     * module data below needs. wait_for_duties returns once every hold is
     * released; a single pass over the threads did not (a held thread that
     * the restart had just woken flickers through RUNNING and was not seen
     * held), and the collector then waited for the loader's lock for ever. */
    wait_for_duties(cycle,
                    atomic_load_explicit(&flush_epoch, memory_order_relaxed));
    struct marker m;
    mark_helper_begin(&m);
    roots_scan_registered(&m);
    mark_helper_end(&m);

    for (;;) {
        /* Stacks first: every thread scans its own at its next safepoint;
         * blocked threads are scanned here. */
        uint32_t epoch =
            atomic_load_explicit(&flush_epoch, memory_order_relaxed);
        wait_for_duties(cycle, epoch);
        atomic_fetch_and_explicit(&gc_internal_safepoint_requested,
                                  ~SAFEPOINT_MARK_DUTY, memory_order_seq_cst);
        mark_wait_quiescent();

        /* Ragged flush: did any buffered pointer grey something new? */
        uint64_t greyed = mark_helper_greyed_bytes();
        atomic_store_explicit(&flush_epoch, epoch + 1, memory_order_release);
        atomic_fetch_or_explicit(&gc_internal_safepoint_requested,
                                 SAFEPOINT_MARK_DUTY, memory_order_seq_cst);
        wait_for_duties(cycle, epoch + 1);
        atomic_fetch_and_explicit(&gc_internal_safepoint_requested,
                                  ~SAFEPOINT_MARK_DUTY, memory_order_seq_cst);
        mark_wait_quiescent();
        trace_ephemerons(); /* a key marked since: its value, next round */
        if (mark_helper_greyed_bytes() == greyed)
            return;
    }
}

/* ---- the cycle ------------------------------------------------------------
 */

static void scan_roots_stopped(struct marker *m, void *arg)
{
    (void)arg;
    roots_scan_all_stopped(m);
}

static void scan_ephemerons(struct marker *m, void *arg)
{
    (void)arg;
    ephemerons_trace(m);
}

/* STW 2's share of both modes: flush caches, flip, pace, record, restart. */
static void finish_cycle(struct cycle_record *r, const struct mark_result *mr,
                         uint64_t stw2_start)
{
    /* Marking is complete and nothing is swept yet: the Boehm layer clears
     * its disappearing links now (weak.h). */
    weak_run_mark_done_hook();
    r->heap_live_end_mark = pacer_heap_live();
    for (struct gc_thread *t = threads_first(); t; t = t->next)
        cache_release_all(&t->cache);
    /* Released spans unmarked what they did not hand out, and counted
     * what they did: the bytes allocated black this cycle. */
    uint64_t black_bytes = mark_take_black_bytes();
    /* No list operation can see half a flip: mutators are stopped, and the
     * background sweeper (which runs on) finds no unswept span between
     * sweep_finish and here, so whatever it pops after the flip it claims
     * for the new generation (sweep.h). The count comes first, while no
     * one can pop what it counts (central.c). */
    central_count_unswept();
    sweep_flip();
    scavenge_update_pacer();
    uint64_t allocated = r->heap_live_end_mark > r->heap_live_start
                             ? r->heap_live_end_mark - r->heap_live_start
                             : 0;
    pacer_cycle_end(mr->marked_bytes + black_bytes, mr->scanned_bytes,
                    allocated);
    r->term_ns = os_monotonic_ns() - stw2_start;
    r->mark_cpu_ns = mr->cpu_ns;
    r->assist_ns =
        atomic_exchange_explicit(&assist_ns, 0, memory_order_relaxed);
    r->markers = mr->markers;
    r->heap_marked = mr->marked_bytes + black_bytes;
    r->heap_goal = pacer_heap_goal();
    struct root_scan_totals totals;
    roots_take_totals(&totals);
    r->stack_bytes = totals.stack_bytes;
    r->global_bytes = totals.global_bytes;
    stats_record_cycle(r);
    threads_start_world();
    threads_free_reaped_locked(); /* nothing stopped or held now */
    threads_unlock_registry();
}

/* The part of the stop-the-world cycle from the stop to the restart. */
static void stop_the_world_mark(void *arg)
{
    struct cycle_record *r = arg;
    threads_lock_registry();
    uint64_t t0 = os_monotonic_ns();
    threads_stop_world(NULL);
    if (gc_config.checkmark)
        checkmark_verify_swept();
    r->heap_live_start = pacer_heap_live();
    uint64_t t1 = os_monotonic_ns();
    struct mark_result mr;
    mark_run(scan_roots_stopped, NULL, &mr);
    /* Ephemerons to a fixpoint: each pass may mark values that are keys. */
    while (ephemerons_exist()) {
        struct mark_result more;
        mark_run(scan_ephemerons, NULL, &more);
        mr.marked_bytes += more.marked_bytes;
        mr.scanned_bytes += more.scanned_bytes;
        mr.cpu_ns += more.cpu_ns;
        if (more.marked_bytes == 0)
            break;
    }
    uint64_t t2 = os_monotonic_ns();
    if (gc_config.checkmark)
        checkmark_verify();
    r->stop_ns = t1 - t0;
    r->mark_ns = t2 - t1;
    r->stop_the_world = true;
    finish_cycle(r, &mr, t2);
}

static void run_stop_the_world_cycle(struct cycle_record *r, uint32_t number)
{
    sweep_finish();
    /* Module data is read with the world stopped: hold the loader's lock
     * from before the stop, so that no thread the signal stops holds it
     * (globals.h). */
    globals_with_loader_held(stop_the_world_mark, r);
    trace_event(GC_EVENT_MARK_DONE, number);
}

struct termination {
    struct cycle_record *r;
    uint32_t cycle;
    bool preempted; /* STW 1 stopped a thread by signal */
    uint64_t mark_start;
};
static void terminate_marking(void *arg);

static void run_concurrent_cycle(struct cycle_record *r, uint32_t number)
{
    sweep_finish();

    /* STW 1. */
    threads_lock_registry();
    uint64_t t0 = os_monotonic_ns();
    threads_stop_world(NULL);
    if (gc_config.checkmark)
        checkmark_verify_swept();
    uint32_t cycle =
        atomic_fetch_add_explicit(&mark_cycle, 1, memory_order_release) + 1;
    r->heap_live_start = pacer_heap_live();
    pacer_cycle_start();
    mark_take_black_bytes();
    bool preempted = false;
    for (struct gc_thread *t = threads_first(); t; t = t->next) {
        cache_blacken_all(&t->cache);
        /* Stopped by the signal at an arbitrary instruction, perhaps
         * between GC_WRITE's load of the barrier flag (off) and its store:
         * keep it stopped until its stack is scanned (design.md,
         * "Preemption and the barrier"). */
        if (t->stopped_as == THREAD_SUSPENDED) {
            preempt_hold(t);
            preempted = true;
        }
    }
    barrier_enable(true);
    mark_begin_concurrent();
    atomic_fetch_or_explicit(&gc_internal_safepoint_requested,
                             SAFEPOINT_MARK_DUTY, memory_order_seq_cst);
    r->stop_ns = os_monotonic_ns() - t0;
    threads_start_world();
    threads_unlock_registry();
    trace_event(GC_EVENT_MARK_START, number);
    pacer_trace_cycle_start(r->heap_live_start);

    uint64_t t1 = os_monotonic_ns();
    mark_concurrently(cycle);

    struct termination term = {r, cycle, preempted, t1};
    if (gc_config.checkmark) /* it reads module data with the world stopped */
        globals_with_loader_held(terminate_marking, &term);
    else
        terminate_marking(&term);
    trace_event(GC_EVENT_MARK_DONE, number);
}

/* STW 2: a last flush of every buffer and of stacks still unscanned, then
 * the end of the cycle. */
static void terminate_marking(void *arg)
{
    const struct termination *term = arg;
    struct cycle_record *r = term->r;
    uint32_t cycle = term->cycle;
    bool preempted = term->preempted;
    threads_lock_registry();
    uint64_t t2 = os_monotonic_ns();
    r->mark_ns = t2 - term->mark_start;
    threads_stop_world(NULL);
    uint64_t greyed_before = mark_helper_greyed_bytes();
    struct marker m;
    mark_helper_begin(&m);
    for (struct gc_thread *t = threads_first(); t; t = t->next) {
        /* A thread preempted at STW 1 may have finished a store that missed
         * the barrier: what it overwrote can be held only by a stack that
         * was scanned before, so every stack is scanned again. */
        if (preempted || atomic_load_explicit(&t->stack_scanned_cycle,
                                              memory_order_acquire) != cycle) {
            roots_scan_thread(&m, t, (enum thread_state)t->stopped_as);
            atomic_store_explicit(&t->stack_scanned_cycle, cycle,
                                  memory_order_release);
        }
        barrier_flush(t);
    }
    mark_helper_end(&m);
    mark_wait_quiescent(); /* the workers drain whatever that found */
    /* Normally nothing: only if the last flush marked something new may an
     * ephemeron's key have become marked (keeps STW 2 independent of the
     * number of ephemerons otherwise). */
    for (uint64_t seen = greyed_before; mark_helper_greyed_bytes() != seen;) {
        seen = mark_helper_greyed_bytes();
        trace_ephemerons();
    }
    atomic_fetch_and_explicit(&gc_internal_safepoint_requested,
                              ~SAFEPOINT_MARK_DUTY, memory_order_seq_cst);
    barrier_enable(false);
    struct mark_result mr;
    mark_end_concurrent(&mr);
    if (gc_config.checkmark)
        checkmark_verify();
    finish_cycle(r, &mr, t2);
}

static void run_cycle(bool forced)
{
    struct cycle_record r = {.forced = forced};
    r.start_ns = os_monotonic_ns();
    r.cycle_goal = pacer_heap_goal();
    uint32_t number = collector.started;
    trace_event(GC_EVENT_CYCLE_START, number);
    if (gc_config.stoptheworld)
        run_stop_the_world_cycle(&r, number);
    else
        run_concurrent_cycle(&r, number);
    mark_release_spares(); /* not in the pause: munmap is slow */
    sweep_wake_background();
    stats_print_gctrace(&r);
    pacer_trace_cycle_end(&r);
    trace_event(GC_EVENT_CYCLE_END, number);
    collector.last_duration_ns = os_monotonic_ns() - r.start_ns;
    collector.last_end_ns = os_monotonic_ns();
}

/* ---- the collector thread -------------------------------------------------
 */

/* Under a memory limit, keep automatic cycles to about half the time, so
 * that a limit below what the program needs slows it down rather than
 * stopping it (Go's GC CPU limiter caps at 50 % the same way). */
static void respect_cpu_cap(void)
{
    if (pacer_memory_limit() == INT64_MAX)
        return;
    uint64_t ready = collector.last_end_ns + collector.last_duration_ns;
    uint64_t now = os_monotonic_ns();
    bool limited = collector.last_end_ns && now < ready;
    /* While the cap holds cycles apart, allocating threads must not wait
     * for them (pacer.h): set before the sleep they would wait out. */
    pacer_set_cpu_limited(limited);
    if (limited) {
        uint64_t wait = ready - now;
        struct timespec ts = {(time_t)(wait / 1000000000u),
                              (long)(wait % 1000000000u)};
        nanosleep(&ts, NULL);
    }
}

static void *collector_main(void *arg)
{
    (void)arg;
    thread_role_set_internal();
    /* Stopping the world polls the threads between sleeps of 20 µs
     * (threads.c); with the default 50 µs of timer slack each took 70 µs
     * or more, and a stop that has to signal a thread sleeps a few times. */
    os_precise_sleeps();
    pthread_mutex_lock(&collector.svc.lock);
    for (;;) {
        while (!collector.svc.stop &&
               !atomic_load_explicit(&collector.auto_requested,
                                     memory_order_relaxed) &&
               collector.forced_wanted <= collector.started)
            pthread_cond_wait(&collector.svc.wake, &collector.svc.lock);
        if (collector.svc.stop)
            break;
        bool forced = collector.forced_wanted > collector.started;
        atomic_store_explicit(&collector.auto_requested, false,
                              memory_order_relaxed);
        pthread_mutex_unlock(&collector.svc.lock);

        if (!forced) {
            respect_cpu_cap();
            if (!pacer_should_collect(gc_config.stoptheworld)) {
                pthread_mutex_lock(&collector.svc.lock);
                pthread_cond_broadcast(&collector.finished); /* waiters */
                continue;
            }
        }
        pthread_mutex_lock(&cycle_lock);
        pthread_mutex_lock(&collector.svc.lock);
        collector.started++;
        forced = collector.forced_wanted >= collector.started;
        pthread_mutex_unlock(&collector.svc.lock);

        run_cycle(forced);
        if (forced)
            sweep_finish(); /* gc_collect returns with sweeping done */
        if (collector.release_all_wanted >= collector.started) {
            sweep_finish();
            scavenge_all();
        }
        scavenge_trace_cycle(collector.release_all_wanted >= collector.started);

        pthread_mutex_lock(&collector.svc.lock);
        collector.completed++;
        pthread_cond_broadcast(&collector.finished);
        pthread_mutex_unlock(&cycle_lock);
    }
    pthread_mutex_unlock(&collector.svc.lock);
    return NULL;
}

/* Wait, as a stopped thread, for the cycle that is running or requested. */
static void wait_for_cycle(struct gc_thread *self)
{
    threads_blocking_begin_internal(self);
    pthread_mutex_lock(&collector.svc.lock);
    uint32_t target = collector.completed + 1;
    while (collector.completed < target &&
           (atomic_load_explicit(&collector.auto_requested,
                                 memory_order_relaxed) ||
            collector.started > collector.completed))
        pthread_cond_wait(&collector.finished, &collector.svc.lock);
    pthread_mutex_unlock(&collector.svc.lock);
    threads_blocking_end_internal(self);
}

/* In a forked child: start the collector's threads again (fork.h). */
static void restart_services(void)
{
    if (likely(!atomic_load_explicit(&services_lost, memory_order_acquire)))
        return;
    pthread_mutex_lock(&init_lock);
    if (atomic_load_explicit(&services_lost, memory_order_relaxed)) {
        start_services();
        atomic_store_explicit(&services_lost, false, memory_order_release);
    }
    pthread_mutex_unlock(&init_lock);
}

void gc_collect_if_due(struct gc_thread *self)
{
    if (!pacer_should_collect(gc_config.stoptheworld))
        return;
    restart_services();
    if (!atomic_load_explicit(&collector.auto_requested,
                              memory_order_relaxed)) {
        pthread_mutex_lock(&collector.svc.lock);
        atomic_store_explicit(&collector.auto_requested, true,
                              memory_order_relaxed);
        pthread_cond_signal(&collector.svc.wake);
        pthread_mutex_unlock(&collector.svc.lock);
    }
    /* Back-pressure: past the hard goal, an allocating thread helps mark
     * for as long as there is work to take, and waits for the cycle only
     * when there is none (Go's assists park likewise), so it never outruns
     * the collector for long. Not while the CPU cap holds cycles apart:
     * pacer_over_hard_goal is false then (pacer.h). */
    while (self && pacer_over_hard_goal(gc_config.stoptheworld)) {
        if (atomic_load_explicit(&gc_internal_barrier_enabled,
                                 memory_order_relaxed)) {
            if (help_mark(THROTTLE_ASSIST_BYTES) > 0)
                continue;
        } else {
            /* The cycle has not started: it starts by finishing the
             * sweep, which we can share. */
            sweep_finish();
        }
        wait_for_cycle(self);
        break;
    }
}

/* Run a whole new cycle (and, if asked, release every free page after it)
 * and wait for it, as a blocked thread. */
static void collect_and_wait(const char *caller, bool release_all)
{
    struct gc_thread *self = thread_current_or_attach();
    if (!self)
        return;
    if (atomic_load_explicit(&self->state, memory_order_relaxed) !=
        THREAD_RUNNING)
        report_fatal("%s: called inside a blocking region", caller);
    threads_library_enter(self);
    restart_services();
    /* Our own barrier entries and stack must not hold the cycle up. */
    threads_blocking_begin_internal(self);
    pthread_mutex_lock(&collector.svc.lock);
    uint32_t target = collector.started + 1;
    if (collector.forced_wanted < target)
        collector.forced_wanted = target;
    if (release_all && collector.release_all_wanted < target)
        collector.release_all_wanted = target;
    pthread_cond_signal(&collector.svc.wake);
    while (collector.completed < target)
        pthread_cond_wait(&collector.finished, &collector.svc.lock);
    pthread_mutex_unlock(&collector.svc.lock);
    threads_blocking_end_internal(self);
    threads_library_leave(self);
}

void gc_collect(void)
{
    collect_and_wait("gc_collect", false);
}

void gc_free_os_memory(void)
{
    collect_and_wait("gc_free_os_memory", true);
}

/* ---- lifetime -------------------------------------------------------------
 */

/* The collector's own threads: mark workers, background sweeper,
 * scavenger, collector (gc_init, and a forked child's first cycle). */
static void start_services(void)
{
    if (mark_init(gc_config.workers))
        report_warning("gc_init: could start only %u of %u mark workers",
                       mark_worker_count(), gc_config.workers);
    if (sweep_start_background())
        report_warning("gc_init: cannot start the background sweeper; "
                       "sweeping happens on allocation only");
    if (scavenge_start_background())
        report_warning("gc_init: cannot start the background scavenger; "
                       "free memory returns to the OS only under a limit");
    if (service_start(&collector.svc, collector_main))
        report_fatal("gc_init: cannot start the collector thread");
}

static int init_locked(void)
{
    sizeclass_init();
    env_read_config(&gc_config);
    if (heap_init())
        report_fatal("gc_init: cannot reserve the arena index");
    central_init();
    roots_init();
    pacer_init(gc_config.percent, gc_config.memory_limit);
    stats_init();
    threads_init();
    preempt_init(gc_config.signal, !gc_config.asyncpreemptoff);
    start_ns = os_monotonic_ns();
    barrier_enable(false);
    collector.started = collector.completed = collector.forced_wanted = 0;
    collector.release_all_wanted = 0;
    collector.last_end_ns = collector.last_duration_ns = 0;
    atomic_store(&collector.auto_requested, false);
    start_services();
    fork_install();
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
    if (!thread_current() && !thread_role_is_internal())
        threads_attach();
    return 0;
}

void gc_shutdown(void)
{
    if (gc_initialized()) {
        /* Inside cgc: their locks are ones the collector takes. */
        struct gc_thread *self = threads_enter_library();
        finalize_shutdown(); /* its thread is attached: stop it first */
        weak_shutdown();
        ephemeron_shutdown();
        threads_leave_library(self);
    }
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
    service_stop(&collector.svc);
    mark_shutdown();
    sweep_stop_background();
    scavenge_stop_background();
    threads_forget_current();
    atomic_store_explicit(&initialized, false, memory_order_release);
    roots_shutdown();
    heap_shutdown();
    pthread_mutex_unlock(&init_lock);
}

int gc_set_percent(int percent)
{
    gc_init();
    return pacer_set_percent(percent);
}

int64_t gc_set_memory_limit(int64_t bytes)
{
    gc_init();
    struct gc_thread *self = threads_enter_library();
    int64_t old = pacer_set_memory_limit(bytes);
    if (bytes >= 0)
        scavenge_to_limit(); /* takes the heap lock */
    threads_leave_library(self);
    return old;
}

/* ---- fork (fork.h) --------------------------------------------------------
 */

void gc_fork(enum fork_phase phase)
{
    switch (phase) {
    case FORK_PREPARE: {
        pthread_mutex_lock(&init_lock);
        /* Wait for a cycle in flight as a stopped thread: it may be
         * waiting for us. */
        struct gc_thread *self = thread_current();
        bool running =
            self && atomic_load_explicit(&self->state, memory_order_relaxed) ==
                        THREAD_RUNNING;
        if (running)
            threads_blocking_begin_internal(self);
        pthread_mutex_lock(&cycle_lock);
        if (running)
            threads_blocking_end_internal(self);
        /* No sweep in flight, none to come: the child's sweeper count is
         * exact and no span is lost with a thread that does not exist. */
        sweep_finish();
        break;
    }
    case FORK_PARENT:
        pthread_mutex_unlock(&cycle_lock);
        pthread_mutex_unlock(&init_lock);
        break;
    case FORK_CHILD:
        pthread_mutex_init(&init_lock, NULL);
        pthread_mutex_init(&cycle_lock, NULL);
        atomic_store_explicit(&services_lost, true, memory_order_release);
        break;
    }
}

void gc_fork_services(enum fork_phase phase)
{
    fork_mutex(&collector.svc.lock, phase);
    fork_cond(&collector.svc.wake, phase);
    fork_cond(&collector.finished, phase);
    if (phase == FORK_CHILD) {
        collector.svc.running = false;
        collector.svc.stop = false;
        atomic_store_explicit(&collector.auto_requested, false,
                              memory_order_relaxed);
        collector.forced_wanted = collector.started;
        collector.release_all_wanted = collector.started;
    }
}
