/*
 * preempt.c — the preemption signal: its handler, the collector's side of
 * sending it, holding and resuming suspended threads (see preempt.h).
 *
 * The suspended thread and the collector follow the handshake of threads.c
 * (each side stores, then loads the other's word, seq_cst): the handler
 * stores SUSPENDED and then looks whether it is still wanted (stop flag or
 * hold); when woken it stores RUNNING and then looks again, suspending anew
 * if a stop began meanwhile. The collector sets the stop flag (or the hold)
 * and then reads the state. So a thread never runs while the collector
 * counts it stopped, and while it flickers between the two states inside
 * the handler its stack does not change.
 *
 * Waking: resume_seq is a futex word. A thread reads it before it decides
 * to wait and waits only while it is unchanged; whoever clears the stop
 * flag or a hold increments it afterwards and wakes all waiters, so no wake
 * is lost, and a thread woken for another thread's release goes back to
 * waiting.
 */
#define _GNU_SOURCE
#include "preempt.h"

#include "report.h"
#include "threads.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int preempt_signal = -1; /* set once by preempt_init */
static _Atomic uint32_t resume_seq;

static void futex_wait(_Atomic uint32_t *word, uint32_t value)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* ---- the thread's side (signal context) ---------------------------------- */

static bool wanted(struct gc_thread *t)
{
    return threads_stop_requested() ||
           atomic_load_explicit(&t->hold, memory_order_seq_cst);
}

/* Wait in the handler, with every callee-saved register spilled into this
 * frame and the interrupted context saved by the kernel above it. */
static CGC_NOINLINE void suspend(struct gc_thread *t)
{
    __builtin_unwind_init();
    uintptr_t sp = threads_stack_pointer();
    if (sp < t->stack_lo || sp >= t->stack_hi) {
        /* On an alternate signal stack: the interrupted stack is not above
         * us, so it cannot be scanned from here. Stop at a safepoint. */
        atomic_store_explicit(&t->preempt_pending, 1, memory_order_relaxed);
        return;
    }
    t->suspend_sp = sp;
    for (;;) {
        uint32_t seq = atomic_load_explicit(&resume_seq, memory_order_seq_cst);
        atomic_store_explicit(&t->state, THREAD_SUSPENDED,
                              memory_order_seq_cst);
        if (wanted(t))
            futex_wait(&resume_seq, seq);
        atomic_store_explicit(&t->state, THREAD_RUNNING, memory_order_seq_cst);
        if (!wanted(t))
            return;
    }
}

static void handler(int signal, siginfo_t *info, void *context)
{
    (void)signal;
    (void)info;
    (void)context;
    int saved_errno = errno;
    struct gc_thread *t = thread_current();
    if (t && atomic_load_explicit(&t->state, memory_order_relaxed) ==
                 THREAD_RUNNING) {
        if (atomic_load_explicit(&t->in_library, memory_order_relaxed))
            atomic_store_explicit(&t->preempt_pending, 1, memory_order_relaxed);
        else if (wanted(t))
            suspend(t);
    }
    errno = saved_errno;
}

/* ---- the collector's side ------------------------------------------------ */

void preempt_init(int signal, bool enabled)
{
    preempt_signal = -1;
    if (!enabled)
        return;
    struct sigaction old;
    if (sigaction(signal, NULL, &old) == 0 &&
        ((old.sa_flags & SA_SIGINFO)
             ? old.sa_sigaction != handler
             : old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)) {
        report_warning("gc_init: signal %d (CGC_SIGNAL) already has a "
                       "handler; threads that do not reach a safepoint will "
                       "not be preempted (choose another CGC_SIGNAL)",
                       signal);
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    /* SA_RESTART: read, write, wait and the like resume after the handler
     * (nanosleep, poll, select, epoll_wait return EINTR all the same, see
     * README). All signals blocked while it runs: no other handler may run
     * on the suspended thread and touch GC memory. */
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(signal, &sa, NULL)) {
        report_warning("gc_init: cannot install a handler for signal %d "
                       "(CGC_SIGNAL); threads will not be preempted",
                       signal);
        return;
    }
    preempt_signal = signal;
}

bool preempt_enabled(void)
{
    return preempt_signal > 0;
}

int preempt_signal_number(void)
{
    return preempt_signal;
}

static bool poke_due(struct gc_thread *t, uint64_t since, uint64_t now,
                     enum preempt_when when)
{
    bool signalled_since = t->signalled_ns && t->signalled_ns >= since;
    if (signalled_since)
        return now - t->signalled_ns >= PREEMPT_RESEND_NS;
    /* A hint read from another thread: stale, it costs one signal that the
     * handler turns into preempt_pending, or one grace period. */
    if (when == PREEMPT_AT_ONCE_OUTSIDE_LIBRARY &&
        atomic_load_explicit(&t->in_library, memory_order_relaxed) == 0)
        return true;
    return now - since >= PREEMPT_GRACE_NS;
}

bool preempt_poke(struct gc_thread *t, uint64_t since, uint64_t now,
                  enum preempt_when when)
{
    if (!preempt_enabled() || !poke_due(t, since, now, when))
        return true;
    t->signalled_ns = now;
    /* tgkill, not pthread_kill: a thread that exited without detaching has
     * an invalid pthread_t, while a stale tid just gives ESRCH. */
    if (syscall(SYS_tgkill, getpid(), t->tid, preempt_signal) == 0)
        return true;
    return errno != ESRCH;
}

void preempt_hold(struct gc_thread *t)
{
    atomic_store_explicit(&t->hold, 1, memory_order_seq_cst);
}

bool preempt_is_held(struct gc_thread *t)
{
    return atomic_load_explicit(&t->hold, memory_order_seq_cst) &&
           atomic_load_explicit(&t->state, memory_order_seq_cst) ==
               THREAD_SUSPENDED;
}

void preempt_release(struct gc_thread *t)
{
    atomic_store_explicit(&t->hold, 0, memory_order_seq_cst);
    atomic_fetch_add_explicit(&resume_seq, 1, memory_order_seq_cst);
    futex_wake_all(&resume_seq);
}

void preempt_resume_all(void)
{
    atomic_fetch_add_explicit(&resume_seq, 1, memory_order_seq_cst);
    futex_wake_all(&resume_seq);
}

/* Parse the SigBlk line of /proc/self/task/TID/status: open/read only, no
 * stdio, since threads may be stopped inside stdio. */
bool preempt_signal_blocked(const struct gc_thread *t)
{
    if (!preempt_enabled())
        return false;
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)t->tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    const char *line = strstr(buf, "SigBlk:");
    if (!line)
        return false;
    unsigned long long mask = strtoull(line + 7, NULL, 16);
    return (mask >> (preempt_signal - 1)) & 1;
}
