/*
 * mark.h — marking: grey work buffers shared between markers, conservative,
 * typed and noscan object scanning, and the mark worker threads (Go's
 * mgcmark.go and mgcwork.go).
 *
 * A marker (a worker thread or the collecting thread) owns a local work
 * buffer of grey objects. Full buffers go to a global list that idle markers
 * take from; a marker with plenty of work donates half when another is idle.
 * Marking ends when every marker is idle and the global list is empty.
 *
 * Mark bits are set with atomic OR (relaxed: a bit is only ever set during
 * marking, and whoever sets it first scans the object; the world is stopped,
 * so object contents are stable). The grey set is published between markers
 * under the work lock, which orders the pushes before the pops.
 */
#ifndef CGC_MARK_H
#define CGC_MARK_H

#include "heap.h"

struct marker;

int mark_init(unsigned workers);
void mark_shutdown(void);
unsigned mark_worker_count(void);

/* Results of one marking phase. */
struct mark_result {
    uint64_t marked_bytes;
    uint64_t cpu_ns; /* CPU time of all markers */
    unsigned markers;
};

/* Run a whole mark phase: `roots` is called on the collecting thread's
 * marker to grey the roots while the worker threads wait for work, then
 * every marker drains until none is left. */
void mark_run(void (*roots)(struct marker *m, void *arg), void *arg,
              struct mark_result *out);

/* Grey every pointer-looking word of [lo, hi) (8-byte aligned words). */
void mark_scan_conservative(struct marker *m, uintptr_t lo, uintptr_t hi);

/* Whether a mark phase is running (for the write barrier). */
bool mark_in_progress(void);
/* Shade one pointer from a mutator (write barrier, bulk barrier). */
void mark_shade(uintptr_t p);

#endif
