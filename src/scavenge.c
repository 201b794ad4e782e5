/*
 * scavenge.c — returning free pages to the OS (see scavenge.h). Free runs
 * are released with MADV_DONTNEED, largest first and in bounded chunks
 * (heap.c); reusing one faults in zero pages, so it needs no zeroing.
 *
 * The background scavenger wakes every 100 ms (and after each cycle), and
 * while the heap retains more than 110 % of the heap goal it releases a
 * chunk, then sleeps 99 times as long as the release took: about 1 % of one
 * CPU, as Go's scavenger. Eager releases (memory limit, gc_free_os_memory)
 * are not paced. The counters of released bytes for scavtrace are relaxed
 * atomics: statistics, read and reset by the collector thread.
 */
#include "scavenge.h"
#include "fork.h"

#include "env.h"
#include "heap.h"
#include "os.h"
#include "pacer.h"
#include "service.h"
#include "thread_role.h"
#include "trace.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

uint64_t scavenge_retained(void)
{
    struct heap_counters h;
    heap_read_counters(&h);
    uint64_t mapped = h.sys + h.meta;
    return mapped > h.released ? mapped - h.released : 0;
}

#define CHUNK_BYTES ((uint64_t)16 << 20)
#define DUTY_FACTOR 99 /* sleep 99x the work: 1 % of one CPU */

static CGC_STATE struct {
    struct service svc;
    _Atomic uint64_t released_bg, released_eager; /* since the last line */
} scav = {.svc = SERVICE_INITIALIZER};

static void release_above(uint64_t target)
{
    uint64_t retained = scavenge_retained();
    if (retained > target)
        atomic_fetch_add_explicit(&scav.released_eager,
                                  heap_release_free(retained - target),
                                  memory_order_relaxed);
}

void scavenge_to_limit(void)
{
    int64_t limit = pacer_memory_limit();
    if (limit != INT64_MAX)
        release_above((uint64_t)limit);
}

void scavenge_for_growth(size_t bytes)
{
    int64_t limit = pacer_memory_limit();
    if (limit != INT64_MAX)
        release_above((uint64_t)limit > bytes ? (uint64_t)limit - bytes : 0);
}

void scavenge_update_pacer(void)
{
    struct heap_counters h;
    heap_read_counters(&h);
    pacer_update_overhead(scavenge_retained(), h.inuse);
}

uint64_t scavenge_all(void)
{
    uint64_t bytes = heap_release_free(UINT64_MAX);
    atomic_fetch_add_explicit(&scav.released_eager, bytes,
                              memory_order_relaxed);
    return bytes;
}

/* What the heap itself retains: mapped heap memory minus released. */
static uint64_t heap_retained(struct heap_counters *h)
{
    heap_read_counters(h);
    return h->sys > h->released ? h->sys - h->released : 0;
}

/* One paced step: release a chunk if the heap retains too much; returns
 * how long to sleep before the next step (ns), 0 to wait for the tick. */
static uint64_t background_step(void)
{
    struct heap_counters h;
    uint64_t retained = heap_retained(&h);
    uint64_t goal = pacer_heap_goal();
    if (goal == UINT64_MAX)
        return 0;
    uint64_t target = goal + goal / 10;
    if (target < h.inuse)
        target = h.inuse;
    if (retained <= target)
        return 0;
    uint64_t want = retained - target;
    uint64_t t0 = os_monotonic_ns();
    uint64_t got = heap_release_free(want < CHUNK_BYTES ? want : CHUNK_BYTES);
    uint64_t spent = os_monotonic_ns() - t0;
    atomic_fetch_add_explicit(&scav.released_bg, got, memory_order_relaxed);
    if (got == 0)
        return 0;
    uint64_t pause = spent * DUTY_FACTOR;
    return pause < 1000 ? 1000 : pause;
}

static void *background_main(void *arg)
{
    (void)arg;
    thread_role_set_internal();
    pthread_mutex_lock(&scav.svc.lock);
    while (!scav.svc.stop) {
        pthread_mutex_unlock(&scav.svc.lock);
        uint64_t sleep_ns = background_step();
        pthread_mutex_lock(&scav.svc.lock);
        if (scav.svc.stop)
            break;
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        uint64_t wait = sleep_ns ? sleep_ns : 100000000u; /* tick: 100 ms */
        deadline.tv_sec += (time_t)(wait / 1000000000u);
        deadline.tv_nsec += (long)(wait % 1000000000u);
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&scav.svc.wake, &scav.svc.lock, &deadline);
    }
    pthread_mutex_unlock(&scav.svc.lock);
    return NULL;
}

int scavenge_start_background(void)
{
    return service_start(&scav.svc, background_main);
}

void scavenge_stop_background(void)
{
    service_stop(&scav.svc);
}

void scavenge_trace_cycle(bool forced)
{
    uint64_t bg =
        atomic_exchange_explicit(&scav.released_bg, 0, memory_order_relaxed);
    uint64_t eager =
        atomic_exchange_explicit(&scav.released_eager, 0, memory_order_relaxed);
    if (!gc_config.scavtrace)
        return;
    struct heap_counters h;
    uint64_t retained = heap_retained(&h);
    unsigned util = retained ? (unsigned)(h.inuse * 100 / retained) : 0;
    trace_line("scav %llu KiB work (bg), %llu KiB work (eager), %llu KiB now, "
               "%u%% util%s",
               (unsigned long long)(bg >> 10),
               (unsigned long long)(eager >> 10),
               (unsigned long long)(h.released >> 10), util,
               forced ? " (forced)" : "");
}

void scavenge_fork(enum fork_phase phase)
{
    fork_mutex(&scav.svc.lock, phase);
    fork_cond(&scav.svc.wake, phase);
    if (phase == FORK_CHILD)
        scav.svc.running = false;
}
