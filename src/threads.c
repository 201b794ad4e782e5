/*
 * threads.c — attach/detach, safepoints, blocking regions, stop-the-world.
 *
 * The handshake (see threads.h for the states): the collector sets
 * gc_internal_safepoint_requested and then reads each thread's state; a
 * thread entering or leaving a blocking region writes its state and then
 * reads the flag. Both sides use seq_cst, so at least one of them sees the
 * other's write: either the collector sees the thread stopped, or the thread
 * sees the request and parks (or goes back to BLOCKING). Parking and waking
 * go through world_lock and two condition variables.
 */
#define _GNU_SOURCE
#include "threads.h"

#include "barrier.h"
#include "fork.h"
#include "gc.h"
#include "os.h"
#include "preempt.h"
#include "report.h"
#include "stats.h"
#include "thread_role.h"

#include <cgc.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

CGC_STATE atomic_int gc_internal_safepoint_requested;

static bool stop_requested(void)
{
    return atomic_load_explicit(&gc_internal_safepoint_requested,
                                memory_order_seq_cst) &
           SAFEPOINT_STOP;
}

/* Whether a parked or blocked thread must stay put: the world is stopped,
 * or a fork is under way (it may be inside cgc's code). */
static bool held_in_place(void)
{
    return atomic_load_explicit(&gc_internal_safepoint_requested,
                                memory_order_seq_cst) &
           (SAFEPOINT_STOP | SAFEPOINT_FORK);
}

__thread struct gc_thread *thread_current_record
    __attribute__((tls_model("initial-exec")));
#define current_thread thread_current_record
static __thread bool thread_is_internal;
static CGC_STATE pthread_key_t exit_key;

void thread_role_set_internal(void)
{
    thread_is_internal = true;
}

bool thread_role_is_internal(void)
{
    return thread_is_internal;
}
static CGC_STATE pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static CGC_STATE struct {
    pthread_mutex_t registry_lock;
    struct gc_thread *head;
    size_t count;
    pthread_mutex_t world_lock;
    pthread_cond_t world_resumed; /* parked threads wait here */
} threads = {
    .registry_lock = PTHREAD_MUTEX_INITIALIZER,
    .world_lock = PTHREAD_MUTEX_INITIALIZER,
    .world_resumed = PTHREAD_COND_INITIALIZER,
};

static void detach(struct gc_thread *t);

static void on_thread_exit(void *arg)
{
    struct gc_thread *t = arg;
    if (t && t == current_thread)
        detach(t);
}

static void create_exit_key(void)
{
    if (pthread_key_create(&exit_key, on_thread_exit))
        report_fatal("gc_thread_attach: cannot create a thread-exit key");
}

int threads_init(void)
{
    pthread_once(&exit_key_once, create_exit_key);
    atomic_store(&gc_internal_safepoint_requested, 0);
    return 0;
}

CGC_NOINLINE uintptr_t threads_stack_pointer(void)
{
    volatile char here = 0;
    return (uintptr_t)&here & ~(uintptr_t)15;
}

static int stack_bounds(uintptr_t *lo, uintptr_t *hi)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr))
        return -1;
    int err = pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    if (err)
        return -1;
    *lo = (uintptr_t)addr;
    *hi = (uintptr_t)addr + size;
    return 0;
}

int threads_attach(void)
{
    if (current_thread)
        return 0;
    if (thread_is_internal) {
        /* A handler running on the collector's own thread: attaching it
         * would make the world wait for itself. */
        errno = EPERM;
        return -1;
    }
    struct gc_thread *t = aligned_alloc(64, round_up(sizeof *t, 64));
    if (!t) {
        errno = ENOMEM;
        return -1;
    }
    memset(t, 0, sizeof *t);
    if (stack_bounds(&t->stack_lo, &t->stack_hi)) {
        free(t);
        errno = EINVAL;
        return -1;
    }
    t->pthread = pthread_self();
    t->tid = (pid_t)syscall(SYS_gettid);
    if (pthread_getname_np(t->pthread, t->name, sizeof t->name))
        t->name[0] = 0;
    atomic_init(&t->state, THREAD_RUNNING);
    cache_init(&t->cache);
    globals_note_thread_tls(&t->tls, t->stack_lo, t->stack_hi);
    pthread_setspecific(exit_key, t);

    /* Not yet registered, so the collector does not wait for us while we
     * wait for the registry lock. */
    pthread_mutex_lock(&threads.registry_lock);
    t->next = threads.head;
    if (threads.head)
        threads.head->prev = t;
    threads.head = t;
    threads.count++;
    pthread_mutex_unlock(&threads.registry_lock);
    current_thread = t;
    /* Attached while marking runs: our stack is unscanned this cycle. */
    threads_library_enter(t);
    gc_thread_mark_duties(t);
    threads_library_leave(t);
    return 0;
}

struct gc_thread *thread_attach_slow(void)
{
    gc_init();
    if (threads_attach())
        return NULL;
    return current_thread;
}

int gc_thread_attach(void)
{
    gc_init();
    return threads_attach();
}

static void unlink_locked(struct gc_thread *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        threads.head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    threads.count--;
}

static bool in_blocking_region(struct gc_thread *t)
{
    int state = atomic_load_explicit(&t->state, memory_order_relaxed);
    return state == THREAD_BLOCKING || state == THREAD_CLAIMED;
}

/* The calling thread's record is unlinked: drop it. */
static void forget(struct gc_thread *t)
{
    current_thread = NULL;
    pthread_setspecific(exit_key, NULL);
    free(t);
}

static void detach(struct gc_thread *t)
{
    threads_library_enter(t); /* never left: the record is freed */
    barrier_flush(t);         /* its entries must reach the marker */
    if (!in_blocking_region(t))
        threads_blocking_begin_internal(t);
    pthread_mutex_lock(&threads.registry_lock);
    unlink_locked(t);
    cache_release_all(&t->cache);
    stats_fold_thread(t);
    pthread_mutex_unlock(&threads.registry_lock);
    forget(t);
}

void gc_thread_detach(void)
{
    struct gc_thread *t = current_thread;
    if (!t)
        return;
    if (in_blocking_region(t))
        report_fatal("gc_thread_detach: called inside a blocking region; "
                     "call gc_blocking_end first");
    detach(t);
}

void threads_forget_current(void)
{
    struct gc_thread *t = current_thread;
    if (!t)
        return;
    pthread_mutex_lock(&threads.registry_lock);
    unlink_locked(t);
    pthread_mutex_unlock(&threads.registry_lock);
    forget(t);
}

size_t threads_count(void)
{
    pthread_mutex_lock(&threads.registry_lock);
    size_t n = threads.count;
    pthread_mutex_unlock(&threads.registry_lock);
    return n;
}

/* ---- the registry lock -------------------------------------------------- */

void threads_lock_registry(void)
{
    struct gc_thread *t = current_thread;
    if (pthread_mutex_trylock(&threads.registry_lock) == 0)
        return;
    if (!t || in_blocking_region(t)) {
        pthread_mutex_lock(&threads.registry_lock);
        return;
    }
    /* A collector may hold it while waiting for us: be stopped meanwhile. */
    threads_blocking_begin_internal(t);
    pthread_mutex_lock(&threads.registry_lock);
    threads_blocking_end_internal(t);
}

void threads_unlock_registry(void)
{
    pthread_mutex_unlock(&threads.registry_lock);
}

struct gc_thread *threads_first(void)
{
    return threads.head;
}

/* ---- safepoints ---------------------------------------------------------- */

/* Wait, with callee-saved registers spilled into this frame, until the world
 * restarts. */
static CGC_NOINLINE void park(struct gc_thread *t)
{
    __builtin_unwind_init();
    t->parked_sp = threads_stack_pointer();
    pthread_mutex_lock(&threads.world_lock);
    for (;;) {
        atomic_store_explicit(&t->state, THREAD_PARKED, memory_order_seq_cst);
        while (held_in_place())
            pthread_cond_wait(&threads.world_resumed, &threads.world_lock);
        /* Store RUNNING, then look at the flag again (the Dekker pattern of
         * the file comment). A stop that began after our last look may have
         * read PARKED and counted us stopped: it then sees RUNNING or we see
         * its flag, and we park again before touching GC memory. */
        atomic_store_explicit(&t->state, THREAD_RUNNING, memory_order_seq_cst);
        if (!held_in_place())
            break;
    }
    pthread_mutex_unlock(&threads.world_lock);
}

void gc_safepoint_slow(void)
{
    struct gc_thread *t = current_thread;
    if (!t ||
        atomic_load_explicit(&t->state, memory_order_relaxed) != THREAD_RUNNING)
        return;
    threads_library_enter(t);
    atomic_store_explicit(&t->preempt_pending, 0, memory_order_relaxed);
    int why = atomic_load_explicit(&gc_internal_safepoint_requested,
                                   memory_order_seq_cst);
    if (why & SAFEPOINT_STOP)
        park(t);
    if (why & SAFEPOINT_MARK_DUTY)
        gc_thread_mark_duties(t);
    threads_library_leave(t);
}

void threads_library_leave_slow(struct gc_thread *t)
{
    /* A preemption signal arrived while we were inside cgc: stop here. */
    atomic_store_explicit(&t->preempt_pending, 0, memory_order_relaxed);
    gc_safepoint_slow();
}

/* ---- blocking regions ---------------------------------------------------- */

/* Copy stack memory that may hold sanitizer redzones: read as raw words. */
__attribute__((no_sanitize("address", "thread"))) static void
copy_stack(unsigned char *to, uintptr_t from, size_t len)
{
    for (size_t i = 0; i < len; i += sizeof(uintptr_t))
        *(uintptr_t *)(to + i) = *(const uintptr_t *)(from + i);
}

static CGC_NOINLINE void enter_blocking(struct gc_thread *t)
{
    /* Spill the callee-saved registers into this frame and copy the frame:
     * after we return, the caller's GC pointers may live only in those
     * registers, and the frame memory is reused by whatever blocks. */
    __builtin_unwind_init();
    uintptr_t sp = threads_stack_pointer();
    size_t len = t->stack_hi - sp;
    if (len > STACK_SNAPSHOT_BYTES)
        len = STACK_SNAPSHOT_BYTES;
    copy_stack(t->snapshot, sp, len);
    t->blocking_sp = sp;
    t->snapshot_len = len;
    atomic_store_explicit(&t->state, THREAD_BLOCKING, memory_order_seq_cst);
}

void threads_blocking_begin_internal(struct gc_thread *t)
{
    enter_blocking(t);
}

void threads_blocking_end_internal(struct gc_thread *t)
{
    for (;;) {
        if (held_in_place()) {
            pthread_mutex_lock(&threads.world_lock);
            while (held_in_place())
                pthread_cond_wait(&threads.world_resumed, &threads.world_lock);
            pthread_mutex_unlock(&threads.world_lock);
        }
        /* CAS, not a store: the collector may have CLAIMED us to scan our
         * stack, and we must not run until it is done with it. */
        int expected = THREAD_BLOCKING;
        if (!atomic_compare_exchange_strong_explicit(
                &t->state, &expected, THREAD_RUNNING, memory_order_seq_cst,
                memory_order_seq_cst)) {
            sched_yield();
            continue;
        }
        if (!held_in_place())
            return;
        /* A stop began between our check and our store: we have not touched
         * GC memory, so go back to BLOCKING (the snapshot is still ours). */
        atomic_store_explicit(&t->state, THREAD_BLOCKING, memory_order_seq_cst);
    }
}

void gc_blocking_begin(void)
{
    struct gc_thread *t = thread_current_or_attach();
    if (!t)
        return; /* cannot attach: nothing of ours to protect either */
    if (atomic_load_explicit(&t->state, memory_order_relaxed) != THREAD_RUNNING)
        report_fatal("gc_blocking_begin: already inside a blocking region "
                     "(regions do not nest)");
    /* Not stopped by a signal halfway through its state change. */
    threads_library_enter(t);
    enter_blocking(t);
    threads_library_leave(t);
}

void gc_blocking_end(void)
{
    struct gc_thread *t = current_thread;
    int state = t ? atomic_load_explicit(&t->state, memory_order_relaxed)
                  : THREAD_RUNNING;
    if (state != THREAD_BLOCKING && state != THREAD_CLAIMED)
        report_fatal("gc_blocking_end: called outside a blocking region; "
                     "pair it with gc_blocking_begin");
    threads_library_enter(t);
    threads_blocking_end_internal(t);
    threads_library_leave(t);
}

/* ---- stop the world ------------------------------------------------------ */

bool threads_stop_requested(void)
{
    return stop_requested();
}

void threads_warn_late(struct gc_thread *t, unsigned seconds, const char *what)
{
    const char *name = t->name[0] ? t->name : "unnamed";
    if (t->reported_blocked)
        return; /* said once: it blocks the signal */
    if (preempt_enabled() && preempt_signal_blocked(t)) {
        t->reported_blocked = true;
        report_warning("thread %d (%s) blocks signal %d (CGC_SIGNAL), so it "
                       "cannot be preempted; the collector waits until it "
                       "reaches a safepoint: unblock the signal, or wrap its "
                       "blocking calls in gc_blocking_begin/gc_blocking_end",
                       (int)t->tid, name, preempt_signal_number());
        return;
    }
    if (preempt_enabled())
        report_warning("thread %d (%s) has not stopped for %u s although "
                       "signalled (%s)",
                       (int)t->tid, name, seconds, what);
    else
        report_warning("thread %d (%s) has not reached a safepoint for %u s "
                       "(%s); call gc_safepoint in long loops and wrap "
                       "blocking calls in gc_blocking_begin/gc_blocking_end, "
                       "or let cgc preempt it (CGC_DEBUG=asyncpreemptoff=0)",
                       (int)t->tid, name, seconds, what);
}

/* Records of threads that exited without detaching, freed once no thread
 * is stopped (free may need a malloc lock a suspended thread holds). Only
 * the thread that stops the world touches it, with the registry lock. */
static CGC_STATE struct gc_thread *reaped;

void threads_reap_exited_locked(struct gc_thread *t)
{
    report_warning("thread %d (%s) exited without detaching; its stack is "
                   "no longer scanned",
                   (int)t->tid, t->name[0] ? t->name : "unnamed");
    unlink_locked(t);
    cache_release_all(&t->cache);
    stats_fold_thread(t);
    t->next = reaped;
    reaped = t;
}

void threads_free_reaped_locked(void)
{
    while (reaped) {
        struct gc_thread *t = reaped;
        reaped = t->next;
        free(t);
    }
}

/* Between polls of the threads' states. For the first microseconds poll
 * again at once: a thread running on another CPU reaches its safepoint
 * within them. Then sleep, 20 µs at a time while signalled threads act on
 * the signal, longer once the wait is long (a thread that blocks the
 * signal), up to a millisecond. Threads outside cgc's code were signalled
 * in the first pass (preempt_when), so the CPUs are free by the time the
 * sleep ends.
 *
 * Not sched_yield: when a thread that computes without safepoints shares
 * this CPU, a yield hands it the CPU until the next scheduler tick (4 ms
 * at HZ=250), while a sleeping collector is woken by its timer and
 * usually preempts it. bench/pause --uncooperative measured each stop at
 * 4-8 ms with 64 yields before the first sleep. */
#define STOP_SPIN_NS 10000ull
static void stop_poll_pause(uint64_t waited_ns)
{
    if (waited_ns < STOP_SPIN_NS)
        return;
    uint64_t ns = 20000;
    if (waited_ns > 10 * PREEMPT_GRACE_NS)
        ns = waited_ns / 8 < 1000000 ? waited_ns / 8 : 1000000;
    struct timespec ts = {0, (long)ns};
    nanosleep(&ts, NULL);
}

/* One pass over the registry: record each thread seen stopped (the first
 * state seen stopped is the one that counts: a stopped thread may flicker
 * through RUNNING while it checks the flag, but never runs), poke the
 * others. Returns whether every thread is stopped. */
static bool stop_pass(struct gc_thread *self, uint64_t start, uint64_t now,
                      unsigned *warned)
{
    bool all = true;
    unsigned seconds = (unsigned)((now - start) / 1000000000u);
    for (struct gc_thread *t = threads.head, *next; t; t = next) {
        next = t->next;
        if (t == self || t->stopped_as != THREAD_RUNNING)
            continue;
        int st = atomic_load_explicit(&t->state, memory_order_seq_cst);
        if (st != THREAD_RUNNING) {
            t->stopped_as = st == THREAD_CLAIMED ? THREAD_BLOCKING : st;
            continue;
        }
        if (!preempt_poke(t, start, now, PREEMPT_AT_ONCE_OUTSIDE_LIBRARY)) {
            threads_reap_exited_locked(t);
            continue;
        }
        all = false;
        if (seconds > *warned)
            threads_warn_late(t, seconds, "the world waits for it to stop");
    }
    if (seconds > *warned)
        *warned = seconds;
    return all;
}

void threads_stop_world(struct gc_thread *self)
{
    atomic_fetch_or_explicit(&gc_internal_safepoint_requested, SAFEPOINT_STOP,
                             memory_order_seq_cst);
    for (struct gc_thread *t = threads.head; t; t = t->next)
        t->stopped_as = THREAD_RUNNING; /* not seen stopped yet */
    uint64_t start = os_monotonic_ns();
    unsigned warned = 0;
    for (;;) {
        uint64_t now = os_monotonic_ns();
        if (stop_pass(self, start, now, &warned))
            break;
        stop_poll_pause(now - start);
    }
}

bool threads_try_claim(struct gc_thread *t)
{
    int expected = THREAD_BLOCKING;
    return atomic_compare_exchange_strong_explicit(
        &t->state, &expected, THREAD_CLAIMED, memory_order_seq_cst,
        memory_order_seq_cst);
}

void threads_release_claim(struct gc_thread *t)
{
    atomic_store_explicit(&t->state, THREAD_BLOCKING, memory_order_seq_cst);
}

void threads_start_world(void)
{
    pthread_mutex_lock(&threads.world_lock);
    atomic_fetch_and_explicit(&gc_internal_safepoint_requested, ~SAFEPOINT_STOP,
                              memory_order_seq_cst);
    pthread_cond_broadcast(&threads.world_resumed);
    pthread_mutex_unlock(&threads.world_lock);
    preempt_resume_all(); /* after the flag is clear: see preempt.c */
}

/* ---- fork (fork.h) --------------------------------------------------------
 */

void threads_fork(enum fork_phase phase)
{
    struct gc_thread *self = current_thread;
    switch (phase) {
    case FORK_PREPARE:
        /* Raise the gate, then stop the world: every other mutator is then
         * parked, blocked or suspended outside cgc's code, so no span cache
         * or barrier buffer is half-written. Restarting lets the suspended
         * ones run on in their own code — they may be inside malloc, whose
         * locks fork is about to take — while the gate keeps everyone out
         * of cgc's code and the parked and blocked in place until fork
         * returns. */
        threads_lock_registry();
        atomic_fetch_or_explicit(&gc_internal_safepoint_requested,
                                 SAFEPOINT_FORK, memory_order_seq_cst);
        threads_stop_world(self);
        threads_start_world();
        break;
    case FORK_PARENT:
        pthread_mutex_lock(&threads.world_lock);
        atomic_fetch_and_explicit(&gc_internal_safepoint_requested,
                                  ~SAFEPOINT_FORK, memory_order_seq_cst);
        pthread_cond_broadcast(&threads.world_resumed);
        pthread_mutex_unlock(&threads.world_lock);
        threads_unlock_registry();
        break;
    case FORK_CHILD:
        pthread_mutex_init(&threads.registry_lock, NULL);
        pthread_mutex_init(&threads.world_lock, NULL);
        pthread_cond_init(&threads.world_resumed, NULL);
        atomic_store_explicit(&gc_internal_safepoint_requested, 0,
                              memory_order_seq_cst);
        /* The forking thread lives on under a new thread id (the signal
         * is sent by it). */
        if (self)
            self->tid = (pid_t)syscall(SYS_gettid);
        /* Only the forking thread exists here. The others were stopped
         * with consistent caches: give their spans back and forget them. */
        for (struct gc_thread *t = threads.head, *next; t; t = next) {
            next = t->next;
            if (t == self)
                continue;
            unlink_locked(t);
            cache_release_all(&t->cache);
            stats_fold_thread(t);
            free(t);
        }
        break;
    }
}

void threads_wait_at_fork_gate(struct gc_thread *t)
{
    /* Outside cgc's code: wait for the fork to end as a blocked thread, so
     * that a stop under way counts us stopped (leaving the region waits
     * while the gate is up). A thread already in a region waits when it
     * leaves it. */
    if (atomic_load_explicit(&t->state, memory_order_relaxed) != THREAD_RUNNING)
        return;
    enter_blocking(t);
    threads_blocking_end_internal(t);
}
