/*
 * roots.c — registered roots and conservative stack scanning.
 *
 * Registered roots are a sorted array of non-overlapping ranges under
 * roots_lock (binary search for overlap and removal). Stacks: a PARKED
 * thread's live stack is [parked_sp, stack_hi), whose lowest frame spilled
 * its callee-saved registers; a BLOCKING thread contributes the snapshot
 * taken on entry (its registers) plus the live stack above the snapshot.
 */
#include "roots.h"

#include "threads.h"

#include <cgc.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct root {
    uintptr_t lo, hi;
};

static struct {
    pthread_mutex_t lock;
    struct root *items;
    size_t count, capacity;
} roots = {.lock = PTHREAD_MUTEX_INITIALIZER};

void roots_init(void)
{
    pthread_mutex_lock(&roots.lock);
    roots.count = 0;
    pthread_mutex_unlock(&roots.lock);
}

void roots_shutdown(void)
{
    pthread_mutex_lock(&roots.lock);
    free(roots.items);
    roots.items = NULL;
    roots.count = roots.capacity = 0;
    pthread_mutex_unlock(&roots.lock);
}

/* Index of the first root with hi > addr. */
static size_t first_ending_after(uintptr_t addr)
{
    size_t lo = 0, hi = roots.count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (roots.items[mid].hi <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int gc_root_add(void *addr, size_t size)
{
    uintptr_t lo = (uintptr_t)addr;
    if (!addr || size == 0 || lo + size < lo) {
        errno = EINVAL;
        return -1;
    }
    gc_init();
    pthread_mutex_lock(&roots.lock);
    size_t i = first_ending_after(lo);
    if (i < roots.count && roots.items[i].lo < lo + size) {
        pthread_mutex_unlock(&roots.lock);
        errno = EINVAL;
        return -1;
    }
    if (roots.count == roots.capacity) {
        size_t cap = roots.capacity ? roots.capacity * 2 : 16;
        struct root *items = realloc(roots.items, cap * sizeof *items);
        if (!items) {
            pthread_mutex_unlock(&roots.lock);
            errno = ENOMEM;
            return -1;
        }
        roots.items = items;
        roots.capacity = cap;
    }
    memmove(&roots.items[i + 1], &roots.items[i],
            (roots.count - i) * sizeof *roots.items);
    roots.items[i] = (struct root){lo, lo + size};
    roots.count++;
    pthread_mutex_unlock(&roots.lock);
    return 0;
}

int gc_root_remove(void *addr)
{
    uintptr_t lo = (uintptr_t)addr;
    pthread_mutex_lock(&roots.lock);
    size_t i = first_ending_after(lo);
    if (!addr || i >= roots.count || roots.items[i].lo != lo) {
        pthread_mutex_unlock(&roots.lock);
        errno = ENOENT;
        return -1;
    }
    memmove(&roots.items[i], &roots.items[i + 1],
            (roots.count - i - 1) * sizeof *roots.items);
    roots.count--;
    pthread_mutex_unlock(&roots.lock);
    return 0;
}

static uint64_t scan_thread(struct marker *m, struct gc_thread *t)
{
    if (t->stopped_as == THREAD_BLOCKING) {
        uintptr_t snap = (uintptr_t)t->snapshot;
        mark_scan_conservative(m, snap, snap + t->snapshot_len);
        uintptr_t live = t->blocking_sp + t->snapshot_len;
        if (live < t->stack_hi)
            mark_scan_conservative(m, live, t->stack_hi);
        return t->stack_hi - t->blocking_sp;
    }
    mark_scan_conservative(m, t->parked_sp, t->stack_hi);
    return t->stack_hi - t->parked_sp;
}

void roots_scan(struct marker *m, struct gc_thread *self,
                struct root_scan_totals *totals)
{
    (void)self;
    totals->stack_bytes = 0;
    totals->global_bytes = 0;
    for (struct gc_thread *t = threads_first(); t; t = t->next)
        totals->stack_bytes += scan_thread(m, t);
    pthread_mutex_lock(&roots.lock);
    for (size_t i = 0; i < roots.count; i++) {
        mark_scan_conservative(m, roots.items[i].lo, roots.items[i].hi);
        totals->global_bytes += roots.items[i].hi - roots.items[i].lo;
    }
    pthread_mutex_unlock(&roots.lock);
}
