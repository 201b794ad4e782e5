/*
 * threads.c — bdwgc's thread API: GC_pthread_create and the other calls
 * that GC_THREADS redirects, thread registration, blocking regions.
 *
 * cgc already attaches a thread at its first allocation, detaches it at
 * exit and stops any attached thread by signal, so most of this maps
 * directly. What GC_pthread_create adds: the new thread is attached before
 * its start routine runs (it may only read GC objects), and the start
 * argument stays reachable until the new thread holds it — GC_pthread_create
 * waits, in a blocking region, until the child has attached and copied it
 * to its own stack, so that it is always on a scanned stack: the parent's
 * (the start record is on it) or the child's.
 *
 * blocking_depth counts the calling thread's nesting of GC_do_blocking:
 * thread-local, so only its owner reads and writes it.
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
#include <semaphore.h>
#include <signal.h>

static __thread int blocking_depth;
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

/* ---- the redirected pthread calls ---------------------------------------- */

/* On the parent's stack until `taken` is posted. */
struct start_record {
    void *(*start)(void *);
    void *arg;
    sem_t taken;
};

static void *thread_start(void *p)
{
    struct start_record *r = p;
    attach_or_die("GC_pthread_create");
    /* Copied while the parent waits: from here on the child's stack holds
     * arg, and it is scanned. */
    void *(*start)(void *) = r->start;
    void *arg = r->arg;
    sem_post(&r->taken);
    return start(arg);
}

static void wait_taken(struct start_record *r)
{
    gc_blocking_begin(); /* collections go on; this frame is scanned */
    while (sem_wait(&r->taken) != 0)
        ; /* EINTR: the preemption signal or another */
    gc_blocking_end();
}

int GC_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                      void *(*start)(void *), void *arg)
{
    bdwgc_ensure_init();
    attach_or_die("GC_pthread_create"); /* the parent holds arg meanwhile */
    struct start_record r = {.start = start, .arg = arg};
    if (sem_init(&r.taken, 0, 0) != 0)
        return EAGAIN;
    int rc = pthread_create(thread, attr, thread_start, &r);
    if (rc == 0)
        wait_taken(&r);
    sem_destroy(&r.taken);
    return rc;
}

int GC_pthread_join(pthread_t thread, void **result)
{
    return pthread_join(thread, result);
}

int GC_pthread_detach(pthread_t thread)
{
    return pthread_detach(thread);
}

void GC_pthread_exit(void *result)
{
    pthread_exit(result); /* cgc detaches the thread as it exits */
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
