/*
 * ephemeron.c — ephemeron handles, their records and the marker's pass
 * over them (see ephemeron.h). Records are under one lock, taken by
 * gc_ephemeron_new, the marker's pass and the sweep of a span with records;
 * it comes before the weak-pointer and mark locks.
 */
#include "ephemeron.h"

#include "fork.h"
#include "gc.h"
#include "heap.h"
#include "mark.h"
#include "threads.h"
#include "weak.h"

#include <cgc.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct gc_ephemeron {
    gc_weak *key; /* written once, before the handle is published */
    void *value;
};

struct ephemeron_record {
    struct ephemeron_record *next; /* in its span's list */
    struct ephemeron_record *all_next, *all_prev;
    struct gc_ephemeron *e;
};

static CGC_STATE struct {
    pthread_mutex_t lock;
    struct ephemeron_record *all;
    _Atomic bool any; /* relaxed: a hint for the fixpoint passes */
} eph = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool is_marked(uintptr_t p)
{
    uint32_t idx;
    struct span *s = object_lookup(p, &idx);
    return s && bitmap_test(s->mark_bits, idx);
}

static gc_ephemeron *ephemeron_new(void *key, void *value)
{
    gc_weak *w = gc_weak_new(key); /* EINVAL for a non-object key */
    if (!w)
        return NULL;
    struct gc_ephemeron *e = gc_alloc_noscan(sizeof *e);
    struct ephemeron_record *r = malloc(sizeof *r);
    if (!e || !r) {
        free(r);
        errno = ENOMEM;
        return NULL;
    }
    e->key = w;
    e->value = value;
    uint32_t idx;
    struct span *s = object_lookup((uintptr_t)e, &idx);
    pthread_mutex_lock(&eph.lock);
    *r = (struct ephemeron_record){
        .next = s->ephemerons, .all_next = eph.all, .e = e};
    s->ephemerons = r;
    atomic_store_explicit(&s->has_ephemerons, 1, memory_order_relaxed);
    if (eph.all)
        eph.all->all_prev = r;
    eph.all = r;
    atomic_store_explicit(&eph.any, true, memory_order_relaxed);
    pthread_mutex_unlock(&eph.lock);
    /* key, value and the weak handle stay on this frame until here: if a
     * mark runs meanwhile, they were reachable from its snapshot. */
    gc_keep_alive(key);
    gc_keep_alive(value);
    gc_keep_alive(w);
    return e;
}

gc_ephemeron *gc_ephemeron_new(void *key, void *value)
{
    if (!key || !gc_initialized()) {
        errno = EINVAL;
        return NULL;
    }
    struct gc_thread *self = threads_enter_library();
    gc_ephemeron *e = ephemeron_new(key, value);
    threads_leave_library(self);
    return e;
}

void *gc_ephemeron_key(const gc_ephemeron *e)
{
    return e ? gc_weak_get(e->key) : NULL;
}

void *gc_ephemeron_value(const gc_ephemeron *e)
{
    if (!e || !gc_weak_get(e->key))
        return NULL; /* the key died: the value is not the program's */
    void *strong = NULL;
    GC_WRITE(strong, e->value); /* a new strong pointer: shade it */
    return strong;
}

bool ephemerons_exist(void)
{
    return atomic_load_explicit(&eph.any, memory_order_relaxed);
}

void ephemerons_trace(struct marker *m)
{
    pthread_mutex_lock(&eph.lock);
    for (struct ephemeron_record *r = eph.all; r; r = r->all_next) {
        struct gc_ephemeron *e = r->e;
        if (!is_marked((uintptr_t)e))
            continue;                    /* not (yet) reachable itself */
        mark_grey(m, (uintptr_t)e->key); /* its weak handle lives with it */
        uintptr_t key = weak_target(e->key);
        if (key && is_marked(key))
            mark_grey(m, (uintptr_t)e->value);
    }
    pthread_mutex_unlock(&eph.lock);
}

void ephemeron_sweep_span(struct span *s)
{
    pthread_mutex_lock(&eph.lock);
    struct ephemeron_record **at = &s->ephemerons;
    while (*at) {
        struct ephemeron_record *r = *at;
        uint32_t idx = s->nelems == 1
                           ? 0
                           : span_object_index(s, (uintptr_t)r->e - s->base);
        if (!span_slot_freed(s, idx) && bitmap_test(s->mark_bits, idx)) {
            at = &r->next;
            continue;
        }
        *at = r->next;
        if (r->all_prev)
            r->all_prev->all_next = r->all_next;
        else
            eph.all = r->all_next;
        if (r->all_next)
            r->all_next->all_prev = r->all_prev;
        free(r);
    }
    pthread_mutex_unlock(&eph.lock);
}

void ephemeron_shutdown(void)
{
    pthread_mutex_lock(&eph.lock);
    while (eph.all) {
        struct ephemeron_record *r = eph.all;
        eph.all = r->all_next;
        free(r);
    }
    atomic_store_explicit(&eph.any, false, memory_order_relaxed);
    pthread_mutex_unlock(&eph.lock);
}

void ephemeron_fork(enum fork_phase phase)
{
    fork_mutex(&eph.lock, phase);
}
