/*
 * heap.h — the page heap: arenas, spans and the arena index.
 *
 * A span is a run of pages holding objects of one span class (size class and
 * kind), or one large object. Its record lives outside the heap, in memory
 * that is never unmapped, so a stale span pointer read by a marker is always
 * safe to dereference; whether it still describes the address is checked by
 * bounds and state.
 *
 * Ownership of span fields:
 *  - base, npages, span_class, elem_size, nelems, magic, kind: written by the
 *    heap (under heap_lock) before the span is published by a release store
 *    of `state`; read-only while SPAN_IN_USE.
 *  - free_index, cache_base, alloc_cache, needzero: the allocation cursor,
 * owned by whoever holds the span off-list: the thread whose cache holds it, or
 *    the sweeper that claimed it through sweepgen. free_index is atomic
 *    because markers read it to tell allocated slots from free ones.
 *  - alloc_bits: written only by the sweeper holding the span; read by
 *    markers. mark_bits: set by markers with atomic OR, cleared by the
 *    sweeper. freed_bits: set by gc_free with atomic OR.
 *  - sweepgen: see sweep.h.
 *  - next/prev: owned by the list the span is on (central or free list).
 */
#ifndef CGC_HEAP_H
#define CGC_HEAP_H

#include "internal.h"
#include "sizeclass.h"

#include <pthread.h>
#include <stdatomic.h>

enum span_state {
    SPAN_FREE = 0,   /* in the page heap's free lists */
    SPAN_IN_USE = 1, /* holds objects */
};

struct span {
    uintptr_t base;
    size_t npages;
    size_t elem_size; /* object size; for a large span its usable size */
    uint32_t nelems;
    uint32_t magic;
    uint16_t span_class;
    uint8_t kind;
    uint8_t needzero;    /* memory may hold old data: zero on allocation */
    uint8_t released;    /* free span whose pages were given back to the OS */
    uint8_t releasing;   /* off the free lists while being released */
    uint8_t black;       /* cached while marking: its free slots are marked */
    uint32_t black_free; /* free slots when they were marked black */
    _Atomic uint8_t state;

    _Atomic uint32_t sweepgen;
    _Atomic uint32_t free_index; /* slots below were handed out or live */
    uint32_t cache_base;         /* first slot covered by alloc_cache */
    uint32_t alloc_count;        /* live objects as of the last sweep */
    uint64_t alloc_cache;        /* free slots from cache_base not yet used */

    /* One metadata block sized to the span's object count: alloc bits,
     * then mark bits (bitmap_words each). Allocated and freed with the
     * span, under heap_lock; never unmapped, so a stale read is safe. */
    _Atomic uint64_t *alloc_bits;
    _Atomic uint64_t *mark_bits;
    /* Set on the first gc_free into this span; cleared by its sweep. */
    _Atomic(_Atomic uint64_t *) freed_bits;
    /* KIND_TYPED spans: the type of each object slot. */
    const struct gc_type **types;
    /* Finalizers of this span's objects (finalize.c, under its lock);
     * has_finalizers is set under that lock when one is added and read
     * relaxed by the span's sweeper, which then takes the lock. */
    struct finalizer *finalizers;
    _Atomic uint8_t has_finalizers;
    /* Weak pointers to this span's objects (weak.c), likewise. */
    struct weak_record *weaks;
    _Atomic uint8_t has_weaks;
    /* Ephemerons whose handles live in this span (ephemeron.c), likewise. */
    struct ephemeron_record *ephemerons;
    _Atomic uint8_t has_ephemerons;

    struct span *next, *prev;
};

struct arena {
    _Atomic(struct span *) spans[PAGES_PER_ARENA]; /* page -> span */
};

/* Bounds of all heap memory so far: a cheap first filter for candidates. */
extern _Atomic uintptr_t heap_min_address, heap_max_address;
extern _Atomic(struct arena *) *arena_index;

int heap_init(void);
void heap_shutdown(void);

/* Allocate a span of npages pages for span class `span_class` (size class 0:
 * one large object filling the span). The span comes back initialised and
 * published as SPAN_IN_USE with no slot allocated, sweepgen current, on no
 * list. NULL when the OS refuses memory or metadata runs out. */
struct span *heap_alloc_span(size_t npages, unsigned span_class);
/* Return a span's pages to the page heap. The caller owns the span (it is on
 * no list) and no marking is in progress. */
void heap_free_span(struct span *s);

/* Give free pages back to the OS (largest free runs first) until about
 * `bytes` were released or none is left; returns the bytes released. */
uint64_t heap_release_free(uint64_t bytes);

/* Zeroed metadata blocks of up to 8 KiB from mapped memory; NULL if the OS
 * refuses. Thread-safe. */
void *heap_meta_alloc(size_t bytes);
void heap_meta_free(void *p, size_t bytes);
#define FREED_BITS_BYTES (SPAN_BITMAP_WORDS * sizeof(uint64_t))

/* Byte counters for stats (atomics, relaxed: statistics only). */
struct heap_counters {
    uint64_t sys;      /* arena bytes mapped */
    uint64_t inuse;    /* bytes in in-use spans */
    uint64_t released; /* bytes of free spans given back to the OS */
    uint64_t meta;     /* metadata bytes mapped */
};
void heap_read_counters(struct heap_counters *out);
/* Count metadata bytes obtained elsewhere (thread records, work buffers). */
void heap_count_metadata(int64_t bytes);

/* The span an address falls into, if any (any state): O(1). */
static inline struct span *span_lookup(uintptr_t p)
{
    if (p < atomic_load_explicit(&heap_min_address, memory_order_relaxed) ||
        p >= atomic_load_explicit(&heap_max_address, memory_order_relaxed))
        return NULL;
    struct arena *a = atomic_load_explicit(&arena_index[p >> ARENA_SHIFT],
                                           memory_order_acquire);
    if (!a)
        return NULL;
    return atomic_load_explicit(
        &a->spans[(p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)],
        memory_order_acquire);
}

/* Object index of an offset inside a span, by multiply (design §4). */
static inline uint32_t span_object_index(const struct span *s, uintptr_t off)
{
    return (uint32_t)(((uint64_t)off * s->magic) >> 32);
}

static inline bool bitmap_test(_Atomic uint64_t *bits, uint32_t i)
{
    return (atomic_load_explicit(&bits[i / 64], memory_order_relaxed) >>
            (i % 64)) &
           1;
}

/* Whether slot idx holds an allocated object (not yet freed by a sweep). */
static inline bool span_slot_allocated(struct span *s, uint32_t idx)
{
    if (idx < atomic_load_explicit(&s->free_index, memory_order_relaxed))
        return true;
    return bitmap_test(s->alloc_bits, idx);
}

/* Whether slot idx was freed explicitly with gc_free since the last sweep. */
static inline bool span_slot_freed(struct span *s, uint32_t idx)
{
    _Atomic uint64_t *freed =
        atomic_load_explicit(&s->freed_bits, memory_order_acquire);
    return freed && bitmap_test(freed, idx);
}

/* The live object p points into: its span and slot, or NULL. Checks span
 * state, bounds, alloc bits and explicit frees (invariant 4). */
static inline struct span *object_lookup(uintptr_t p, uint32_t *idx_out)
{
    struct span *s = span_lookup(p);
    if (!s ||
        atomic_load_explicit(&s->state, memory_order_acquire) != SPAN_IN_USE)
        return NULL;
    uintptr_t off = p - s->base;
    uint32_t idx;
    if (s->nelems == 1) {
        /* One object (a large one, or a big size class): the span's tail
         * past elem_size is waste, not part of the object. */
        if (off >= s->elem_size)
            return NULL;
        idx = 0;
    } else {
        if (off >= s->npages * PAGE_SIZE)
            return NULL;
        idx = span_object_index(s, off);
        if (idx >= s->nelems)
            return NULL;
    }
    if (!span_slot_allocated(s, idx) || span_slot_freed(s, idx))
        return NULL;
    *idx_out = idx;
    return s;
}

#endif
