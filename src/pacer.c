/*
 * pacer.c — the heap goal (see pacer.h). percent < 0 means automatic
 * collection is off. All fields are atomics: gc_set_percent may run on any
 * thread while allocating threads read the goal.
 */
#include "pacer.h"

#include <stdatomic.h>

static struct {
    _Atomic int64_t heap_live;
    _Atomic uint64_t heap_marked;
    _Atomic uint64_t goal;
    atomic_int percent;
} pacer;

static void recompute_goal(void)
{
    int percent = atomic_load_explicit(&pacer.percent, memory_order_relaxed);
    uint64_t marked =
        atomic_load_explicit(&pacer.heap_marked, memory_order_relaxed);
    uint64_t p = percent < 0 ? 100 : (uint64_t)percent;
    uint64_t goal = marked + marked * p / 100;
    uint64_t minimum = PACER_MIN_HEAP * p / 100;
    if (minimum < (64u << 10))
        minimum = 64u << 10;
    if (goal < minimum)
        goal = minimum;
    atomic_store_explicit(&pacer.goal, goal, memory_order_relaxed);
}

void pacer_init(int percent)
{
    atomic_store(&pacer.heap_live, 0);
    atomic_store(&pacer.heap_marked, 0);
    atomic_store(&pacer.percent, percent);
    recompute_goal();
}

void pacer_note_allocation(int64_t bytes)
{
    atomic_fetch_add_explicit(&pacer.heap_live, bytes, memory_order_relaxed);
}

bool pacer_should_collect(void)
{
    if (atomic_load_explicit(&pacer.percent, memory_order_relaxed) < 0)
        return false;
    int64_t live = atomic_load_explicit(&pacer.heap_live, memory_order_relaxed);
    return live > 0 && (uint64_t)live >= atomic_load_explicit(
                                              &pacer.goal, memory_order_relaxed);
}

void pacer_cycle_end(uint64_t marked_bytes)
{
    atomic_store_explicit(&pacer.heap_marked, marked_bytes,
                          memory_order_relaxed);
    atomic_store_explicit(&pacer.heap_live, (int64_t)marked_bytes,
                          memory_order_relaxed);
    recompute_goal();
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

int pacer_percent(void)
{
    return atomic_load_explicit(&pacer.percent, memory_order_relaxed);
}

int pacer_set_percent(int percent)
{
    if (percent < 0)
        percent = -1;
    int old = atomic_exchange_explicit(&pacer.percent, percent,
                                       memory_order_relaxed);
    recompute_goal();
    return old;
}
