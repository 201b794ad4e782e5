/*
 * roots.c — registered roots and conservative stack scanning; the data of
 * loaded modules and threads' TLS (globals.c) are scanned from here too.
 *
 * Registered roots are a sorted array of non-overlapping ranges under
 * roots_lock (binary search for overlap and removal). Stacks: a PARKED
 * thread's live stack is [parked_sp, stack_hi), whose lowest frame spilled
 * its callee-saved registers; a SUSPENDED one (stopped by the preemption
 * signal) likewise [suspend_sp, stack_hi), which holds the signal frame with
 * every register of the interrupted code; a BLOCKING thread contributes the
 * snapshot taken on entry (its registers) plus the live stack above it.
 */
#include "roots.h"

#include "finalize.h"
#include "fork.h"
#include "weak.h"

#include "globals.h"
#include "report.h"
#include "threads.h"

#include <cgc.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct root {
    uintptr_t lo, hi;
};

static CGC_STATE struct {
    pthread_mutex_t lock;
    struct root *items;
    size_t count, capacity;
    /* Scan totals for gctrace: relaxed adds, read at mark termination. */
    _Atomic uint64_t stack_bytes, global_bytes;
} roots = {.lock = PTHREAD_MUTEX_INITIALIZER};

void roots_take_totals(struct root_scan_totals *out)
{
    out->stack_bytes =
        atomic_exchange_explicit(&roots.stack_bytes, 0, memory_order_relaxed);
    out->global_bytes =
        atomic_exchange_explicit(&roots.global_bytes, 0, memory_order_relaxed);
}

static void count_stack(uint64_t bytes)
{
    atomic_fetch_add_explicit(&roots.stack_bytes, bytes, memory_order_relaxed);
}

static void count_globals(uint64_t bytes)
{
    atomic_fetch_add_explicit(&roots.global_bytes, bytes, memory_order_relaxed);
}

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

static int add_root(void *addr, size_t size);

int gc_root_add(void *addr, size_t size)
{
    struct gc_thread *self = threads_enter_library();
    int r = add_root(addr, size);
    threads_leave_library(self);
    return r;
}

/* The root table's lock is one the collector takes: inside cgc's code. */
static int add_root(void *addr, size_t size)
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
    if (mark_in_progress()) {
        /* The registered roots may have been scanned already this cycle,
         * and what the range holds was written without the barrier. */
        struct marker m;
        mark_helper_begin(&m);
        mark_scan_conservative(&m, lo, lo + size);
        mark_helper_end(&m);
    }
    return 0;
}

static int remove_root(void *addr);

int gc_root_remove(void *addr)
{
    struct gc_thread *self = threads_enter_library();
    int r = remove_root(addr);
    threads_leave_library(self);
    return r;
}

static int remove_root(void *addr)
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

/* The parts of a stopped, held or claimed thread's stack, as ranges. `how`
 * is how the caller holds it still, never read from t->state: a thread
 * held in its signal handler flickers through RUNNING whenever someone
 * wakes the suspended threads (preempt.c), and a scan that looked at the
 * state then took a stale range and missed the interrupted registers. */
static uint64_t thread_ranges(struct gc_thread *t, enum thread_state how,
                              void (*fn)(uintptr_t lo, uintptr_t hi,
                                         bool is_stack, void *ctx),
                              void *ctx)
{
    switch (how) {
    case THREAD_SUSPENDED:
        /* The kernel saved its registers on the stack above suspend_sp. */
        fn(t->suspend_sp, t->stack_hi, true, ctx);
        return t->stack_hi - t->suspend_sp;
    case THREAD_BLOCKING:
    case THREAD_CLAIMED: {
        uintptr_t snap = (uintptr_t)t->snapshot;
        fn(snap, snap + t->snapshot_len, true, ctx);
        uintptr_t live = t->blocking_sp + t->snapshot_len;
        if (live < t->stack_hi)
            fn(live, t->stack_hi, true, ctx);
        return t->stack_hi - t->blocking_sp;
    }
    case THREAD_PARKED:
        fn(t->parked_sp, t->stack_hi, true, ctx);
        return t->stack_hi - t->parked_sp;
    case THREAD_RUNNING:
        break;
    }
    report_fatal("internal error: scanning the stack of thread %d, "
                 "which is not stopped",
                 (int)t->tid);
}

static void grey_range(uintptr_t lo, uintptr_t hi, bool is_stack, void *ctx)
{
    (void)is_stack;
    mark_scan_conservative(ctx, lo, hi);
}

void roots_scan_thread(struct marker *m, struct gc_thread *t,
                       enum thread_state how)
{
    count_stack(thread_ranges(t, how, grey_range, m));
    count_globals(globals_scan_tls(m, &t->tls));
}

void roots_for_each_range(void (*fn)(uintptr_t lo, uintptr_t hi, bool is_stack,
                                     void *ctx),
                          void *ctx)
{
    for (struct gc_thread *t = threads_first(); t; t = t->next) {
        thread_ranges(t, (enum thread_state)t->stopped_as, fn, ctx);
        globals_for_each_tls_range(&t->tls, fn, ctx);
    }
    pthread_mutex_lock(&roots.lock);
    for (size_t i = 0; i < roots.count; i++)
        fn(roots.items[i].lo, roots.items[i].hi, false, ctx);
    pthread_mutex_unlock(&roots.lock);
    globals_for_each_range(fn, ctx);
}

CGC_NOINLINE void roots_scan_own_stack(struct gc_thread *t)
{
    /* Spill callee-saved registers into this frame, which the scan covers. */
    __builtin_unwind_init();
    uintptr_t sp = threads_stack_pointer();
    struct marker m;
    mark_helper_begin(&m);
    mark_scan_conservative(&m, sp, t->stack_hi);
    count_globals(globals_scan_tls(&m, &t->tls));
    mark_helper_end(&m);
    count_stack(t->stack_hi - sp);
}

void roots_scan_registered(struct marker *m)
{
    pthread_mutex_lock(&roots.lock);
    uint64_t bytes = 0;
    for (size_t i = 0; i < roots.count; i++) {
        mark_scan_roots(m, roots.items[i].lo, roots.items[i].hi);
        bytes += roots.items[i].hi - roots.items[i].lo;
    }
    pthread_mutex_unlock(&roots.lock);
    bytes += globals_scan(m); /* outside roots.lock: it may take a while */
    count_globals(bytes);
    finalize_scan_roots(m); /* what finalizable objects reference */
    weak_scan_roots(m);     /* the handles of weak pointers */
}

void roots_scan_all_stopped(struct marker *m)
{
    for (struct gc_thread *t = threads_first(); t; t = t->next)
        roots_scan_thread(m, t, (enum thread_state)t->stopped_as);
    roots_scan_registered(m);
}

void roots_fork(enum fork_phase phase)
{
    fork_mutex(&roots.lock, phase);
}
