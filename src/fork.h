/*
 * fork.h — keeping the heap consistent across fork() (pthread_atfork).
 *
 * Before fork, the forking thread waits for any cycle to end and keeps new
 * ones from starting, finishes sweeping, raises the fork gate and stops the
 * world (every other mutator at a safepoint, in a blocking region or
 * suspended outside cgc's code, so no span cache or barrier buffer is
 * half-written), restarts it with the gate up (suspended threads run on in
 * their own code, perhaps inside malloc, whose locks fork takes; no thread
 * enters cgc's code, parked and blocked ones stay put) and takes cgc's
 * locks in the lock order, so that no collector thread is inside a
 * critical section when the address space is copied. The parent then
 * releases everything and restarts the world. The child, where only the
 * forking thread exists, re-initialises every lock and condition variable,
 * forgets the other threads (their cached spans go back to the central
 * lists) and marks the collector's own threads as gone: they are started
 * again the first time a cycle is wanted.
 *
 * Each module that owns locks implements its hook; fork.c calls them in the
 * lock order (gc → threads → services → finalizers → mark → roots → trace
 * → stats → types → central → heap; weak pointers after finalizers) before
 * fork and in reverse after.
 */
#ifndef CGC_FORK_H
#define CGC_FORK_H

#include <pthread.h>

enum fork_phase { FORK_PREPARE, FORK_PARENT, FORK_CHILD };

/* Lock before fork, unlock in the parent, re-initialise in the child. */
static inline void fork_mutex(pthread_mutex_t *m, enum fork_phase phase)
{
    switch (phase) {
    case FORK_PREPARE:
        pthread_mutex_lock(m);
        break;
    case FORK_PARENT:
        pthread_mutex_unlock(m);
        break;
    case FORK_CHILD:
        pthread_mutex_init(m, NULL);
        break;
    }
}

/* A condition variable may count waiters that do not exist in the child. */
static inline void fork_cond(pthread_cond_t *c, enum fork_phase phase)
{
    if (phase == FORK_CHILD)
        pthread_cond_init(c, NULL);
}

/* Register the handlers (gc_init; once per process). */
void fork_install(void);

/* The modules' hooks. */
void gc_fork(enum fork_phase phase);
void gc_fork_services(enum fork_phase phase);
void finalize_fork(enum fork_phase phase);
void weak_fork(enum fork_phase phase);
void ephemeron_fork(enum fork_phase phase);
void threads_fork(enum fork_phase phase);
void sweep_fork(enum fork_phase phase);
void scavenge_fork(enum fork_phase phase);
void mark_fork(enum fork_phase phase);
void roots_fork(enum fork_phase phase);
void trace_fork(enum fork_phase phase);
void stats_fork(enum fork_phase phase);
void alloc_fork(enum fork_phase phase);
void central_fork(enum fork_phase phase);
void heap_fork(enum fork_phase phase);

#endif
