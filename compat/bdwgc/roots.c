/*
 * roots.c — GC_add_roots, GC_remove_roots and GC_clear_roots on
 * gc_root_add/gc_root_remove.
 *
 * bdwgc merges a range that overlaps or touches one added before, where
 * cgc refuses overlaps; so the layer keeps its own list of the ranges it
 * registered (malloc'd, under lock) and registers their unions. A merge
 * unregisters the parts before it registers the union: the whole change
 * happens inside cgc's code (threads_enter_library), where no collection
 * can stop the thread, so no mark sees the range missing.
 */
#include "bdwgc.h"

#include "report.h"
#include "threads.h"

#include <cgc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

struct range {
    uintptr_t lo, hi;
};

static struct {
    pthread_mutex_t lock;
    struct range *items;
    size_t count, capacity;
} ranges = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void drop_locked(size_t i)
{
    gc_root_remove((void *)ranges.items[i].lo);
    ranges.items[i] = ranges.items[--ranges.count];
}

void GC_add_roots(void *low, void *high)
{
    uintptr_t lo = (uintptr_t)low, hi = (uintptr_t)high;
    if (lo >= hi)
        return; /* an empty range, as bdwgc: nothing to scan */
    bdwgc_ensure_init();
    struct gc_thread *self = threads_enter_library();
    pthread_mutex_lock(&ranges.lock);
    for (size_t i = 0; i < ranges.count;) {
        struct range r = ranges.items[i];
        if (r.lo <= hi && lo <= r.hi) { /* overlaps or touches: merge */
            lo = r.lo < lo ? r.lo : lo;
            hi = r.hi > hi ? r.hi : hi;
            drop_locked(i);
        } else {
            i++;
        }
    }
    if (ranges.count == ranges.capacity) {
        size_t capacity = ranges.capacity ? 2 * ranges.capacity : 16;
        struct range *items =
            realloc(ranges.items, capacity * sizeof *ranges.items);
        if (!items) {
            pthread_mutex_unlock(&ranges.lock);
            threads_leave_library(self);
            report_warning("GC_add_roots: out of memory; [%p, %p) is not "
                           "scanned",
                           low, high);
            return;
        }
        ranges.items = items;
        ranges.capacity = capacity;
    }
    if (gc_root_add((void *)lo, hi - lo)) {
        pthread_mutex_unlock(&ranges.lock);
        threads_leave_library(self);
        report_warning("GC_add_roots: [%p, %p) overlaps a root registered "
                       "with gc_root_add; it is not scanned twice",
                       (void *)lo, (void *)hi);
        return;
    }
    ranges.items[ranges.count++] = (struct range){lo, hi};
    pthread_mutex_unlock(&ranges.lock);
    threads_leave_library(self);
}

void GC_remove_roots(void *low, void *high)
{
    uintptr_t lo = (uintptr_t)low, hi = (uintptr_t)high;
    struct gc_thread *self = threads_enter_library();
    pthread_mutex_lock(&ranges.lock);
    for (size_t i = 0; i < ranges.count;) {
        if (ranges.items[i].lo >= lo && ranges.items[i].hi <= hi)
            drop_locked(i);
        else
            i++;
    }
    pthread_mutex_unlock(&ranges.lock);
    threads_leave_library(self);
}

void GC_clear_roots(void)
{
    struct gc_thread *self = threads_enter_library();
    pthread_mutex_lock(&ranges.lock);
    while (ranges.count)
        drop_locked(ranges.count - 1);
    pthread_mutex_unlock(&ranges.lock);
    threads_leave_library(self);
}
