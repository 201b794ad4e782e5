/*
 * fork.c — the pthread_atfork handlers (see fork.h for what each does).
 */
#include "fork.h"

#include "gc.h"
#include "threads.h"

static CGC_STATE pthread_once_t install_once = PTHREAD_ONCE_INIT;
/* Whether prepare found the collector running: written and read by the
 * forking thread only (prepare, then parent or child). */
static CGC_STATE bool active;

static void each(enum fork_phase phase)
{
    /* Before fork in the lock order, after it in reverse. */
    void (*const hooks[])(enum fork_phase) = {
        gc_fork,       threads_fork,  gc_fork_services, sweep_fork,
        scavenge_fork, finalize_fork, weak_fork,        ephemeron_fork,
        mark_fork,     roots_fork,    trace_fork,       stats_fork,
        alloc_fork,    central_fork,  heap_fork,
    };
    size_t n = sizeof hooks / sizeof hooks[0];
    for (size_t i = 0; i < n; i++)
        hooks[phase == FORK_PREPARE ? i : n - 1 - i](phase);
}

static void prepare(void)
{
    active = gc_initialized();
    if (!active)
        return;
    struct gc_thread *self = thread_current();
    if (self)
        threads_library_enter(self); /* no preemption signal stops us */
    each(FORK_PREPARE);
}

static void after(enum fork_phase phase)
{
    if (!active)
        return;
    each(phase);
    struct gc_thread *self = thread_current();
    if (self)
        threads_library_leave(self);
}

static void parent(void)
{
    after(FORK_PARENT);
}

static void child(void)
{
    after(FORK_CHILD);
}

static void install(void)
{
    pthread_atfork(prepare, parent, child);
}

void fork_install(void)
{
    pthread_once(&install_once, install);
}
