/*
 * cache.c — refilling and releasing the per-thread span cache.
 *
 * A span in a cache belongs to its thread: only that thread moves its
 * allocation cursor. Refill accounts the whole free part of the new span as
 * live for the pacer (as Go does), and release takes back what was not used,
 * so heap_live never lags behind what threads can allocate without a lock.
 *
 * Allocate-black by span: while marking runs, a span entering a cache (and,
 * at STW 1, every span already cached) has all the free slots its cursor
 * will hand out marked at once, so the allocation fast path marks nothing.
 * When the span leaves the cache, the slots it did not hand out are
 * unmarked again, so the sweeper never sees a marked free slot. Every cached
 * span leaves its cache at STW 2 at the latest, before the flip.
 */
#include "cache.h"

#include "central.h"
#include "mark.h"
#include "pacer.h"
#include "sweep.h"

#include <cgc.h>

CGC_STATE struct span cache_empty_span = {.nelems = 0, .alloc_cache = 0};

void cache_init(struct cache *c)
{
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++)
        c->spans[i] = &cache_empty_span;
}

bool span_next_free_slow(struct span *s, uint32_t *idx)
{
    /* alloc_cache ran out: load the next bitmap word that has a free slot. */
    while (s->cache_base + 64 < s->nelems) {
        s->cache_base += 64;
        uint32_t remaining = s->nelems - s->cache_base;
        uint64_t valid =
            remaining >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << remaining) - 1);
        s->alloc_cache =
            ~atomic_load_explicit(&s->alloc_bits[s->cache_base / 64],
                                  memory_order_relaxed) &
            valid;
        if (s->alloc_cache)
            return span_next_free(s, idx);
    }
    return false;
}

/* The free slots a cached span will still hand out, word by word: the
 * alloc cache for the cursor's word, the clear alloc bits after it. */
static uint64_t free_slots_in_word(const struct span *s, uint32_t base)
{
    if (base == s->cache_base)
        return s->alloc_cache;
    uint32_t remaining = s->nelems - base;
    uint64_t valid =
        remaining >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << remaining) - 1);
    return ~atomic_load_explicit(&s->alloc_bits[base / 64],
                                 memory_order_relaxed) &
           valid;
}

static uint32_t span_free_slots(const struct span *s)
{
    uint32_t n = 0;
    for (uint32_t base = s->cache_base; base < s->nelems; base += 64)
        n += (uint32_t)__builtin_popcountll(free_slots_in_word(s, base));
    return n;
}

/* Mark (black) or unmark (white) the slots the cursor has yet to hand out. */
static void paint_free_slots(struct span *s, bool black)
{
    for (uint32_t base = s->cache_base; base < s->nelems; base += 64) {
        uint64_t free = free_slots_in_word(s, base);
        if (!free)
            continue;
        if (black)
            atomic_fetch_or_explicit(&s->mark_bits[base / 64], free,
                                     memory_order_relaxed);
        else
            atomic_fetch_and_explicit(&s->mark_bits[base / 64], ~free,
                                      memory_order_relaxed);
    }
}

static void blacken(struct span *s)
{
    if (s == &cache_empty_span || s->black)
        return;
    paint_free_slots(s, true);
    s->black = 1;
    s->black_free = span_free_slots(s);
}

static void release(struct span *s)
{
    uint32_t unused = span_free_slots(s);
    if (s->black) {
        paint_free_slots(s, false);
        s->black = 0;
        mark_count_black_bytes((uint64_t)(s->black_free - unused) *
                               s->elem_size);
    }
    s->alloc_count = s->nelems - unused;
    pacer_note_allocation(-(int64_t)((size_t)unused * s->elem_size));
    central_release(s);
}

void cache_blacken_all(struct cache *c)
{
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++)
        blacken(c->spans[i]);
}

struct span *cache_refill(struct cache *c, unsigned span_class)
{
    struct span *old = c->spans[span_class];
    if (old != &cache_empty_span) {
        c->spans[span_class] = &cache_empty_span;
        release(old);
    }
    struct span *s = central_acquire(span_class);
    if (!s) {
        /* Before taking fresh pages, sweep other classes until as many
         * pages came free (Go's mheap.reclaim): unswept garbage is reused
         * before the heap grows. */
        unsigned size_class = span_class / NUM_KINDS;
        size_t npages = size_classes[size_class].npages;
        sweep_reclaim_pages(npages);
        s = heap_alloc_span(npages, span_class);
        if (!s)
            return NULL;
    }
    uint32_t free_slots = span_free_slots(s);
    pacer_note_allocation((int64_t)((size_t)free_slots * s->elem_size));
    if (atomic_load_explicit(&gc_internal_barrier_enabled,
                             memory_order_relaxed))
        blacken(s);
    c->spans[span_class] = s;
    return s;
}

void cache_release_all(struct cache *c)
{
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++) {
        if (c->spans[i] != &cache_empty_span) {
            release(c->spans[i]);
            c->spans[i] = &cache_empty_span;
        }
    }
}
