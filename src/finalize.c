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

struct finalizer {
    struct finalizer *next; /* in its span's list, or in the ready queue */
    struct finalizer *all_next, *all_prev; /* registered, not yet ready */
    uintptr_t obj;
    gc_finalizer_fn fn;
    void *data;
};

static CGC_STATE struct {
    pthread_mutex_t lock;
    pthread_cond_t ready_cond; /* the finalizer thread waits here */
    struct finalizer *all;     /* every registered record */
    struct finalizer *ready, *ready_tail;
    enum gc_finalizer_mode mode;
    bool runner_running, stop;
    pthread_t runner;
    /* Statistics: relaxed, read by gc_read_stats. */
    _Atomic uint64_t queued, run;
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
    struct finalizer *f = fin.ready;
    if (f) {
        fin.ready = f->next;
        if (!fin.ready)
            fin.ready_tail = NULL;
    }
    pthread_mutex_unlock(&fin.lock);
    if (!f) {
        threads_library_leave(self);
        return false;
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
        while (run_one(self))
            ;
        gc_blocking_begin();
        pthread_mutex_lock(&fin.lock);
        while (!fin.ready && !fin.stop)
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
    if (fin.mode != GC_FINALIZE_THREAD || fin.runner_running || fin.stop)
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

static int set_finalizer(void *obj, gc_finalizer_fn fn, void *data)
{
    uint32_t idx;
    struct span *s = object_lookup((uintptr_t)obj, &idx);
    if (!s || s->base + (uintptr_t)idx * s->elem_size != (uintptr_t)obj) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&fin.lock);
    struct finalizer **at = &s->finalizers;
    while (*at && (*at)->obj != (uintptr_t)obj)
        at = &(*at)->next;
    struct finalizer *f = *at;
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
    *f = (struct finalizer){.next = s->finalizers,
                            .all_next = fin.all,
                            .obj = (uintptr_t)obj,
                            .fn = fn,
                            .data = data};
    s->finalizers = f;
    atomic_store_explicit(&s->has_finalizers, 1, memory_order_relaxed);
    if (fin.all)
        fin.all->all_prev = f;
    fin.all = f;
    ensure_runner_locked();
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
    int r = set_finalizer(obj, fn, data);
    threads_leave_library(self);
    return r;
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
    fin.mode = mode;
    if (fin.all || fin.ready)
        ensure_runner_locked();
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
    for (struct finalizer *f = fin.all; f; f = f->all_next)
        mark_scan_contents(m, f->obj);
    for (struct finalizer *f = fin.ready; f; f = f->next)
        mark_grey(m, f->obj);
    pthread_mutex_unlock(&fin.lock);
}

void finalize_sweep_span(struct span *s)
{
    bool queued = false;
    pthread_mutex_lock(&fin.lock);
    struct finalizer **at = &s->finalizers;
    while (*at) {
        struct finalizer *f = *at;
        uint32_t idx = slot_of(s, f->obj);
        bool freed = span_slot_freed(s, idx);
        if (!freed && bitmap_test(s->mark_bits, idx)) {
            at = &f->next; /* still reachable */
            continue;
        }
        *at = f->next;
        unlink_all_locked(f);
        if (freed) { /* gc_free'd: no finalizer */
            free(f);
            continue;
        }
        /* Found unreachable: keep it (and, through the root scan, what it
         * references) until its finalizer has run. */
        atomic_fetch_or_explicit(&s->mark_bits[idx / 64],
                                 (uint64_t)1 << (idx % 64),
                                 memory_order_relaxed);
        f->next = NULL;
        if (fin.ready_tail)
            fin.ready_tail->next = f;
        else
            fin.ready = f;
        fin.ready_tail = f;
        atomic_fetch_add_explicit(&fin.queued, 1, memory_order_relaxed);
        queued = true;
    }
    if (queued) {
        ensure_runner_locked();
        pthread_cond_signal(&fin.ready_cond);
    }
    pthread_mutex_unlock(&fin.lock);
}

void finalize_read_counts(uint64_t *queued, uint64_t *run)
{
    *queued = atomic_load_explicit(&fin.queued, memory_order_relaxed);
    *run = atomic_load_explicit(&fin.run, memory_order_relaxed);
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
