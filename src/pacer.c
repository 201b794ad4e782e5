/*
 * pacer.c — the heap goal, the trigger and the assist ratio (see pacer.h).
 *
 * percent < 0 means no GOGC goal (CGC_PERCENT=off): cycles then run only
 * for the memory limit, if one is set. Fields are relaxed atomics: setters
 * may run on any thread while allocating threads read the goal, and every
 * consumer tolerates a value one update old (a stale cpu_limited lets one
 * refill wait for a cycle, or skip one wait, once).
 */
#include "pacer.h"

#include "env.h"
#include "mark.h"
#include "os.h"
#include "stats.h"
#include "trace.h"

#include <stdatomic.h>

#define NO_LIMIT INT64_MAX
/* Go's memoryLimitHeapGoalHeadroomPercent: keep 3 % of the limit spare. */
#define LIMIT_HEADROOM_PERCENT 3
#define TRIGGER_MIN            0.70
#define TRIGGER_MAX            0.95

static CGC_STATE struct {
    _Atomic int64_t heap_live;
    _Atomic uint64_t heap_marked;
    _Atomic uint64_t goal, trigger;
    atomic_bool limit_bound; /* the memory limit set the goal */
    /* The CPU cap holds cycles apart (gc.c, respect_cpu_cap): written by
     * the collector thread, read by allocating threads. */
    atomic_bool cpu_limited;
    atomic_int percent;
    _Atomic int64_t memory_limit;
    _Atomic uint64_t overhead; /* retained memory that is not heap objects */
    /* Last cycle: bytes allocated per byte scanned while marking. */
    _Atomic double alloc_per_scan;
    _Atomic uint64_t last_scanned;
    _Atomic uint64_t expected_scan; /* scan work expected by this cycle */
    _Atomic double assist_ratio;    /* scan bytes owed per allocated byte */
} pacer;

static uint64_t gogc_goal(int percent, uint64_t marked)
{
    uint64_t p = (uint64_t)percent;
    uint64_t goal = marked + marked * p / 100;
    uint64_t minimum = PACER_MIN_HEAP * p / 100;
    if (minimum < (64u << 10))
        minimum = 64u << 10;
    return goal > minimum ? goal : minimum;
}

static void recompute(void)
{
    int percent = atomic_load_explicit(&pacer.percent, memory_order_relaxed);
    int64_t limit =
        atomic_load_explicit(&pacer.memory_limit, memory_order_relaxed);
    uint64_t marked =
        atomic_load_explicit(&pacer.heap_marked, memory_order_relaxed);
    uint64_t goal = percent >= 0 ? gogc_goal(percent, marked) : UINT64_MAX;
    if (limit != NO_LIMIT) {
        uint64_t headroom = (uint64_t)limit / 100 * LIMIT_HEADROOM_PERCENT;
        uint64_t overhead =
            atomic_load_explicit(&pacer.overhead, memory_order_relaxed);
        uint64_t room = (uint64_t)limit > overhead + headroom
                            ? (uint64_t)limit - overhead - headroom
                            : 0;
        if (room < goal)
            goal = room;
    }
    atomic_store_explicit(&pacer.limit_bound,
                          percent < 0 || goal < gogc_goal(percent, marked),
                          memory_order_relaxed);
    atomic_store_explicit(&pacer.goal, goal, memory_order_relaxed);

    /* Trigger: goal minus the runway, clamped into [0.7, 0.95] of the way
     * from the marked heap to the goal. */
    uint64_t trigger = goal;
    if (goal != UINT64_MAX && goal > marked) {
        double runway =
            atomic_load_explicit(&pacer.alloc_per_scan, memory_order_relaxed) *
            (double)atomic_load_explicit(&pacer.last_scanned,
                                         memory_order_relaxed);
        double span = (double)(goal - marked);
        double at = (double)goal - runway;
        double lo = (double)marked + TRIGGER_MIN * span;
        double hi = (double)marked + TRIGGER_MAX * span;
        trigger = (uint64_t)(at < lo ? lo : at > hi ? hi : at);
    }
    atomic_store_explicit(&pacer.trigger, trigger, memory_order_relaxed);
}

void pacer_init(int percent, int64_t memory_limit)
{
    atomic_store(&pacer.heap_live, 0);
    atomic_store(&pacer.heap_marked, 0);
    atomic_store(&pacer.percent, percent);
    atomic_store(&pacer.memory_limit,
                 memory_limit < 0 ? NO_LIMIT : memory_limit);
    atomic_store(&pacer.overhead, 0);
    atomic_store(&pacer.alloc_per_scan, 0.5);
    atomic_store(&pacer.last_scanned, 0);
    atomic_store(&pacer.assist_ratio, 0.0);
    atomic_store(&pacer.cpu_limited, false);
    recompute();
}

void pacer_note_allocation(int64_t bytes)
{
    atomic_fetch_add_explicit(&pacer.heap_live, bytes, memory_order_relaxed);
}

bool pacer_should_collect(bool stop_the_world)
{
    int64_t live = atomic_load_explicit(&pacer.heap_live, memory_order_relaxed);
    uint64_t at =
        stop_the_world
            ? atomic_load_explicit(&pacer.goal, memory_order_relaxed)
            : atomic_load_explicit(&pacer.trigger, memory_order_relaxed);
    return live > 0 && at != UINT64_MAX && (uint64_t)live >= at;
}

bool pacer_over_hard_goal(bool stop_the_world)
{
    /* Go's GC CPU limiter: while cycles are held to half the time, a
     * thread that waited for them would wait for the cap too, so the heap
     * overshoots instead. */
    if (pacer_cpu_limited())
        return false;
    int64_t live = atomic_load_explicit(&pacer.heap_live, memory_order_relaxed);
    uint64_t goal = atomic_load_explicit(&pacer.goal, memory_order_relaxed);
    if (goal == UINT64_MAX || live <= 0)
        return false;
    /* A goal set by the memory limit leaves no slack to overshoot. */
    bool exact = stop_the_world ||
                 atomic_load_explicit(&pacer.limit_bound, memory_order_relaxed);
    uint64_t hard = exact ? goal : goal + goal / 10;
    return (uint64_t)live >= hard;
}

void pacer_cycle_start(void)
{
    atomic_store_explicit(
        &pacer.expected_scan,
        atomic_load_explicit(&pacer.last_scanned, memory_order_relaxed),
        memory_order_relaxed);
    /* Expect to scan about what the last cycle marked, and spread that
     * work over the room left before the goal. */
    uint64_t goal = atomic_load_explicit(&pacer.goal, memory_order_relaxed);
    uint64_t live = pacer_heap_live();
    uint64_t expected =
        atomic_load_explicit(&pacer.heap_marked, memory_order_relaxed);
    uint64_t room = goal > live ? goal - live : 0;
    if (room < (1u << 20))
        room = 1u << 20;
    atomic_store_explicit(&pacer.assist_ratio, (double)expected / (double)room,
                          memory_order_relaxed);
}

int64_t pacer_assist_debt(uint64_t bytes)
{
    /* As Go's limiter, which turns assists off: the collector already
     * takes its half of the time. */
    if (pacer_cpu_limited())
        return 0;
    return (int64_t)((double)bytes *
                     atomic_load_explicit(&pacer.assist_ratio,
                                          memory_order_relaxed));
}

void pacer_cycle_end(uint64_t marked_bytes, uint64_t scanned_bytes,
                     uint64_t allocated_while_marking)
{
    atomic_store_explicit(&pacer.heap_marked, marked_bytes,
                          memory_order_relaxed);
    atomic_store_explicit(&pacer.heap_live, (int64_t)marked_bytes,
                          memory_order_relaxed);
    if (scanned_bytes > 0) {
        atomic_store_explicit(&pacer.alloc_per_scan,
                              (double)allocated_while_marking /
                                  (double)scanned_bytes,
                              memory_order_relaxed);
        atomic_store_explicit(&pacer.last_scanned, scanned_bytes,
                              memory_order_relaxed);
    }
    recompute();
}

void pacer_update_overhead(uint64_t retained, uint64_t heap_inuse)
{
    uint64_t overhead = retained > heap_inuse ? retained - heap_inuse : 0;
    atomic_store_explicit(&pacer.overhead, overhead, memory_order_relaxed);
    recompute();
}

uint64_t pacer_heap_live(void)
{
    int64_t live = atomic_load_explicit(&pacer.heap_live, memory_order_relaxed);
    return live > 0 ? (uint64_t)live : 0;
}

uint64_t pacer_heap_goal(void)
{
    return atomic_load_explicit(&pacer.goal, memory_order_relaxed);
}

uint64_t pacer_trigger(void)
{
    return atomic_load_explicit(&pacer.trigger, memory_order_relaxed);
}

int pacer_percent(void)
{
    return atomic_load_explicit(&pacer.percent, memory_order_relaxed);
}

int pacer_set_percent(int percent)
{
    if (percent < 0)
        percent = -1;
    int old =
        atomic_exchange_explicit(&pacer.percent, percent, memory_order_relaxed);
    recompute();
    return old;
}

int64_t pacer_memory_limit(void)
{
    return atomic_load_explicit(&pacer.memory_limit, memory_order_relaxed);
}

int64_t pacer_set_memory_limit(int64_t bytes)
{
    if (bytes < 0)
        return pacer_memory_limit();
    int64_t old = atomic_exchange_explicit(&pacer.memory_limit, bytes,
                                           memory_order_relaxed);
    if (bytes == NO_LIMIT)
        pacer_set_cpu_limited(false); /* the cap applies under a limit only */
    recompute();
    return old;
}

void pacer_set_cpu_limited(bool limited)
{
    atomic_store_explicit(&pacer.cpu_limited, limited, memory_order_relaxed);
}

bool pacer_cpu_limited(void)
{
    return atomic_load_explicit(&pacer.cpu_limited, memory_order_relaxed);
}

void pacer_trace_cycle_start(uint64_t heap_live_start)
{
    if (!gc_config.pacertrace)
        return;
    char ratio[32], fractional[32];
    trace_format_float(
        ratio, sizeof ratio,
        atomic_load_explicit(&pacer.assist_ratio, memory_order_relaxed));
    trace_format_float(fractional, sizeof fractional, 0.0);
    trace_line(
        "pacer: assist ratio=%s (scan %llu MB in %llu->%llu MB) "
        "workers=%u+%s",
        ratio,
        (unsigned long long)(atomic_load_explicit(&pacer.heap_marked,
                                                  memory_order_relaxed) >>
                             20),
        (unsigned long long)(heap_live_start >> 20),
        (unsigned long long)(pacer_heap_goal() >> 20), mark_worker_count(),
        fractional);
}

void pacer_trace_cycle_end(const struct cycle_record *r)
{
    if (!gc_config.pacertrace)
        return;
    /* GC CPU while marking over the CPU available meanwhile, as Go's
     * utilization; its goal is 25 %. */
    uint64_t available = r->mark_ns * (uint64_t)os_cpu_count();
    unsigned utilization =
        available
            ? (unsigned)((r->mark_cpu_ns + r->assist_ns) * 100 / available)
            : 0;
    uint64_t heap_work = r->heap_marked;
    char cons_mark[32];
    trace_format_float(
        cons_mark, sizeof cons_mark,
        atomic_load_explicit(&pacer.alloc_per_scan, memory_order_relaxed));
    trace_line(
        "pacer: %u%% CPU (25 exp.) for %llu+%llu+%llu B work (%llu B "
        "exp.) in %llu B -> %llu B (\u2206goal %lld, cons/mark %s)",
        utilization, (unsigned long long)heap_work,
        (unsigned long long)r->stack_bytes, (unsigned long long)r->global_bytes,
        (unsigned long long)atomic_load_explicit(&pacer.expected_scan,
                                                 memory_order_relaxed),
        (unsigned long long)r->heap_live_start,
        (unsigned long long)r->heap_live_end_mark,
        (long long)r->heap_live_end_mark - (long long)r->cycle_goal, cons_mark);
}
