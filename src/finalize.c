/*
 * finalize.c — finalizer records, the ready queue and the finalizer thread
 * (see finalize.h for how they meet marking and sweeping).
 *
 * Threads: gc_set_finalizer runs on any attached thread; sweeping on
 * whichever thread claimed the span (with the world running: sweeps never
 * overlap marking); the root scan on the collector (concurrent mode: world
 * running; stop-the-world mode: world stopped, and no mutator holds the
 * lock then, since every holder is inside cgc's code); finalizers run on
 * the finalizer thread or in gc_run_finalizers, outside the lock.
 *
 * A record leaves the ready queue, which is a root, when its finalizer is
 * about to run: the object then lives in the runner's local variable. If a
 * mark is under way, the runner's stack may already have been scanned, so
 * the object is shaded through the write barrier as it moves.
 */
#define _GNU_SOURCE
#include "finalize.h"

#include "fork.h"
#include "gc.h"
#include "heap.h"
#include "mark.h"
#include "os.h"
#include "report.h"
#include "threads.h"

#include <cgc.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

/* A finalizer, or a cleanup when `cleanup` is set. */
struct finalizer {
    struct finalizer *next; /* in its span's list, or in the ready queue */
    struct finalizer *all_next, *all_prev; /* registered, not yet ready */
    uintptr_t obj;
    gc_finalizer_fn fn;
    void *data;
    gc_cleanup_fn cleanup;     /* runs cleanup(data), never sees obj */
    bool reported;             /* gccheckmark said its arg reaches obj */
    struct gc_cleanup *handle; /* the cleanup's handle */
};

/* A cleanup's handle: a pointer-free GC object, kept alive (a root) while
 * its record exists, then as long as the program holds it. Its fields are
 * under the lock. */
enum { CLEANUP_PENDING, CLEANUP_RAN, CLEANUP_CANCELLED };
struct gc_cleanup {
    int state;
    struct finalizer *record;
};

static CGC_STATE struct {
    pthread_mutex_t lock;
    pthread_cond_t ready_cond; /* the finalizer thread waits here */
    struct finalizer *all;     /* every registered record */
    struct finalizer *ready, *ready_tail;
    _Atomic int mode; /* written under the lock, read without it too */
    bool runner_running, stop;
    pthread_t runner;
    /* Statistics: relaxed, read by gc_read_stats. */
    _Atomic uint64_t queued, run, cleanups_queued, cleanups_run;
    /* Records on the ready queue: written under the lock, read without it
     * (relaxed) by finalize_ready, for which a stale value only delays a
     * run to the caller's next look. */
    _Atomic uint64_t ready_count;
} fin = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .ready_cond = PTHREAD_COND_INITIALIZER,
};

static uint32_t slot_of(const struct span *s, uintptr_t obj)
{
    return s->nelems == 1 ? 0 : span_object_index(s, obj - s->base);
}

static void unlink_all_locked(struct finalizer *f)
{
    if (f->all_prev)
        f->all_prev->all_next = f->all_next;
    else
        fin.all = f->all_next;
    if (f->all_next)
        f->all_next->all_prev = f->all_prev;
}

/* ---- the finalizer thread -------------------------------------------------
 */

/* Pop the oldest ready finalizer and run it on this thread. */
static bool run_one(struct gc_thread *self)
{
    threads_library_enter(self);
    pthread_mutex_lock(&fin.lock);
    struct finalizer *f;
    for (;;) {
        f = fin.ready;
        if (f) {
            fin.ready = f->next;
            if (!fin.ready)
                fin.ready_tail = NULL;
            atomic_store_explicit(
                &fin.ready_count,
                atomic_load_explicit(&fin.ready_count, memory_order_relaxed) -
                    1,
                memory_order_relaxed);
        }
        if (!f || !f->cleanup)
            break;
        if (f->handle->state != CLEANUP_CANCELLED) {
            f->handle->state = CLEANUP_RAN;
            break;
        }
        free(f); /* cancelled while queued */
    }
    pthread_mutex_unlock(&fin.lock);
    if (!f) {
        threads_library_leave(self);
        return false;
    }
    if (f->cleanup) {
        gc_cleanup_fn cleanup = f->cleanup;
        void *arg = f->data;
        free(f);
        threads_library_leave(self);
        cleanup(arg);
        atomic_fetch_add_explicit(&fin.cleanups_run, 1, memory_order_relaxed);
        return true;
    }
    void *obj = NULL;
    GC_WRITE(obj, (void *)f->obj); /* it left a root: shade it (file top) */
    gc_finalizer_fn fn = f->fn;
    void *data = f->data;
    free(f);
    threads_library_leave(self);
    fn(obj, data);
    gc_keep_alive(obj);
    atomic_fetch_add_explicit(&fin.run, 1, memory_order_relaxed);
    return true;
}

/* Read without the lock: every cgc lock a mutator takes outside a
 * blocking region must be taken inside cgc's code, where no preemption
 * signal stops it (the collector may need the lock while the world is
 * stopped). A stale mode only delays the thread to its next wake-up. */
static enum gc_finalizer_mode fin_mode(void)
{
    return (enum gc_finalizer_mode)atomic_load_explicit(&fin.mode,
                                                        memory_order_relaxed);
}

static void *runner_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "cgc-finalizer");
    struct gc_thread *self = thread_current_or_attach();
    if (!self) {
        report_warning("gc_set_finalizer: the finalizer thread cannot "
                       "attach; finalizers run only in gc_run_finalizers");
        return NULL;
    }
    for (;;) {
        /* In on-demand mode the thread stays but runs nothing. */
        while (fin_mode() == GC_FINALIZE_THREAD && run_one(self))
            ;
        gc_blocking_begin();
        pthread_mutex_lock(&fin.lock);
        while ((!fin.ready ||
                atomic_load_explicit(&fin.mode, memory_order_relaxed) !=
                    GC_FINALIZE_THREAD) &&
               !fin.stop)
            pthread_cond_wait(&fin.ready_cond, &fin.lock);
        bool stop = fin.stop;
        pthread_mutex_unlock(&fin.lock);
        gc_blocking_end();
        if (stop)
            break;
    }
    gc_thread_detach();
    return NULL;
}

/* Start the finalizer thread if finalizers run on it and it is not
 * running. The lock is held. */
static void ensure_runner_locked(void)
{
    if (atomic_load_explicit(&fin.mode, memory_order_relaxed) !=
            GC_FINALIZE_THREAD ||
        fin.runner_running || fin.stop)
        return;
    if (pthread_create(&fin.runner, NULL, runner_main, NULL)) {
        report_warning("gc_set_finalizer: cannot start the finalizer "
                       "thread; finalizers run only in gc_run_finalizers");
        return;
    }
    fin.runner_running = true;
}

/* ---- the API --------------------------------------------------------------
 */

/* Link a filled-in record into its span's list and the list of all. */
static void register_locked(struct span *s, struct finalizer *f)
{
    f->next = s->finalizers;
    s->finalizers = f;
    atomic_store_explicit(&s->has_finalizers, 1, memory_order_relaxed);
    f->all_prev = NULL;
    f->all_next = fin.all;
    if (fin.all)
        fin.all->all_prev = f;
    fin.all = f;
    ensure_runner_locked();
}

/* Set, replace or remove obj's finalizer. Without `replace`, an existing
 * one is an error (EEXIST); with it, the old one is replaced and returned
 * through old_fn and old_data (NULL when there was none). */
static int set_finalizer(void *obj, gc_finalizer_fn fn, void *data,
                         bool replace, gc_finalizer_fn *old_fn, void **old_data)
{
    uint32_t idx;
    struct span *s = object_lookup((uintptr_t)obj, &idx);
    if (!s || s->base + (uintptr_t)idx * s->elem_size != (uintptr_t)obj) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&fin.lock);
    struct finalizer **at = &s->finalizers;
    while (*at && ((*at)->obj != (uintptr_t)obj || (*at)->cleanup))
        at = &(*at)->next;
    struct finalizer *f = *at;
    if (old_fn) {
        *old_fn = f ? f->fn : NULL;
        *old_data = f ? f->data : NULL;
    }
    if (!fn) { /* remove, if there is one */
        if (f) {
            *at = f->next;
            unlink_all_locked(f);
            free(f);
        }
        pthread_mutex_unlock(&fin.lock);
        return 0;
    }
    if (f) {
        if (replace) {
            f->fn = fn;
            f->data = data;
            pthread_mutex_unlock(&fin.lock);
            return 0;
        }
        pthread_mutex_unlock(&fin.lock);
        errno = EEXIST;
        return -1;
    }
    f = malloc(sizeof *f);
    if (!f) {
        pthread_mutex_unlock(&fin.lock);
        errno = ENOMEM;
        return -1;
    }
    *f = (struct finalizer){.obj = (uintptr_t)obj, .fn = fn, .data = data};
    register_locked(s, f);
    pthread_mutex_unlock(&fin.lock);
    return 0;
}

int gc_set_finalizer(void *obj, gc_finalizer_fn fn, void *data)
{
    if (!obj || !gc_initialized()) {
        errno = EINVAL;
        return -1;
    }
    struct gc_thread *self = threads_enter_library();
    int r = set_finalizer(obj, fn, data, false, NULL, NULL);
    threads_leave_library(self);
    return r;
}

int finalize_replace(void *obj, gc_finalizer_fn fn, void *data,
                     gc_finalizer_fn *old_fn, void **old_data)
{
    *old_fn = NULL;
    *old_data = NULL;
    if (!obj || !gc_initialized()) {
        errno = EINVAL;
        return -1;
    }
    struct gc_thread *self = threads_enter_library();
    int r = set_finalizer(obj, fn, data, true, old_fn, old_data);
    threads_leave_library(self);
    return r;
}

bool finalize_ready(void)
{
    return atomic_load_explicit(&fin.ready_count, memory_order_relaxed) != 0;
}

static gc_cleanup *add_cleanup(void *obj, gc_cleanup_fn fn, void *arg)
{
    uint32_t idx;
    struct span *s = object_lookup((uintptr_t)obj, &idx);
    uintptr_t start = s ? s->base + (uintptr_t)idx * s->elem_size : 0;
    if (!s || start != (uintptr_t)obj ||
        ((uintptr_t)arg >= start && (uintptr_t)arg < start + s->elem_size)) {
        /* not an object's start; or arg points into it, which would keep
         * it alive for ever (arg is kept alive for the cleanup) */
        errno = EINVAL;
        return NULL;
    }
    /* Allocate outside the lock: allocation may run a collection. */
    struct gc_cleanup *c = gc_alloc_noscan(sizeof *c);
    struct finalizer *f = malloc(sizeof *f);
    if (!c || !f) {
        free(f);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&fin.lock);
    *c = (struct gc_cleanup){.state = CLEANUP_PENDING, .record = f};
    *f = (struct finalizer){
        .obj = (uintptr_t)obj, .data = arg, .cleanup = fn, .handle = c};
    register_locked(s, f);
    pthread_mutex_unlock(&fin.lock);
    return c;
}

gc_cleanup *gc_add_cleanup(void *obj, gc_cleanup_fn fn, void *arg)
{
    if (!obj || !fn || !gc_initialized()) {
        errno = EINVAL;
        return NULL;
    }
    struct gc_thread *self = threads_enter_library();
    gc_cleanup *c = add_cleanup(obj, fn, arg);
    threads_leave_library(self);
    return c;
}

static int cancel_cleanup(gc_cleanup *c)
{
    pthread_mutex_lock(&fin.lock);
    if (c->state != CLEANUP_PENDING) {
        pthread_mutex_unlock(&fin.lock);
        errno = ENOENT;
        return -1;
    }
    c->state = CLEANUP_CANCELLED;
    struct finalizer *f = c->record;
    struct span *s = span_lookup(f->obj);
    struct finalizer **at = s ? &s->finalizers : NULL;
    while (at && *at && *at != f)
        at = &(*at)->next;
    if (at && *at) { /* still registered: drop it now */
        *at = f->next;
        unlink_all_locked(f);
        free(f);
    } /* else queued: the runner skips and frees it */
    pthread_mutex_unlock(&fin.lock);
    return 0;
}

int gc_cleanup_cancel(gc_cleanup *c)
{
    if (!c || !gc_initialized()) {
        errno = EINVAL;
        return -1;
    }
    struct gc_thread *self = threads_enter_library();
    int r = cancel_cleanup(c);
    threads_leave_library(self);
    return r;
}

bool finalize_has_finalizer(uintptr_t obj)
{
    struct span *s = span_lookup(obj);
    if (!s || !atomic_load_explicit(&s->has_finalizers, memory_order_relaxed))
        return false;
    pthread_mutex_lock(&fin.lock);
    struct finalizer *f = s->finalizers;
    while (f && (f->obj != obj || f->cleanup))
        f = f->next;
    pthread_mutex_unlock(&fin.lock);
    return f != NULL;
}

void gc_set_finalizer_mode(enum gc_finalizer_mode mode)
{
    if (mode != GC_FINALIZE_THREAD && mode != GC_FINALIZE_ON_DEMAND)
        report_fatal("gc_set_finalizer_mode: %d is not GC_FINALIZE_THREAD "
                     "or GC_FINALIZE_ON_DEMAND",
                     (int)mode);
    gc_init();
    struct gc_thread *self = threads_enter_library();
    pthread_mutex_lock(&fin.lock);
    atomic_store_explicit(&fin.mode, (int)mode, memory_order_relaxed);
    if (fin.all || fin.ready)
        ensure_runner_locked();
    pthread_cond_signal(&fin.ready_cond); /* the thread may run them now */
    pthread_mutex_unlock(&fin.lock);
    threads_leave_library(self);
}

size_t gc_run_finalizers(void)
{
    struct gc_thread *self = thread_current_or_attach();
    if (!self)
        return 0;
    size_t n = 0;
    while (run_one(self))
        n++;
    return n;
}

CGC_NOINLINE void gc_keep_alive(const void *p)
{
    /* The pointer is an input of this opaque statement: the caller must
     * hold it until the call, and a conservative scan sees it meanwhile. */
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* ---- marking and sweeping ------------------------------------------------
 */

void finalize_scan_roots(struct marker *m)
{
    pthread_mutex_lock(&fin.lock);
    for (struct finalizer *f = fin.all; f; f = f->all_next) {
        if (f->cleanup) { /* keeps its arg and handle, not its object */
            mark_grey(m, (uintptr_t)f->data);
            mark_grey(m, (uintptr_t)f->handle);
        } else {
            mark_scan_contents(m, f->obj);
        }
    }
    for (struct finalizer *f = fin.ready; f; f = f->next) {
        if (f->cleanup) {
            mark_grey(m, (uintptr_t)f->data);
            mark_grey(m, (uintptr_t)f->handle);
        } else {
            mark_grey(m, f->obj);
        }
    }
    pthread_mutex_unlock(&fin.lock);
}

static void enqueue_locked(struct finalizer *f)
{
    atomic_store_explicit(
        &fin.ready_count,
        atomic_load_explicit(&fin.ready_count, memory_order_relaxed) + 1,
        memory_order_relaxed);
    f->next = NULL;
    if (fin.ready_tail)
        fin.ready_tail->next = f;
    else
        fin.ready = f;
    fin.ready_tail = f;
}

/* One pass over the span's records of one sort (finalizers first, so that
 * an object a finalizer keeps is not cleaned up yet). Returns whether one
 * was queued. */
static bool sweep_records_locked(struct span *s, bool cleanups)
{
    bool queued = false;
    struct finalizer **at = &s->finalizers;
    while (*at) {
        struct finalizer *f = *at;
        uint32_t idx = slot_of(s, f->obj);
        bool freed = span_slot_freed(s, idx);
        if (!f->cleanup != !cleanups ||
            (!freed && bitmap_test(s->mark_bits, idx))) {
            at = &f->next; /* the other sort, or still reachable */
            continue;
        }
        *at = f->next;
        unlink_all_locked(f);
        if (cleanups) { /* the object is gone, freed or not: run it */
            enqueue_locked(f);
            atomic_fetch_add_explicit(&fin.cleanups_queued, 1,
                                      memory_order_relaxed);
            queued = true;
            continue;
        }
        if (freed) { /* gc_free'd: no finalizer */
            free(f);
            continue;
        }
        /* Found unreachable: keep it (and, through the root scan, what it
         * references) until its finalizer has run. */
        atomic_fetch_or_explicit(&s->mark_bits[idx / 64],
                                 (uint64_t)1 << (idx % 64),
                                 memory_order_relaxed);
        enqueue_locked(f);
        atomic_fetch_add_explicit(&fin.queued, 1, memory_order_relaxed);
        queued = true;
    }
    return queued;
}

void finalize_sweep_span(struct span *s)
{
    pthread_mutex_lock(&fin.lock);
    bool queued = sweep_records_locked(s, false);
    queued |= sweep_records_locked(s, true);
    if (queued) {
        ensure_runner_locked();
        pthread_cond_signal(&fin.ready_cond);
    }
    pthread_mutex_unlock(&fin.lock);
}

void finalize_read_counts(gc_stats *out)
{
    out->finalizers_queued =
        atomic_load_explicit(&fin.queued, memory_order_relaxed);
    out->finalizers_run = atomic_load_explicit(&fin.run, memory_order_relaxed);
    out->cleanups_queued =
        atomic_load_explicit(&fin.cleanups_queued, memory_order_relaxed);
    out->cleanups_run =
        atomic_load_explicit(&fin.cleanups_run, memory_order_relaxed);
}

void finalize_shutdown(void)
{
    pthread_mutex_lock(&fin.lock);
    bool running = fin.runner_running;
    fin.stop = true;
    pthread_cond_broadcast(&fin.ready_cond);
    pthread_mutex_unlock(&fin.lock);
    if (running) {
        struct gc_thread *self = thread_current();
        if (self)
            threads_blocking_begin_internal(self);
        pthread_join(fin.runner, NULL);
        if (self)
            threads_blocking_end_internal(self);
    }
    pthread_mutex_lock(&fin.lock);
    while (fin.all) {
        struct finalizer *f = fin.all;
        fin.all = f->all_next;
        free(f);
    }
    while (fin.ready) {
        struct finalizer *f = fin.ready;
        fin.ready = f->next;
        free(f);
    }
    fin.ready_tail = NULL;
    atomic_store_explicit(&fin.ready_count, 0, memory_order_relaxed);
    fin.runner_running = fin.stop = false;
    pthread_mutex_unlock(&fin.lock);
}

/* The finalizer thread does not exist in a forked child: it is started
 * again when a finalizer is set or becomes ready there. */
void finalize_fork(enum fork_phase phase)
{
    fork_mutex(&fin.lock, phase);
    fork_cond(&fin.ready_cond, phase);
    if (phase == FORK_CHILD)
        fin.runner_running = false;
}

void finalize_check_cleanups(bool (*reaches)(uintptr_t from, uintptr_t to))
{
    pthread_mutex_lock(&fin.lock);
    for (struct finalizer *f = fin.all; f; f = f->all_next) {
        if (!f->cleanup || f->reported || !f->data ||
            !reaches((uintptr_t)f->data, f->obj))
            continue;
        f->reported = true;
        report_warning("gccheckmark: the cleanup of the object %p can never "
                       "run: its arg %p reaches the object, and a cleanup's "
                       "arg is kept alive until it runs (pass an arg that "
                       "does not reference the object)",
                       (void *)f->obj, f->data);
    }
    pthread_mutex_unlock(&fin.lock);
}
