/*
 * alloc.c — the allocation functions of the public API (Go's malloc.go).
 *
 * Small objects (up to 32 KiB) come from the calling thread's cached span
 * of their span class: a ctz on the span's alloc-bit cache, no lock. When
 * the span runs out, the slow path (cache_refill) may first run a
 * collection the pacer asks for. Large objects get a span of their own from
 * the page heap after sweeping enough pages to make room; one larger than
 * the machine's RAM + swap (os_backable_bytes) fails with ENOMEM at once.
 *
 * Zeroing: spans fresh from the OS are zero; a reused span (needzero) is
 * zeroed slot by slot on allocation, except for noscan objects, whose
 * contents the caller owns (design §4).
 */
#include "cache.h"
#include "central.h"
#include "fork.h"
#include "gc.h"
#include "heap.h"
#include "mark.h"
#include "os.h"
#include "pacer.h"
#include "report.h"
#include "sweep.h"
#include "threads.h"

#include <cgc.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void count_small(struct gc_thread *t, unsigned size_class)
{
    /* Only this thread writes its counters: load + store, no lock prefix. */
    _Atomic uint64_t *c = &t->mallocs[size_class];
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* The guard against re-entry from a signal handler. Allocation is not
 * async-signal-safe: a handler that allocates while the code it interrupted
 * is inside an allocation function would either take the same slot of a
 * cached span (the fast path is a read-modify-write of the span's alloc
 * cache) or wait for a lock the interrupted code holds, forever. The whole
 * allocation is guarded, fast path included, because the first case
 * corrupts the heap silently. The cost is a load, a test and two plain
 * stores to the thread's record, which the fast path has in hand; the
 * signal fences only keep the compiler from moving the allocation's own
 * accesses out of the guarded section. */
static CGC_NOINLINE _Noreturn void report_reentry(const char *call)
{
    report_fatal("%s: called from a signal handler that interrupted the "
                 "allocator (allocation is not async-signal-safe); allocate "
                 "outside signal handlers or block the signal around "
                 "allocation",
                 call);
}

static inline void allocator_enter(struct gc_thread *t, const char *call)
{
    if (unlikely(t->in_allocator))
        report_reentry(call);
    t->in_allocator = 1;
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void allocator_leave(struct gc_thread *t)
{
    atomic_signal_fence(memory_order_seq_cst);
    t->in_allocator = 0;
}

static void check_running(struct gc_thread *t)
{
    if (atomic_load_explicit(&t->state, memory_order_relaxed) != THREAD_RUNNING)
        report_fatal("gc_alloc: called inside a blocking region; call "
                     "gc_blocking_end first");
}

/* The slow path's share of pacing: ask for a cycle when the trigger is
 * reached, and while marking runs pay for `bytes` with mark work. */
static void pace(struct gc_thread *t, uint64_t bytes)
{
    gc_safepoint();
    gc_collect_if_due(t);
    if (atomic_load_explicit(&gc_internal_barrier_enabled,
                             memory_order_relaxed))
        gc_assist(t, bytes);
}

static CGC_NOINLINE struct span *refill(struct gc_thread *t,
                                        unsigned span_class)
{
    check_running(t);
    unsigned size_class = span_class / NUM_KINDS;
    pace(t, (uint64_t)size_classes[size_class].npages * PAGE_SIZE);
    return cache_refill(&t->cache, span_class);
}

static void *alloc_small(struct gc_thread *t, size_t size,
                         enum object_kind kind, const struct gc_type *type)
{
    unsigned size_class = size_to_class(size);
    unsigned span_class = span_class_of(size_class, kind);
    struct span *s = t->cache.spans[span_class];
    uint32_t idx;
    if (unlikely(!span_next_free(s, &idx))) {
        s = refill(t, span_class);
        if (!s || !span_next_free(s, &idx)) {
            errno = ENOMEM;
            return NULL;
        }
    }
    void *p = (void *)(s->base + (uintptr_t)idx * s->elem_size);
    if (kind != KIND_NOSCAN && s->needzero)
        memset(p, 0, s->elem_size);
    if (kind == KIND_TYPED)
        s->types[idx] = type;
    /* While marking, the slot is black already: its span was blackened
     * when it entered the cache (cache.c). */
    count_small(t, size_class);
    gc_safepoint();
    return p;
}

static CGC_NOINLINE void *alloc_large(struct gc_thread *t, size_t size,
                                      enum object_kind kind,
                                      const struct gc_type *type)
{
    /* Like malloc under Linux's heuristic overcommit: a request the machine
     * could never back fails at once, instead of mapping address space and
     * metadata for it (gigabytes for 2^44 bytes) and having every cycle
     * scan it. */
    if (size > MAX_ALLOC_SIZE || size > os_backable_bytes()) {
        errno = ENOMEM;
        return NULL;
    }
    size_t npages = round_up(size, PAGE_SIZE) / PAGE_SIZE;
    check_running(t);
    pace(t, npages * PAGE_SIZE);
    pacer_note_allocation((int64_t)(npages * PAGE_SIZE));
    sweep_reclaim_pages(npages);
    struct span *s = heap_alloc_span(npages, span_class_of(0, kind));
    if (!s) {
        pacer_note_allocation(-(int64_t)(npages * PAGE_SIZE));
        errno = ENOMEM;
        return NULL;
    }
    if (kind != KIND_NOSCAN && s->needzero)
        memset((void *)s->base, 0, s->elem_size);
    if (kind == KIND_TYPED)
        s->types[0] = type;
    if (atomic_load_explicit(&gc_internal_barrier_enabled,
                             memory_order_relaxed)) {
        /* Objects allocated while marking are black (invariant 3). */
        mark_allocated_black(s, 0);
        mark_count_black_bytes(s->elem_size);
    }
    /* The object exists once free_index covers it. */
    atomic_store_explicit(&s->free_index, 1, memory_order_release);
    s->alloc_cache = 0;
    s->alloc_count = 1;
    central_release(s);
    atomic_store_explicit(
        &t->mallocs[0],
        atomic_load_explicit(&t->mallocs[0], memory_order_relaxed) + 1,
        memory_order_relaxed);
    atomic_store_explicit(
        &t->large_bytes,
        atomic_load_explicit(&t->large_bytes, memory_order_relaxed) +
            s->elem_size,
        memory_order_relaxed);
    return (void *)s->base;
}

static void *alloc_object(size_t size, enum object_kind kind,
                          const struct gc_type *type, const char *call)
{
    struct gc_thread *t = thread_current_or_attach();
    if (unlikely(!t)) {
        errno = ENOMEM;
        return NULL;
    }
    allocator_enter(t, call);
    /* Inside cgc while the span cache is updated: a preemption signal must
     * not stop the thread with its cache half-written (threads.h). */
    threads_library_enter(t);
    void *p = likely(size <= MAX_SMALL_SIZE)
                  ? alloc_small(t, size ? size : 1, kind, type)
                  : alloc_large(t, size, kind, type);
    threads_library_leave(t);
    allocator_leave(t);
    return p;
}

void *gc_alloc(size_t size)
{
    return alloc_object(size, KIND_SCAN, NULL, "gc_alloc");
}

void *gc_alloc_noscan(size_t size)
{
    return alloc_object(size, KIND_NOSCAN, NULL, "gc_alloc_noscan");
}

void *gc_alloc_typed(size_t size, const gc_type *t)
{
    if (!t || size < t->size) {
        errno = EINVAL;
        return NULL;
    }
    return alloc_object(size, KIND_TYPED, t, "gc_alloc_typed");
}

void *gc_calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return gc_alloc(total);
}

static CGC_STATE pthread_mutex_t all_types_lock = PTHREAD_MUTEX_INITIALIZER;
static CGC_STATE struct gc_type *all_types;

static int compare_offsets(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

const gc_type *gc_type_new(size_t size, const size_t *ptr_offsets,
                           size_t n_ptrs)
{
    if (size == 0 || (n_ptrs > 0 && !ptr_offsets) ||
        n_ptrs > size / sizeof(void *)) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < n_ptrs; i++) {
        size_t off = ptr_offsets[i];
        if (off % sizeof(void *) || off > size - sizeof(void *) ||
            size < sizeof(void *)) {
            errno = EINVAL;
            return NULL;
        }
    }
    struct gc_type *t = malloc(sizeof *t + n_ptrs * sizeof(size_t));
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    t->size = size;
    t->n_ptrs = n_ptrs;
    if (n_ptrs)
        memcpy(t->ptr_offsets, ptr_offsets, n_ptrs * sizeof(size_t));
    qsort(t->ptr_offsets, n_ptrs, sizeof(size_t), compare_offsets);
    /* Descriptors are immortal: keep them all reachable from a global so
     * that leak checkers do not report a type the program stopped naming. */
    pthread_mutex_lock(&all_types_lock);
    t->next_created = all_types;
    all_types = t;
    pthread_mutex_unlock(&all_types_lock);
    return t;
}

/* The live object that starts exactly at p; NULL otherwise. */
static struct span *object_at(const void *p, uint32_t *idx)
{
    if (!p || !gc_initialized())
        return NULL;
    struct span *s = object_lookup((uintptr_t)p, idx);
    if (!s || s->base + (uintptr_t)*idx * s->elem_size != (uintptr_t)p)
        return NULL;
    return s;
}

static void *realloc_object(void *p, size_t size)
{
    if (!p)
        return gc_alloc(size);
    uint32_t idx;
    struct span *s = object_at(p, &idx);
    if (!s) {
        errno = EINVAL;
        return NULL;
    }
    enum object_kind kind = (enum object_kind)s->kind;
    const struct gc_type *type = kind == KIND_TYPED ? s->types[idx] : NULL;
    size_t old_size = s->elem_size;
    if (size <= old_size && size > old_size / 2 && size > 0) {
        /* Fits, and moving would not save much. Clear the tail so that a
         * later grow reads zeros and stale pointers retain nothing. */
        if (kind != KIND_NOSCAN)
            memset((char *)p + size, 0, old_size - size);
        return p;
    }
    if (type && size < type->size)
        size = type->size;
    void *q = alloc_object(size, kind, type, "gc_realloc");
    if (!q)
        return NULL;
    memcpy(q, p, size < old_size ? size : old_size);
    return q;
}

void *gc_realloc(void *p, size_t size)
{
    struct gc_thread *self = threads_enter_library();
    void *q = realloc_object(p, size);
    threads_leave_library(self);
    return q;
}

char *gc_strdup(const char *s)
{
    if (!s) {
        errno = EINVAL;
        return NULL;
    }
    size_t len = strlen(s) + 1;
    char *copy = gc_alloc_noscan(len);
    if (copy)
        memcpy(copy, s, len);
    return copy;
}

static void free_object(void *p)
{
    uint32_t idx;
    struct span *s = object_at(p, &idx);
    if (!s) {
        report_warning("gc_free(%p): not the start of a live GC object (a "
                       "stack, static or malloc address, an interior "
                       "pointer, or an object already freed); ignored",
                       p);
        return;
    }
    _Atomic uint64_t *freed =
        atomic_load_explicit(&s->freed_bits, memory_order_acquire);
    if (!freed) {
        /* The heap lock is taken here: guarded like an allocation. */
        struct gc_thread *t = thread_current();
        if (t)
            allocator_enter(t, "gc_free");
        _Atomic uint64_t *fresh = heap_meta_alloc(FREED_BITS_BYTES);
        if (fresh && atomic_compare_exchange_strong_explicit(
                         &s->freed_bits, &freed, fresh, memory_order_acq_rel,
                         memory_order_acquire))
            freed = fresh;
        else if (fresh)
            heap_meta_free((void *)fresh, FREED_BITS_BYTES);
        if (t)
            allocator_leave(t);
        if (!fresh)
            return; /* cannot record it: the collector will free it */
    }
    uint64_t bit = (uint64_t)1 << (idx % 64);
    if (atomic_fetch_or_explicit(&freed[idx / 64], bit, memory_order_relaxed) &
        bit)
        report_warning("gc_free(%p): object already freed (double free); "
                       "ignored",
                       p);
}

void gc_free(void *p)
{
    if (!p)
        return;
    struct gc_thread *self = threads_enter_library();
    free_object(p);
    threads_leave_library(self);
}

size_t gc_size(const void *p)
{
    uint32_t idx;
    if (!p || !gc_initialized())
        return 0;
    struct span *s = object_lookup((uintptr_t)p, &idx);
    return s ? s->elem_size : 0;
}

void *gc_base(const void *p)
{
    uint32_t idx;
    if (!p || !gc_initialized())
        return NULL;
    struct span *s = object_lookup((uintptr_t)p, &idx);
    return s ? (void *)(s->base + (uintptr_t)idx * s->elem_size) : NULL;
}

void alloc_fork(enum fork_phase phase)
{
    fork_mutex(&all_types_lock, phase);
}
