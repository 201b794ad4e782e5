/*
 * barrier.c — the out-of-line part of the write barrier, its per-thread
 * buffer, and the bulk barrier of gc_memmove (Go's mbarrier.go, mwbbuf.go).
 *
 * The hybrid barrier shades both the pointer being overwritten (Yuasa
 * deletion) and the pointer being written (Dijkstra insertion), with no test
 * of the holder's colour (invariant 2: a colour test would need a
 * store-load fence between the mutator's store and the marker's scan).
 * Shading is deferred: entries go to the thread's buffer and are greyed when
 * it is flushed, which the termination protocol guarantees happens before
 * marking ends (gc.c).
 *
 * gc_internal_barrier_enabled is written only with the world stopped; a
 * thread reads it relaxed, and sees the new value after the handshake that
 * restarts it (a mutex or seq_cst pair in threads.c).
 */
#include "barrier.h"

#include "heap.h"
#include "mark.h"
#include "threads.h"

#include <cgc.h>
#include <string.h>

CGC_STATE atomic_int gc_internal_barrier_enabled;

void barrier_enable(bool on)
{
    atomic_store_explicit(&gc_internal_barrier_enabled, on,
                          memory_order_relaxed);
}

unsigned barrier_flush(struct gc_thread *t)
{
    unsigned n = t->barrier_count;
    if (n == 0)
        return 0;
    struct marker m;
    mark_helper_begin(&m);
    for (unsigned i = 0; i < n; i++)
        mark_grey(&m, t->barrier_buffer[i]);
    mark_helper_end(&m);
    t->barrier_count = 0;
    return n;
}

static inline bool maybe_heap(uintptr_t p)
{
    return p >= atomic_load_explicit(&heap_min_address, memory_order_relaxed) &&
           p < atomic_load_explicit(&heap_max_address, memory_order_relaxed);
}

static inline void record(struct gc_thread *t, uintptr_t p)
{
    if (!maybe_heap(p))
        return;
    if (unlikely(t->barrier_count == BARRIER_BUFFER_ENTRIES))
        barrier_flush(t);
    t->barrier_buffer[t->barrier_count++] = p;
}

/* The slot may be written by another thread at the same time (a data race
 * in the program, or a racy publication pattern): read it as raw bits. */
__attribute__((no_sanitize("thread"))) static uintptr_t
read_slot(const void *slot)
{
    return *(const uintptr_t *)slot;
}

void gc_write_barrier_slow(void *const *slot, const void *value)
{
    if (!atomic_load_explicit(&gc_internal_barrier_enabled,
                              memory_order_relaxed))
        return;
    struct gc_thread *t = thread_current_or_attach();
    if (!t)
        return;
    /* A signal must not stop us with the buffer half-appended. */
    threads_library_enter(t);
    record(t, read_slot(slot));
    record(t, (uintptr_t)value);
    threads_library_leave(t);
}

void gc_memmove(void *dst, const void *src, size_t n)
{
    if (n && atomic_load_explicit(&gc_internal_barrier_enabled,
                                  memory_order_relaxed)) {
        struct gc_thread *t = thread_current_or_attach();
        if (t) {
            threads_library_enter(t);
            /* Shade every word that may be a pointer, old and new. */
            uintptr_t d = round_up((uintptr_t)dst, sizeof(void *));
            for (; d + sizeof(void *) <= (uintptr_t)dst + n;
                 d += sizeof(void *))
                record(t, read_slot((const void *)d));
            uintptr_t s = round_up((uintptr_t)src, sizeof(void *));
            for (; s + sizeof(void *) <= (uintptr_t)src + n;
                 s += sizeof(void *))
                record(t, read_slot((const void *)s));
            threads_library_leave(t);
        }
    }
    memmove(dst, src, n);
}
