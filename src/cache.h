/*
 * cache.h — the per-thread allocation cache (Go's mcache): one active span
 * per span class, owned by its thread, so allocation takes no lock.
 */
#ifndef CGC_CACHE_H
#define CGC_CACHE_H

#include "heap.h"

struct cache {
    struct span *spans[NUM_SPAN_CLASSES]; /* &cache_empty_span when none */
};

/* A span with no free slot, standing in for "no span" so that the fast path
 * needs no NULL test. */
extern struct span cache_empty_span;

void cache_init(struct cache *c);

/* Replace the span of span_class by one with a free slot. Returns it, or
 * NULL if memory runs out (the cache then holds no span of that class). */
struct span *cache_refill(struct cache *c, unsigned span_class);

/* Give every cached span back to the central lists. */
void cache_release_all(struct cache *c);

/* Marking starts (world stopped): every slot a cached span will hand out
 * from now on is black. */
void cache_blacken_all(struct cache *c);

/* Take the next free slot of a cached span; false if it has none left. */
bool span_next_free_slow(struct span *s, uint32_t *idx);

static inline bool span_next_free(struct span *s, uint32_t *idx)
{
    uint64_t bits = s->alloc_cache;
    if (likely(bits != 0)) {
        uint32_t i = s->cache_base + (uint32_t)__builtin_ctzll(bits);
        s->alloc_cache = bits & (bits - 1);
        /* Relaxed: a marker that reads a stale value misses only slots
         * handed out while marking, which are black (cache.c). */
        atomic_store_explicit(&s->free_index, i + 1, memory_order_relaxed);
        *idx = i;
        return true;
    }
    return span_next_free_slow(s, idx);
}

#endif
