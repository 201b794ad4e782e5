/*
 * threads.h — the registry of attached threads, cooperative safepoints,
 * blocking regions and stop-the-world (Go's proc.go, the parts a collector
 * needs).
 *
 * A thread is in one of three states (an atomic, seq_cst where a Dekker-style
 * handshake with gc_internal_safepoint_requested needs it):
 *   RUNNING   it may touch GC memory; the collector waits for it to stop;
 *   PARKED    it waits at a safepoint; its stack is [parked_sp, stack_hi);
 *   BLOCKING  it promised not to touch GC memory; its stack is the snapshot
 *             taken on entry plus [blocking_sp + snapshot_len, stack_hi).
 *
 * Locks, in order: gc_lock (gc.c) -> registry lock -> central/heap locks.
 * The collector holds the registry lock for the whole stop-the-world, so an
 * attached thread that wants the registry lock must be BLOCKING while it
 * waits (threads_lock_registry does that).
 */
#ifndef CGC_THREADS_H
#define CGC_THREADS_H

#include "cache.h"
#include "globals.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/types.h>

enum thread_state {
    THREAD_RUNNING = 0,
    THREAD_PARKED = 1,
    THREAD_BLOCKING = 2,
    /* BLOCKING, and the collector is scanning its stack or flushing its
     * barrier buffer: gc_blocking_end waits for it to become BLOCKING. */
    THREAD_CLAIMED = 3,
    /* Stopped by the collector's signal outside cgc's code: it waits in the
     * handler; its stack is [suspend_sp, stack_hi), which holds the
     * interrupted context's registers (preempt.c). */
    THREAD_SUSPENDED = 4,
};

/* Bits of gc_internal_safepoint_requested: why threads should poll. */
#define SAFEPOINT_STOP 1 /* stop the world */
#define SAFEPOINT_MARK_DUTY                                                    \
    2 /* scan your stack / flush your barrier buffer                           \
       */
/* A fork is under way (fork.h): threads outside cgc's code run on, but none
 * enters it, and parked or blocked ones stay where they are. */
#define SAFEPOINT_FORK 4

/* Write-barrier buffer entries per thread (Go's wbBuf holds 512). */
#define BARRIER_BUFFER_ENTRIES 512

/* Bytes of stack copied on entry to a blocking region: the frame of
 * gc_blocking_begin, which holds the caller's callee-saved registers. */
#define STACK_SNAPSHOT_BYTES 1024

struct gc_thread {
    struct gc_thread *next, *prev; /* registry: under the registry lock */
    pthread_t pthread;
    pid_t tid;
    char name[16];
    uintptr_t stack_lo, stack_hi;

    atomic_int state;
    /* Written by the thread before it publishes PARKED/BLOCKING with a
     * seq_cst store; read by the collector after seeing that state. */
    uintptr_t parked_sp;
    uintptr_t blocking_sp;
    size_t snapshot_len;
    _Alignas(16) unsigned char snapshot[STACK_SNAPSHOT_BYTES];
    /* The state the collector saw when the world stopped (collector-owned
     * while the world is stopped). */
    int stopped_as;

    struct cache cache; /* owned by the thread */

    /* Concurrent marking. The buffer is written by the thread while
     * RUNNING and read by the collector while the thread is stopped or
     * CLAIMED. The cycle/epoch stamps are written with release by whoever
     * did the duty and read with acquire by the collector. */
    uintptr_t barrier_buffer[BARRIER_BUFFER_ENTRIES];
    unsigned barrier_count;
    _Atomic uint32_t stack_scanned_cycle; /* mark cycle of the last scan */
    _Atomic uint32_t flushed_epoch;       /* last flush epoch honoured */
    int64_t assist_credit;                /* owner only: bytes of scan work */

    /* Allocation counters: written only by the thread (relaxed load+store,
     * no read-modify-write), read by gc_read_stats. */
    _Atomic uint64_t mallocs[NUM_SIZE_CLASSES]; /* [0]: large objects */
    _Atomic uint64_t large_bytes;

    /* Signal preemption (preempt.c). in_library counts the thread's nested
     * calls into cgc: written by the thread, read by its own signal
     * handler, so relaxed accesses ordered by signal fences suffice (the
     * collector also reads it, relaxed, as a hint for whether to signal at
     * once: preempt_poke); while
     * it is non-zero the handler only sets preempt_pending (same owner) and
     * the thread stops at the safepoint it reaches on leaving. hold is
     * written by the collector (seq_cst): the thread stays suspended while
     * it is set. suspend_sp is written by the thread before it publishes
     * SUSPENDED (seq_cst) and read by the collector after seeing it. */
    _Atomic int in_library;
    _Atomic int preempt_pending;
    _Atomic int hold;
    uintptr_t suspend_sp;
    /* Collector-owned: when the last signal went to this thread (ns), and
     * whether the thread was reported for blocking the signal. */
    uint64_t signalled_ns;
    bool reported_blocked;
    /* Owner only (alloc.c): non-zero while the thread is inside an
     * allocation function, so that a signal handler that allocates while it
     * interrupted one is caught instead of corrupting the span cache or
     * deadlocking on a lock the interrupted code holds. volatile
     * sig_atomic_t with signal fences: the handler runs on this thread. */
    volatile sig_atomic_t in_allocator;
    /* The thread's static TLS area (globals.c), scanned with its stack:
     * written by the thread in threads_attach before the record is linked
     * into the registry (the registry mutex publishes it), never changed
     * after, read by whoever scans the stack. */
    struct globals_tls tls;
};

/* Around every public entry point that takes a lock or changes state the
 * collector reads while the thread is stopped: a signal that arrives in
 * between does not stop the thread there (threads_library_leave stops it
 * at a safepoint instead). */
void threads_wait_at_fork_gate(struct gc_thread *t);

static inline void threads_library_enter(struct gc_thread *t)
{
    int depth = atomic_load_explicit(&t->in_library, memory_order_relaxed);
    /* Only the outermost entry waits at the gate: a thread already inside
     * is one the fork's stop waits for. Relaxed is enough: the gate is
     * raised before the world is stopped, and every thread passes through
     * that handshake before it can enter cgc again. */
    if (unlikely(depth == 0 &&
                 (atomic_load_explicit(&gc_internal_safepoint_requested,
                                       memory_order_relaxed) &
                  SAFEPOINT_FORK)))
        threads_wait_at_fork_gate(t);
    atomic_store_explicit(&t->in_library, depth + 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
}

void threads_library_leave_slow(struct gc_thread *t);

/* The same for the calling thread, which may be unattached (then NULL is
 * returned and nothing is counted: no signal is ever sent to it). */
static inline struct gc_thread *threads_enter_library(void);
static inline void threads_leave_library(struct gc_thread *t);

static inline void threads_library_leave(struct gc_thread *t)
{
    atomic_signal_fence(memory_order_seq_cst);
    int depth = atomic_load_explicit(&t->in_library, memory_order_relaxed);
    atomic_store_explicit(&t->in_library, depth - 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    if (unlikely(depth == 1 && atomic_load_explicit(&t->preempt_pending,
                                                    memory_order_relaxed)))
        threads_library_leave_slow(t);
}

/* The calling thread's record, or NULL if it is not attached. Initial-exec
 * TLS: one load, no __tls_get_addr call, also in the shared library. */
extern __thread struct gc_thread *thread_current_record
    __attribute__((tls_model("initial-exec")));

static inline struct gc_thread *thread_current(void)
{
    return thread_current_record;
}
static inline struct gc_thread *threads_enter_library(void)
{
    struct gc_thread *t = thread_current_record;
    if (t)
        threads_library_enter(t);
    return t;
}

static inline void threads_leave_library(struct gc_thread *t)
{
    if (t)
        threads_library_leave(t);
}

/* The calling thread's record, attaching it (and initialising the
 * collector) first if needed; NULL if that fails. */
struct gc_thread *thread_attach_slow(void);

static inline struct gc_thread *thread_current_or_attach(void)
{
    struct gc_thread *t = thread_current_record;
    return likely(t != NULL) ? t : thread_attach_slow();
}

int threads_init(void);
/* Attach the calling thread; idempotent. 0, or -1 with errno. */
int threads_attach(void);
/* Number of attached threads. */
size_t threads_count(void);

/* The registry lock, taken in a way that cannot deadlock with a collector
 * that holds it while waiting for this thread to stop. */
void threads_lock_registry(void);
void threads_unlock_registry(void);
/* Iterate the registry; the registry lock is held. */
struct gc_thread *threads_first(void);

/* Stop every attached thread except self at a safepoint or blocking region
 * (self may be NULL). The registry lock is held. Warns on stderr about a
 * thread that takes more than a second. */
void threads_stop_world(struct gc_thread *self);
void threads_start_world(void);

/* Warn on stderr that t keeps the collector waiting (`seconds` so far,
 * `what` says for what); says so if t blocks the preemption signal. */
void threads_warn_late(struct gc_thread *t, unsigned seconds, const char *what);
/* Drop the record of a thread that exited without detaching (the signal
 * found it gone); the registry lock is held and nothing scans it meanwhile.
 */
void threads_reap_exited_locked(struct gc_thread *t);
/* Free the records dropped so far; call with the registry lock held and no
 * thread stopped or held (after STW 2's restart, after marking duties). */
void threads_free_reaped_locked(void);

/* Claim a BLOCKING thread so that its stack and barrier buffer hold still
 * while the collector reads them; false if it is not BLOCKING. */
bool threads_try_claim(struct gc_thread *t);
void threads_release_claim(struct gc_thread *t);

/* Enter/leave a blocking region from inside the library. */
void threads_blocking_begin_internal(struct gc_thread *t);
void threads_blocking_end_internal(struct gc_thread *t);

/* The lowest address of the caller's frame (a noinline callee's local). */
uintptr_t threads_stack_pointer(void);

/* Forget the calling thread's record without detaching (gc_shutdown). */
void threads_forget_current(void);

#endif
