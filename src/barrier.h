/*
 * barrier.h — the write barrier's per-thread buffer (Go's wbBuf).
 *
 * While marking runs, GC_WRITE's slow path records the pointer it overwrites
 * and the pointer it writes into the calling thread's buffer; a full buffer,
 * a safepoint asked to flush, the collector (for a stopped or blocked
 * thread) and thread exit flush it: every recorded pointer is greyed.
 */
#ifndef CGC_BARRIER_H
#define CGC_BARRIER_H

#include <stdbool.h>

struct gc_thread;

/* Grey everything in t's buffer and empty it. t is the calling thread, or
 * stopped, or claimed by the caller. Returns the number of entries. */
unsigned barrier_flush(struct gc_thread *t);

/* Turn the barrier (and allocate-black) on or off. World stopped. */
void barrier_enable(bool on);

#endif
