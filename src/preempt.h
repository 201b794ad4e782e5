/*
 * preempt.h — stopping threads that do not reach a safepoint, with a
 * signal (the Boehm collector's thread suspension, Go's async preemption).
 *
 * The collector asks a RUNNING thread to stop by setting a flag it polls
 * (threads.c). A thread that has not stopped after PREEMPT_GRACE_NS — or at
 * once, when the world stops and the thread is outside cgc's code — is sent
 * the preemption signal (CGC_SIGNAL). Its handler, unless the thread is
 * inside cgc's own code, publishes its stack pointer — the kernel saved the
 * interrupted registers on the stack above it — stores THREAD_SUSPENDED and
 * waits on a futex while the world is stopped or the collector holds it
 * (to scan its stack during concurrent marking). Inside cgc's code the
 * handler only notes the request; the thread stops at the safepoint it
 * reaches when it leaves (threads_library_leave), which it does shortly.
 *
 * The handler does only async-signal-safe work: atomics, the futex system
 * call, errno saved and restored. The collector never takes a lock a
 * suspended thread may hold: cgc's own locks are only held inside cgc's
 * code, where no thread is suspended, and the collector does not call
 * malloc or stdio while threads are stopped (work buffers and checkmark's
 * tables are mapped directly).
 */
#ifndef CGC_PREEMPT_H
#define CGC_PREEMPT_H

#include <stdbool.h>
#include <stdint.h>

struct gc_thread;

/* How long the collector waits for a thread to stop by itself before it
 * signals it. A thread that allocates or calls gc_safepoint in a loop
 * stops within microseconds; the signal costs the thread a kernel entry
 * and a few microseconds, so it is worth avoiding, but the wait adds to
 * the pause of every cycle in which some thread does not cooperate. 100 µs
 * keeps such a pause far below the 1 ms goal: bench/pause --uncooperative
 * (a thread in read(), one computing) measured about 0.2 ms per stop and
 * 0.4-0.5 ms per cycle (STW 1 + STW 2) at 1 GiB. */
#define PREEMPT_GRACE_NS 100000ull

/* A thread that was signalled but has not stopped (it was inside cgc's
 * code, or the signal raced with a state change) is signalled again after
 * this long. Real-time signals queue, so resending more often would only
 * pile them up. */
#define PREEMPT_RESEND_NS 10000000ull

/* Install the handler for `signal` (gc_init). With enabled false, or if
 * the signal has another handler, preemption stays off (warned). */
void preempt_init(int signal, bool enabled);
bool preempt_enabled(void);
int preempt_signal_number(void);

/* When a thread that has not stopped is signalled. A stop of the world
 * signals at once every thread it finds outside cgc's code: on a machine
 * with as many runnable threads as CPUs, a collector that waits out the
 * grace period before signalling may wait for a CPU for milliseconds
 * (design.md, "Stop latency on a busy 2-CPU machine"), and a signalled thread
 * frees its CPU. Go's suspendG likewise preempts a running goroutine as
 * soon as it asks it to stop. Stack scans during concurrent marking are no
 * pause, so they first give the thread the grace period to do them itself. */
enum preempt_when {
    PREEMPT_AFTER_GRACE,
    PREEMPT_AT_ONCE_OUTSIDE_LIBRARY,
};

/* Send the signal to t if it is due (at once, or PREEMPT_GRACE_NS since
 * `since`, and PREEMPT_RESEND_NS since the last one). Returns false if the
 * thread no longer exists: it exited without detaching. The registry lock
 * is held. */
bool preempt_poke(struct gc_thread *t, uint64_t since, uint64_t now,
                  enum preempt_when when);

/* Keep t suspended once it stops in the handler, until preempt_release. */
void preempt_hold(struct gc_thread *t);
void preempt_release(struct gc_thread *t);
/* Whether t is stopped in the handler and held there. */
bool preempt_is_held(struct gc_thread *t);

/* Wake every suspended thread that is not held (the world restarts; the
 * stop flag is already clear). */
void preempt_resume_all(void);

/* Whether t blocks the preemption signal (from /proc; false if unknown). */
bool preempt_signal_blocked(const struct gc_thread *t);

/* The stop flag, for the handler (threads.c). */
bool threads_stop_requested(void);

#endif
