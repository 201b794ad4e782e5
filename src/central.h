/*
 * central.h — the central span lists of each span class (Go's mcentral).
 *
 * For every span class, spans not held by a thread cache sit on one of four
 * lists: partial or full, swept or unswept. Which pair is "swept" flips with
 * the sweep generation, so sweep_flip turns every swept span into an unswept
 * one without touching a list. Each class has its own lock: the allocation
 * fast path never takes it, a cache refill does.
 */
#ifndef CGC_CENTRAL_H
#define CGC_CENTRAL_H

#include "heap.h"

void central_init(void);

/* A swept span of this class with at least one free slot, owned by the
 * caller; sweeps unswept spans on the way. NULL if none: the caller asks the
 * page heap for a fresh span. */
struct span *central_acquire(unsigned span_class);

/* Give back a swept span the caller owns (from a cache or a sweep). */
void central_release(struct span *s);

/* Pop an unswept span of any class for sweeping, starting the search at
 * *cursor (advanced); the span comes back claimed (sweepgen sg - 1) and
 * counted by sweep_begin. NULL when no class has one. Unless `thorough`,
 * the search trusts the unswept counts (a quick "nothing left"); thorough,
 * it looks at every class's lists under its lock. */
struct span *central_claim_unswept(unsigned *cursor, bool thorough);

/* Just before the sweep generation flips (world stopped, no sweep in
 * flight): count the spans the flip is about to make unswept. */
void central_count_unswept(void);

/* Whether no span of any class waits on an unswept list (takes each class
 * lock in turn; a check for debug modes, not a fast path). */
bool central_all_swept(void);

#endif
