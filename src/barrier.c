/*
 * barrier.c — the out-of-line part of the write barrier and the bulk
 * barrier of gc_memmove (Go's mbarrier.go).
 *
 * The hybrid barrier shades both the pointer being overwritten (Yuasa
 * deletion) and the pointer being written (Dijkstra insertion), with no test
 * of the holder's colour (invariant 2). The flag that enables it is off in
 * the stop-the-world collector, where no mutator runs during marking, so
 * the slow path is reached only if a future concurrent mark turns it on.
 */
#include "mark.h"

#include <cgc.h>
#include <string.h>

atomic_int gc_internal_barrier_enabled;

void gc_write_barrier_slow(void *const *slot, const void *value)
{
    if (!mark_in_progress())
        return;
    mark_shade((uintptr_t)*slot);
    mark_shade((uintptr_t)value);
}

void gc_memmove(void *dst, const void *src, size_t n)
{
    if (n && atomic_load_explicit(&gc_internal_barrier_enabled,
                                  memory_order_relaxed) &&
        mark_in_progress()) {
        /* Shade every word that may be a pointer, old and new. */
        uintptr_t d = round_up((uintptr_t)dst, sizeof(void *));
        for (; d + sizeof(void *) <= (uintptr_t)dst + n; d += sizeof(void *))
            mark_shade(*(const uintptr_t *)d);
        uintptr_t s = round_up((uintptr_t)src, sizeof(void *));
        for (; s + sizeof(void *) <= (uintptr_t)src + n; s += sizeof(void *))
            mark_shade(*(const uintptr_t *)s);
    }
    memmove(dst, src, n);
}
