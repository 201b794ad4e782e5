/*
 * pacer.h — when to collect: Go's GOGC heap goal (mgcpacer.go), for the
 * stop-the-world collector. The goal is the live heap marked by the last
 * cycle grown by CGC_PERCENT, and never below a minimum heap of 4 MiB scaled
 * by the same percentage (Go's heapminimum).
 *
 * heap_live counts bytes that are allocated or reserved in thread caches
 * since the last cycle plus what that cycle marked; it is an atomic updated
 * with relaxed adds (a statistic that only has to be close: the trigger test
 * tolerates a few objects of skew).
 */
#ifndef CGC_PACER_H
#define CGC_PACER_H

#include <stdbool.h>
#include <stdint.h>

#define PACER_MIN_HEAP ((uint64_t)4 << 20)

void pacer_init(int percent);
void pacer_note_allocation(int64_t bytes);
bool pacer_should_collect(void);
/* End of a cycle: heap_live becomes what was marked; new goal. */
void pacer_cycle_end(uint64_t marked_bytes);

uint64_t pacer_heap_live(void);
uint64_t pacer_heap_goal(void);
int pacer_percent(void);
int pacer_set_percent(int percent);

#endif
