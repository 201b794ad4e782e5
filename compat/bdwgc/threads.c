/*
 * threads.c — bdwgc's thread API: GC_pthread_create and the other calls
 * that GC_THREADS redirects, thread registration, blocking regions, the
 * fork entry points.
 *
 * cgc already attaches a thread at its first allocation, detaches it at
 * exit and stops any attached thread by signal, so most of this maps
 * directly. What GC_pthread_create adds, as bdwgc's does:
 *   - the new thread is attached before its start routine runs (it may
 *     only read GC objects) and detached by a cleanup handler when the
 *     routine returns, calls GC_pthread_exit or is cancelled;
 *   - the start argument stays reachable until the new thread holds it,
 *     and the result until GC_pthread_join returns it: both live in the
 *     thread's record, an uncollectable object (a root), so the parent
 *     does not wait for the child to start.
 *
 * Records (struct started_thread) are linked in `started`; the list and
 * the fields marked so are under started_lock. A record is freed by the
 * last of three events, whichever it is, under started_lock: the parent's
 * return from pthread_create (`created`), the thread's end (`finished`),
 * and its detachment (`detached`: pthread_detach or a detached attribute)
 * or join (which frees it at once: the thread has ended). A thread joined
 * with the real pthread_join leaves its record behind; a later record for
 * the same pthread_t drops it (an id is reused only after the thread was
 * joined or detached).
 *
 * blocking_depth counts the calling thread's nesting of GC_do_blocking and
 * self_record is the calling thread's record: thread-local, so only their
 * owner reads and writes them.
 */
#define _GNU_SOURCE
#define CGC_BDWGC_BUILD
#include "bdwgc.h"

#include "preempt.h"
#include "report.h"
#include "threads.h"

#include <cgc.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

static __thread int blocking_depth;
static __thread struct started_thread *self_record;
static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;
/* Recorded for the program's sake only (see gc.h); relaxed: nothing is
 * ordered by it. */
static atomic_int handle_fork = 1;

/* ---- registration -------------------------------------------------------- */

static void attach_or_die(const char *call)
{
    if (gc_thread_attach() != 0)
        report_fatal("%s: cannot register the thread (out of memory, or "
                     "its stack bounds are unknown)",
                     call);
}

int GC_register_my_thread(const struct GC_stack_base *sb)
{
    (void)sb; /* cgc reads the stack bounds itself */
    bdwgc_ensure_init();
    if (thread_current())
        return GC_DUPLICATE;
    attach_or_die("GC_register_my_thread");
    return GC_SUCCESS;
}

int GC_unregister_my_thread(void)
{
    if (blocking_depth > 0)
        report_fatal("GC_unregister_my_thread: called inside GC_do_blocking; "
                     "unregister after it returns");
    gc_thread_detach();
    return GC_SUCCESS;
}

int GC_thread_is_registered(void)
{
    return thread_current() != NULL;
}

void GC_allow_register_threads(void)
{
    bdwgc_ensure_init();
}

int GC_get_stack_base(struct GC_stack_base *sb)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return GC_UNIMPLEMENTED;
    int rc = pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return GC_UNIMPLEMENTED;
    sb->mem_base = (char *)addr + size;
    return GC_SUCCESS;
}

void *GC_call_with_stack_base(GC_stack_base_func fn, void *arg)
{
    struct GC_stack_base sb;
    if (GC_get_stack_base(&sb) != GC_SUCCESS)
        sb.mem_base = __builtin_frame_address(0); /* a bound that holds */
    return fn(&sb, arg);
}

/* ---- blocking regions ---------------------------------------------------- */

void *GC_do_blocking(GC_fn_type fn, void *client_data)
{
    bdwgc_ensure_init();
    if (blocking_depth > 0)
        return fn(client_data);
    gc_blocking_begin();
    blocking_depth = 1;
    void *result = fn(client_data);
    blocking_depth = 0;
    gc_blocking_end();
    return result;
}

void *GC_call_with_gc_active(GC_fn_type fn, void *client_data)
{
    if (blocking_depth == 0)
        return fn(client_data);
    int depth = blocking_depth;
    blocking_depth = 0;
    gc_blocking_end();
    void *result = fn(client_data);
    gc_blocking_begin();
    blocking_depth = depth;
    return result;
}

void *GC_call_with_alloc_lock(GC_fn_type fn, void *client_data)
{
    pthread_mutex_lock(&alloc_lock);
    void *result = fn(client_data);
    pthread_mutex_unlock(&alloc_lock);
    return result;
}

void *GC_dlopen(const char *path, int mode)
{
    bdwgc_ensure_init();
    return dlopen(path, mode);
}

void GC_set_handle_fork(int value)
{
    atomic_store_explicit(&handle_fork, value, memory_order_relaxed);
}

/* cgc's own pthread_atfork handlers (src/fork.c) run inside every fork():
 * taking their locks again here would deadlock, so these do nothing. */
void GC_atfork_prepare(void)
{
    bdwgc_ensure_init();
}

void GC_atfork_parent(void)
{
}

void GC_atfork_child(void)
{
}

/* ---- the redirected pthread calls ---------------------------------------- */

/* One per thread made by GC_pthread_create; an uncollectable object. */
struct started_thread {
    struct started_thread *next, *prev; /* started_lock */
    void *(*start)(void *);             /* written before pthread_create */
    /* GC_WRITE: the parent stores it before pthread_create, the child
     * clears it once the value is on its own (scanned) stack. */
    void *arg;
    /* The start routine's or GC_pthread_exit's value, kept until join:
     * written by the thread (GC_WRITE) before it sets finished. */
    void *result;
    pthread_t id;                     /* started_lock, valid once created */
    bool created, finished, detached; /* started_lock */
};

static pthread_mutex_t started_lock = PTHREAD_MUTEX_INITIALIZER;
static struct started_thread *started; /* started_lock */

static void unlink_locked(struct started_thread *r)
{
    if (r->prev)
        GC_WRITE(r->prev->next, r->next);
    else
        started = r->next;
    if (r->next)
        GC_WRITE(r->next->prev, r->prev);
}

/* Unlink r if nothing needs it any more; true if the caller must free it
 * (after started_lock is released: freeing takes the table's lock). */
static bool unlink_if_done_locked(struct started_thread *r)
{
    if (!(r->created && r->finished && r->detached))
        return false;
    unlink_locked(r);
    return true;
}

static struct started_thread *find_locked(pthread_t id)
{
    for (struct started_thread *r = started; r; r = r->next)
        if (r->created && pthread_equal(r->id, id))
            return r;
    return NULL;
}

/* The cleanup handler of every thread GC_pthread_create made. */
static void thread_end(void *p)
{
    struct started_thread *r = p;
    self_record = NULL;
    if (blocking_depth > 0) { /* cancelled inside GC_do_blocking */
        blocking_depth = 0;
        gc_blocking_end();
    }
    pthread_mutex_lock(&started_lock);
    r->finished = true;
    bool drop = unlink_if_done_locked(r);
    pthread_mutex_unlock(&started_lock);
    if (drop)
        bdwgc_uncollectable_remove(r);
    gc_thread_detach();
}

static void *call_start(struct started_thread *r)
{
    void *arg = r->arg; /* attached: from here on our stack holds it */
    GC_WRITE(r->arg, NULL);
    void *result = r->start(arg);
    GC_WRITE(r->result, result);
    return result;
}

static void *thread_start(void *p)
{
    struct started_thread *r = p;
    /* No cancellation before the cleanup handler is in place (cgc's attach
     * may wait at a cancellation point). */
    int cancel_state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    attach_or_die("GC_pthread_create");
    self_record = r;
    /* In memory, not a register that the unwinding of a cancellation
     * could clobber; nothing needs it scanned: r->result holds it. */
    void *volatile result = NULL;
    pthread_cleanup_push(thread_end, r);
    pthread_setcancelstate(cancel_state, NULL);
    result = call_start(r);
    pthread_cleanup_pop(1);
    return result;
}

int GC_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                      void *(*start)(void *), void *arg)
{
    bdwgc_ensure_init();
    struct started_thread *r =
        bdwgc_uncollectable_alloc(sizeof *r, false); /* zeroed */
    if (!r)
        return EAGAIN;
    int detach_state = PTHREAD_CREATE_JOINABLE;
    if (attr && pthread_attr_getdetachstate(attr, &detach_state) != 0)
        detach_state = PTHREAD_CREATE_JOINABLE;
    r->start = start;
    GC_WRITE(r->arg, arg);
    r->detached = detach_state == PTHREAD_CREATE_DETACHED;
    pthread_mutex_lock(&started_lock);
    GC_WRITE(r->next, started);
    if (started)
        GC_WRITE(started->prev, r);
    started = r;
    pthread_mutex_unlock(&started_lock);

    pthread_t id;
    int rc = pthread_create(&id, attr, thread_start, r);
    struct started_thread *stale = NULL;
    bool drop = false;
    pthread_mutex_lock(&started_lock);
    if (rc != 0) {
        unlink_locked(r);
        drop = true;
    } else {
        stale = find_locked(id); /* left by a real pthread_join */
        if (stale)
            unlink_locked(stale);
        r->id = id;
        r->created = true;
        drop = unlink_if_done_locked(r);
    }
    pthread_mutex_unlock(&started_lock);
    if (stale)
        bdwgc_uncollectable_remove(stale);
    if (drop)
        bdwgc_uncollectable_remove(r);
    if (rc == 0)
        *thread = id;
    return rc;
}

int GC_pthread_join(pthread_t thread, void **result)
{
    int rc = pthread_join(thread, result);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&started_lock);
    struct started_thread *r = find_locked(thread);
    if (r)
        unlink_locked(r);
    pthread_mutex_unlock(&started_lock);
    if (r)
        bdwgc_uncollectable_remove(r);
    return 0;
}

int GC_pthread_detach(pthread_t thread)
{
    int rc = pthread_detach(thread);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&started_lock);
    struct started_thread *r = find_locked(thread);
    bool drop = false;
    if (r) {
        r->detached = true;
        drop = unlink_if_done_locked(r);
    }
    pthread_mutex_unlock(&started_lock);
    if (drop)
        bdwgc_uncollectable_remove(r);
    return 0;
}

void GC_pthread_exit(void *result)
{
    if (self_record)
        GC_WRITE(self_record->result, result);
    /* Runs thread_end for a thread GC_pthread_create made; cgc detaches
     * any other attached thread as it exits. */
    pthread_exit(result);
}

int GC_pthread_cancel(pthread_t thread)
{
    return pthread_cancel(thread);
}

int GC_pthread_sigmask(int how, const sigset_t *set, sigset_t *oset)
{
    bdwgc_ensure_init();
    if (!set || how == SIG_UNBLOCK || !preempt_enabled())
        return pthread_sigmask(how, set, oset);
    sigset_t allowed = *set;
    sigdelset(&allowed, preempt_signal_number());
    return pthread_sigmask(how, &allowed, oset);
}
