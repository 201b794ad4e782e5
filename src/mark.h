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

#define PREFETCH_DEPTH 8

struct workbuf;
struct grey {
    uintptr_t addr;
    struct span *span;
};

/* One thread's marking context: its local grey buffer, prefetch FIFO and
 * counters. Lives on the stack of whoever marks. */
struct marker {
    struct workbuf *local;
    struct grey fifo[PREFETCH_DEPTH];
    unsigned fifo_head, fifo_count;
    uint64_t marked_bytes;  /* bytes of objects this marker greyed */
    uint64_t scanned_bytes; /* bytes of objects this marker scanned */
    uint64_t cpu_mark;      /* thread CPU time already counted (workers) */
};

int mark_init(unsigned workers);
void mark_shutdown(void);
unsigned mark_worker_count(void);

/* Results of one marking phase. */
struct mark_result {
    uint64_t marked_bytes;
    uint64_t scanned_bytes;
    uint64_t cpu_ns; /* CPU time of the worker threads and the collector */
    unsigned markers;
};

/* Stop-the-world marking: `roots` greys the roots on the calling thread's
 * marker while the workers wait for work, then every marker drains until
 * none is left. */
void mark_run(void (*roots)(struct marker *m, void *arg), void *arg,
              struct mark_result *out);

/* Concurrent marking (the world runs). mark_begin_concurrent starts the
 * workers; they drain whatever helpers publish. mark_wait_quiescent returns
 * once no worker or helper holds grey work and none is queued; it says
 * nothing of grey pointers still in write-barrier buffers or unscanned
 * stacks, which the termination protocol (gc.c) flushes first.
 * mark_end_concurrent stops the workers and reports. */
void mark_begin_concurrent(void);
void mark_wait_quiescent(void);
void mark_end_concurrent(struct mark_result *out);

/* Unmap the work buffers beyond a few spares, after a cycle, with the
 * world running. */
void mark_release_spares(void);

/* Grey work found outside the workers (root scans, stack scans,
 * write-barrier flushes, assists) goes through a helper marker: between
 * begin and end the helper counts as busy, so marking cannot be declared
 * quiescent while it holds unpublished work. */
void mark_helper_begin(struct marker *m);
void mark_helper_end(struct marker *m);
/* Bytes greyed by helpers since gc_init: when a round of barrier flushes
 * leaves it unchanged, the flushes found nothing new. */
uint64_t mark_helper_greyed_bytes(void);
/* Take global work and scan about `budget` bytes of it (assists); returns
 * the bytes scanned. Never waits. */
uint64_t mark_helper_drain(struct marker *m, uint64_t budget);

/* Grey the object p points into, if any. */
void mark_grey(struct marker *m, uintptr_t p);
/* Scan the object p points into without marking it: what it references
 * is kept alive, the object itself is not (finalizers, finalize.c). */
void mark_scan_contents(struct marker *m, uintptr_t p);
/* Grey every pointer-looking word of [lo, hi) (8-byte aligned words). */
void mark_scan_conservative(struct marker *m, uintptr_t lo, uintptr_t hi);
/* The same for a root range, in slices, draining the marker's work after
 * each so the grey queue stays short however large the root. */
void mark_scan_roots(struct marker *m, uintptr_t lo, uintptr_t hi);

/* Mark an object allocated while marking runs (allocate black). */
void mark_allocated_black(struct span *s, uint32_t idx);
/* Bytes allocated black this cycle, counted as spans leave thread caches
 * and as large objects are allocated; mark_take_black_bytes resets it. */
void mark_count_black_bytes(uint64_t bytes);
uint64_t mark_take_black_bytes(void);

/* Whether a mark phase is running. */
bool mark_in_progress(void);
/* Scan work done by the workers and not yet claimed by assists. */
int64_t mark_take_background_credit(int64_t want);

#endif
