/*
 * weak.c — weak-pointer handles and their records (see weak.h).
 *
 * Records and span lists are under one lock, taken by gc_weak_new, by the
 * sweep of a span with records and by the root scan; gc_weak_get takes no
 * lock. The lock comes before the mark lock.
 */
#include "weak.h"

#include "fork.h"
#include "gc.h"
#include "heap.h"
#include "mark.h"
#include "sweep.h"
#include "threads.h"

#include <cgc.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

struct gc_weak {
    /* The object, or 0 once it was found unreachable. Cleared by the
     * sweeper with release; read with acquire. */
    _Atomic uintptr_t obj;
};

struct weak_record {
    struct weak_record *next; /* in its span's list */
    struct weak_record *all_next, *all_prev;
    uintptr_t obj;
    struct gc_weak *handle;
};

static CGC_STATE struct {
    pthread_mutex_t lock;
    struct weak_record *all;
    _Atomic uint64_t cleared; /* statistics: relaxed */
} weak = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint32_t slot_of(const struct span *s, uintptr_t obj)
{
    return s->nelems == 1 ? 0 : span_object_index(s, obj - s->base);
}

static struct weak_record *find_locked(struct span *s, uintptr_t obj)
{
    struct weak_record *r = s->weaks;
    while (r && r->obj != obj)
        r = r->next;
    return r;
}

static gc_weak *weak_new(void *obj)
{
    uint32_t idx;
    struct span *s = object_lookup((uintptr_t)obj, &idx);
    if (!s || s->base + (uintptr_t)idx * s->elem_size != (uintptr_t)obj) {
        errno = EINVAL;
        return NULL;
    }
    pthread_mutex_lock(&weak.lock);
    struct weak_record *r = find_locked(s, (uintptr_t)obj);
    pthread_mutex_unlock(&weak.lock);
    if (r)
        return r->handle;
    /* Allocate outside the lock (allocation may run a collection, whose
     * root scan takes it); the caller keeps obj alive meanwhile. */
    struct gc_weak *h = gc_alloc_noscan(sizeof *h);
    struct weak_record *fresh = malloc(sizeof *fresh);
    if (!h || !fresh) {
        free(fresh);
        errno = ENOMEM;
        return NULL;
    }
    atomic_store_explicit(&h->obj, (uintptr_t)obj, memory_order_relaxed);
    pthread_mutex_lock(&weak.lock);
    r = find_locked(s, (uintptr_t)obj); /* another thread may have won */
    if (r) {
        pthread_mutex_unlock(&weak.lock);
        free(fresh);
        return r->handle; /* h is garbage */
    }
    *fresh = (struct weak_record){.next = s->weaks,
                                  .all_next = weak.all,
                                  .obj = (uintptr_t)obj,
                                  .handle = h};
    s->weaks = fresh;
    atomic_store_explicit(&s->has_weaks, 1, memory_order_relaxed);
    if (weak.all)
        weak.all->all_prev = fresh;
    weak.all = fresh;
    pthread_mutex_unlock(&weak.lock);
    return h;
}

gc_weak *gc_weak_new(void *obj)
{
    if (!obj || !gc_initialized()) {
        errno = EINVAL;
        return NULL;
    }
    struct gc_thread *self = threads_enter_library();
    gc_weak *h = weak_new(obj);
    threads_leave_library(self);
    return h;
}

/* Whether the object of a non-cleared handle is still alive (see weak.h);
 * false once it was found unreachable, even before its span is swept. */
static bool still_alive(const gc_weak *w, uintptr_t obj)
{
    for (;;) {
        struct span *s = span_lookup(obj);
        if (!s)
            return false; /* cannot be: a live record keeps its span */
        uint32_t current = sweep_current_generation();
        uint32_t seen =
            atomic_load_explicit(&s->sweepgen, memory_order_acquire);
        if (seen == current) /* swept: a dead object's handle is cleared */
            return atomic_load_explicit(&w->obj, memory_order_acquire) == obj;
        if (seen == current - 1) { /* being swept: wait for it */
            sched_yield();
            continue;
        }
        uint32_t idx = slot_of(s, obj);
        bool marked = (atomic_load_explicit(&s->mark_bits[idx / 64],
                                            memory_order_acquire) >>
                       (idx % 64)) &
                      1;
        if (atomic_load_explicit(&s->sweepgen, memory_order_acquire) != seen)
            continue; /* its sweep began: look again */
        return marked;
    }
}

void *gc_weak_get(const gc_weak *w)
{
    if (!w)
        return NULL;
    uintptr_t obj = atomic_load_explicit(&w->obj, memory_order_acquire);
    if (!obj)
        return NULL;
    /* Inside cgc: no stop-the-world (and so no flip of the sweep
     * generation) happens in the middle of the test. */
    struct gc_thread *self = threads_enter_library();
    void *result = NULL;
    if (still_alive(w, obj)) {
        result = (void *)obj;
        void *strong = NULL;
        GC_WRITE(strong, result); /* a new strong pointer: shade it */
        (void)strong;
    }
    threads_leave_library(self);
    return result;
}

/* ---- marking and sweeping ------------------------------------------------
 */

void weak_scan_roots(struct marker *m)
{
    pthread_mutex_lock(&weak.lock);
    for (struct weak_record *r = weak.all; r; r = r->all_next)
        mark_grey(m, (uintptr_t)r->handle);
    pthread_mutex_unlock(&weak.lock);
}

void weak_sweep_span(struct span *s)
{
    pthread_mutex_lock(&weak.lock);
    struct weak_record **at = &s->weaks;
    while (*at) {
        struct weak_record *r = *at;
        uint32_t idx = slot_of(s, r->obj);
        if (!span_slot_freed(s, idx) && bitmap_test(s->mark_bits, idx)) {
            at = &r->next;
            continue;
        }
        atomic_store_explicit(&r->handle->obj, 0, memory_order_release);
        *at = r->next;
        if (r->all_prev)
            r->all_prev->all_next = r->all_next;
        else
            weak.all = r->all_next;
        if (r->all_next)
            r->all_next->all_prev = r->all_prev;
        free(r);
        atomic_fetch_add_explicit(&weak.cleared, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&weak.lock);
}

uintptr_t weak_target(const struct gc_weak *w)
{
    return atomic_load_explicit(&w->obj, memory_order_acquire);
}

uint64_t weak_cleared_count(void)
{
    return atomic_load_explicit(&weak.cleared, memory_order_relaxed);
}

/* ---- the Boehm layer's hook (see weak.h) ---------------------------------
 */

/* Set once by the layer's initialisation, read by the collector thread:
 * release/acquire. */
static void (*_Atomic mark_done_hook)(void);

void weak_set_mark_done_hook(void (*fn)(void))
{
    atomic_store_explicit(&mark_done_hook, fn, memory_order_release);
}

void weak_run_mark_done_hook(void)
{
    void (*fn)(void) =
        atomic_load_explicit(&mark_done_hook, memory_order_acquire);
    if (fn)
        fn();
}

enum weak_liveness weak_liveness_stopped(uintptr_t p, uintptr_t *base)
{
    if (!span_lookup(p))
        return WEAK_NOT_HEAP;
    uint32_t idx;
    struct span *s = object_lookup(p, &idx);
    if (!s)
        return WEAK_FREE;
    *base = s->base + (uintptr_t)idx * s->elem_size;
    /* World stopped, marking over: the mark bits are final (relaxed
     * loads; the stop is the synchronisation). */
    return bitmap_test(s->mark_bits, idx) ? WEAK_MARKED : WEAK_UNMARKED;
}

void weak_shutdown(void)
{
    pthread_mutex_lock(&weak.lock);
    while (weak.all) {
        struct weak_record *r = weak.all;
        weak.all = r->all_next;
        free(r);
    }
    pthread_mutex_unlock(&weak.lock);
}

void weak_fork(enum fork_phase phase)
{
    fork_mutex(&weak.lock, phase);
}
