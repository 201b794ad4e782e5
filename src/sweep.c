/*
 * sweep.c — sweeping spans (see sweep.h for the generation protocol).
 *
 * Sweeping reads and writes only a span's bitmaps, never object memory
 * (design §4): the mark bits become the alloc bits, the slots that lost their
 * mark are free, and the span is flagged `needzero` so allocation re-zeroes
 * them. A slot that is marked but was not allocated is a "zombie": something
 * marked free memory, which means the heap is already corrupt, so it aborts.
 *
 * Who sweeps: a thread that needs a span of a class (central_acquire), a
 * large allocation that needs pages (sweep_reclaim_pages), the background
 * sweeper thread after each cycle, and the next cycle before it starts
 * (sweep_finish), so that marking always starts on a fully swept heap.
 */
#include "sweep.h"
#include "fork.h"

#include "central.h"
#include "env.h"
#include "ephemeron.h"
#include "finalize.h"
#include "report.h"
#include "scavenge.h"
#include "service.h"
#include "stats.h"
#include "thread_role.h"
#include "threads.h"
#include "weak.h"

#include <pthread.h>
#include <sched.h>

static CGC_STATE _Atomic uint32_t heap_sweepgen = 4;
/* Sweeps under way (claimed, not yet finished). */
static CGC_STATE atomic_int active_sweepers;

static CGC_STATE struct {
    struct service svc;
    bool requested; /* a cycle ended since the last pass (svc.lock) */
} background = {.svc = SERVICE_INITIALIZER};

uint32_t sweep_current_generation(void)
{
    return atomic_load_explicit(&heap_sweepgen, memory_order_acquire);
}

void sweep_flip(void)
{
    atomic_fetch_add_explicit(&heap_sweepgen, 2, memory_order_release);
}

void sweep_begin(void)
{
    atomic_fetch_add_explicit(&active_sweepers, 1, memory_order_relaxed);
}

void sweep_end(void)
{
    /* Release: sweep_finish's acquire load then sees the span swept. */
    atomic_fetch_sub_explicit(&active_sweepers, 1, memory_order_release);
}

bool sweep_in_progress(void)
{
    return atomic_load_explicit(&active_sweepers, memory_order_acquire) != 0;
}

static uint64_t low_bits(uint32_t n)
{
    return n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1);
}

/* CGC_DEBUG=clobberfree=1: poison the slots that just died. */
static void clobber(struct span *s, uint32_t first, uint64_t dead)
{
    while (dead) {
        uint32_t idx = first + (uint32_t)__builtin_ctzll(dead);
        dead &= dead - 1;
        uint32_t *p = (uint32_t *)(s->base + (uintptr_t)idx * s->elem_size);
        for (size_t i = 0; i < s->elem_size / sizeof *p; i++)
            p[i] = 0xdeadbeef;
    }
}

/* Weak pointers and finalizers of the span's objects, before the mark
 * bits are read: weak pointers to an unmarked object are cleared first,
 * then its finalizer is queued and the object marked to keep it (so a
 * resurrected object stays NULL to its weak pointers, Go's rule). */
static void sweep_specials(struct span *s)
{
    if (atomic_load_explicit(&s->has_weaks, memory_order_relaxed))
        weak_sweep_span(s);
    if (atomic_load_explicit(&s->has_ephemerons, memory_order_relaxed))
        ephemeron_sweep_span(s);
    if (atomic_load_explicit(&s->has_finalizers, memory_order_relaxed))
        finalize_sweep_span(s);
}

static enum sweep_result sweep_large(struct span *s)
{
    sweep_specials(s);
    bool marked =
        atomic_load_explicit(&s->mark_bits[0], memory_order_relaxed) & 1;
    bool freed = span_slot_freed(s, 0);
    if (!marked || freed) {
        if (gc_config.clobberfree)
            clobber(s, 0, 1);
        stats_count_large_free(s->elem_size);
        heap_free_span(s);
        return SWEEP_FREED;
    }
    atomic_store_explicit(&s->mark_bits[0], 0, memory_order_release);
    atomic_store_explicit(&s->sweepgen, sweep_current_generation(),
                          memory_order_release);
    return SWEEP_KEPT;
}

enum sweep_result span_sweep(struct span *s)
{
    if (s->span_class / NUM_KINDS == 0)
        return sweep_large(s);
    sweep_specials(s); /* it may mark objects: before reading the bits */

    uint32_t free_index =
        atomic_load_explicit(&s->free_index, memory_order_relaxed);
    _Atomic uint64_t *freed =
        atomic_load_explicit(&s->freed_bits, memory_order_acquire);
    uint32_t words = (s->nelems + 63) / 64;
    uint32_t live_count = 0, freed_count = 0;
    for (uint32_t w = 0; w < words; w++) {
        uint32_t first = w * 64;
        uint64_t handed_out =
            free_index > first ? low_bits(free_index - first) : 0;
        uint64_t allocated =
            atomic_load_explicit(&s->alloc_bits[w], memory_order_relaxed) |
            handed_out;
        uint64_t marked =
            atomic_load_explicit(&s->mark_bits[w], memory_order_relaxed);
        if (marked & ~allocated)
            report_fatal("zombie object: slot %u of the span at %p "
                         "(%zu-byte objects) is marked but was never "
                         "allocated; the heap is corrupt",
                         first + (uint32_t)__builtin_ctzll(marked & ~allocated),
                         (void *)s->base, s->elem_size);
        uint64_t live = marked;
        if (freed)
            live &= ~atomic_load_explicit(&freed[w], memory_order_relaxed);
        live_count += (uint32_t)__builtin_popcountll(live);
        freed_count += (uint32_t)__builtin_popcountll(allocated & ~live);
        if (gc_config.clobberfree)
            clobber(s, first, allocated & ~live);
        atomic_store_explicit(&s->alloc_bits[w], live, memory_order_relaxed);
        /* Release: a weak-pointer read that sees the cleared bit also sees
         * the claim before it (weak.c). */
        atomic_store_explicit(&s->mark_bits[w], 0, memory_order_release);
    }
    if (freed_count)
        stats_count_small_frees(s->span_class / NUM_KINDS, freed_count);
    if (live_count == 0) {
        heap_free_span(s);
        return SWEEP_FREED;
    }
    if (freed) {
        atomic_store_explicit(&s->freed_bits, NULL, memory_order_relaxed);
        heap_meta_free((void *)freed, FREED_BITS_BYTES);
    }
    s->alloc_count = live_count;
    s->needzero = 1;
    atomic_store_explicit(&s->free_index, 0, memory_order_relaxed);
    s->cache_base = 0;
    s->alloc_cache =
        ~atomic_load_explicit(&s->alloc_bits[0], memory_order_relaxed) &
        low_bits(s->nelems);
    atomic_store_explicit(&s->sweepgen, sweep_current_generation(),
                          memory_order_release);
    return SWEEP_KEPT;
}

/* Sweep one unswept span; false when none is left. *pages_freed grows by
 * the pages returned to the heap. */
static bool sweep_one(unsigned *cursor, size_t *pages_freed, bool thorough)
{
    struct span *s = central_claim_unswept(cursor, thorough);
    if (!s)
        return false;
    size_t npages = s->npages;
    if (span_sweep(s) == SWEEP_KEPT)
        central_release(s);
    else
        *pages_freed += npages;
    sweep_end();
    return true;
}

/* Marking must start on a fully swept heap, so the end of the sweep is not
 * taken from the counts alone: a last, thorough pass looks at every class
 * under its lock (a few microseconds per cycle, outside any pause). The
 * counts have been wrong before (central_count_unswept), and a span left
 * unswept loses objects in the next mark. */
void sweep_finish(void)
{
    unsigned cursor = 0;
    size_t pages = 0;
    while (sweep_one(&cursor, &pages, false))
        ;
    while (sweep_one(&cursor, &pages, true))
        ;
    while (atomic_load_explicit(&active_sweepers, memory_order_acquire))
        sched_yield();
}

void sweep_reclaim_pages(size_t npages)
{
    unsigned cursor = 0; /* class 0: large spans first */
    size_t pages = 0;
    while (pages < npages && sweep_one(&cursor, &pages, false))
        ;
}

bool sweep_help(void)
{
    /* Inside cgc: the claim takes a central lock (threads.h). */
    struct gc_thread *self = threads_enter_library();
    unsigned cursor = 0;
    size_t pages = 0;
    bool swept = sweep_one(&cursor, &pages, false);
    threads_leave_library(self);
    return swept;
}

/* ---- the background sweeper --------------------------------------------- */

static void *background_main(void *arg)
{
    thread_role_set_internal();
    (void)arg;
    unsigned cursor = 0;
    pthread_mutex_lock(&background.svc.lock);
    while (!background.svc.stop) {
        if (!background.requested) {
            pthread_cond_wait(&background.svc.wake, &background.svc.lock);
            continue;
        }
        background.requested = false;
        pthread_mutex_unlock(&background.svc.lock);
        size_t pages = 0;
        bool finished = true;
        while (sweep_one(&cursor, &pages, false)) {
            if (atomic_load_explicit(&gc_internal_safepoint_requested,
                                     memory_order_relaxed) &
                SAFEPOINT_STOP) {
                finished = false; /* a cycle is starting: it sweeps */
                break;
            }
            sched_yield(); /* the mutators come first */
        }
        if (finished)
            scavenge_to_limit(); /* the sweep freed what it could */
        pthread_mutex_lock(&background.svc.lock);
    }
    pthread_mutex_unlock(&background.svc.lock);
    return NULL;
}

int sweep_start_background(void)
{
    background.requested = false;
    return service_start(&background.svc, background_main);
}

void sweep_wake_background(void)
{
    pthread_mutex_lock(&background.svc.lock);
    background.requested = true;
    pthread_cond_signal(&background.svc.wake);
    pthread_mutex_unlock(&background.svc.lock);
}

void sweep_stop_background(void)
{
    service_stop(&background.svc);
}

void sweep_fork(enum fork_phase phase)
{
    fork_mutex(&background.svc.lock, phase);
    fork_cond(&background.svc.wake, phase);
    if (phase == FORK_CHILD) {
        background.svc.running = false;
        background.requested = false;
        /* prepare finished sweeping, so no sweep was in flight */
        atomic_store_explicit(&active_sweepers, 0, memory_order_relaxed);
    }
}
