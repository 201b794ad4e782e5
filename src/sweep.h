/*
 * sweep.h — sweeping: turning a span's mark bits into its alloc bits after a
 * cycle, lazily and in the background (Go's mgcsweep.go).
 *
 * Sweep generations: the heap's generation `sg` grows by 2 at each cycle's
 * end (sweep_flip, with the world stopped). A span's sweepgen says:
 *   sg - 2  it needs sweeping (it sits on an unswept central list);
 *   sg - 1  it is being swept by whoever claimed it;
 *   sg      it is swept (on a swept list, in a thread cache, or just made).
 * Spans are claimed by popping them from an unswept list under the central
 * lock, so exactly one sweeper ever sweeps a span.
 */
#ifndef CGC_SWEEP_H
#define CGC_SWEEP_H

#include "heap.h"

uint32_t sweep_current_generation(void);

/* Advance the generation: every swept span becomes unswept. World stopped. */
void sweep_flip(void);

enum sweep_result {
    SWEEP_KEPT,  /* the span still holds objects; swept, on no list */
    SWEEP_FREED, /* the span held nothing live and went back to the heap */
};
/* Sweep a span its caller has claimed (sweepgen sg - 1). */
enum sweep_result span_sweep(struct span *s);

/* Sweep every unswept span and wait for concurrent sweepers to finish. */
void sweep_finish(void);
/* Sweep until about npages pages went back to the heap or nothing is left
 * (before a large allocation grows the heap). */
void sweep_reclaim_pages(size_t npages);
/* Sweep one unswept span, if any is left (the Boehm layer's
 * GC_collect_a_little); returns whether one was. Any thread. */
bool sweep_help(void);

/* Bracket a sweep so sweep_finish can wait for it (atomic counter). */
void sweep_begin(void);
void sweep_end(void);
/* Whether a sweep is under way (between sweep_begin and sweep_end). */
bool sweep_in_progress(void);

int sweep_start_background(void);
void sweep_wake_background(void);
void sweep_stop_background(void);

#endif
