/*
 * cache.c — refilling and releasing the per-thread span cache.
 *
 * A span in a cache belongs to its thread: only that thread moves its
 * allocation cursor. Refill accounts the whole free part of the new span as
 * live for the pacer (as Go does), and release takes back what was not used,
 * so heap_live never lags behind what threads can allocate without a lock.
 */
#include "cache.h"

#include "central.h"
#include "pacer.h"
#include "sweep.h"

struct span cache_empty_span = {.nelems = 0, .alloc_cache = 0};

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
        uint64_t valid = remaining >= 64 ? ~(uint64_t)0
                                         : (((uint64_t)1 << remaining) - 1);
        s->alloc_cache = ~atomic_load_explicit(
                             &s->alloc_bits[s->cache_base / 64],
                             memory_order_relaxed) &
                         valid;
        if (s->alloc_cache)
            return span_next_free(s, idx);
    }
    return false;
}

/* Free slots a cached span has left: those at or after the cursor. */
static uint32_t span_free_slots(const struct span *s)
{
    uint32_t n = (uint32_t)__builtin_popcountll(s->alloc_cache);
    for (uint32_t base = s->cache_base + 64; base < s->nelems; base += 64) {
        uint32_t remaining = s->nelems - base;
        uint64_t valid = remaining >= 64 ? ~(uint64_t)0
                                         : (((uint64_t)1 << remaining) - 1);
        n += (uint32_t)__builtin_popcountll(
            ~atomic_load_explicit(&s->alloc_bits[base / 64],
                                  memory_order_relaxed) &
            valid);
    }
    return n;
}

static void release(struct span *s)
{
    uint32_t unused = span_free_slots(s);
    s->alloc_count = s->nelems - unused;
    pacer_note_allocation(-(int64_t)((size_t)unused * s->elem_size));
    central_release(s);
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
