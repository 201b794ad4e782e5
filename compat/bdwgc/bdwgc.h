/*
 * bdwgc.h — what the files of the Boehm layer share (compat/bdwgc).
 *
 * The layer maps bdwgc's API onto cgc's public API plus a few internal
 * hooks (stop-the-world default, the warning handler, finalizer
 * replacement, one-span sweeping). Its own state: the variables a Boehm
 * program reads and writes directly (GC_dont_gc, ...), which bdwgc_sync
 * turns into cgc settings whenever they changed; the table of
 * uncollectable objects; the GC_add_roots ranges.
 */
#ifndef CGC_BDWGC_INTERNAL_H
#define CGC_BDWGC_INTERNAL_H

#include "gc.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* Initialise on first use (any GC_ call may be the first). */
void bdwgc_init_slow(void);
extern atomic_bool bdwgc_initialized;
static inline void bdwgc_ensure_init(void)
{
    if (!atomic_load_explicit(&bdwgc_initialized, memory_order_acquire))
        bdwgc_init_slow();
}

/* Bytes added to every object so that a pointer just past its end keeps
 * it alive (bdwgc's EXTRA_BYTES): 1 if GC_all_interior_pointers was set at
 * GC_init, else 0. Written once by init. */
extern size_t bdwgc_extra_bytes;

/* Apply GC_dont_gc and GC_free_space_divisor if the program changed them
 * since the last look: two loads and compares when nothing changed. */
void bdwgc_sync_slow(void);
extern int bdwgc_seen_dont_gc;
extern GC_word bdwgc_seen_divisor;
static inline void bdwgc_sync(void)
{
    if (__atomic_load_n(&GC_dont_gc, __ATOMIC_RELAXED) !=
            __atomic_load_n(&bdwgc_seen_dont_gc, __ATOMIC_RELAXED) ||
        __atomic_load_n(&GC_free_space_divisor, __ATOMIC_RELAXED) !=
            __atomic_load_n(&bdwgc_seen_divisor, __ATOMIC_RELAXED))
        bdwgc_sync_slow();
}

/* What an allocation does besides allocating: run the finalizers that are
 * ready (bdwgc runs them from allocations unless GC_finalize_on_demand) or
 * tell the notifier about them. */
void bdwgc_finalizers_after_allocation(void);

/* The out-of-memory path of every allocation: the program's oom function. */
void *bdwgc_out_of_memory(size_t bytes);

/* Uncollectable objects (uncollectable.c): kept reachable from a table
 * that is a root. */
void *bdwgc_uncollectable_alloc(size_t bytes, bool atomic);
bool bdwgc_uncollectable_remove(void *p); /* false if p is not one */
bool bdwgc_is_uncollectable(void *p);
/* A new uncollectable object of the same kind with p's contents (as far as
 * they fit); p is freed. NULL if memory ran out (p is kept then). */
void *bdwgc_uncollectable_realloc(void *p, size_t bytes);

/* Warnings (warn.c): route cgc's warnings to the program's warn proc. */
void bdwgc_warn_init(void);
/* Counters for GC_get_bytes_since_gc (collect.c), set at each cycle's end
 * by the event handler that also updates GC_gc_no. */
void bdwgc_collect_init(void);

#endif
