/*
 * pacer.h — when to collect and how much marking allocating threads owe
 * (Go's mgcpacer.go).
 *
 * The heap goal is the live heap marked by the last cycle grown by
 * CGC_PERCENT (never below a minimum heap of 4 MiB scaled the same way, Go's
 * heapminimum), lowered if a memory limit requires it. A concurrent cycle
 * starts at the trigger, early enough that marking can finish before the
 * heap reaches the goal: the goal minus the runway, i.e. the bytes the
 * program allocated per byte marked in the last cycle times the bytes to
 * mark, kept between 0.7 and 0.95 of the way from the marked heap to the
 * goal. The stop-the-world collector triggers at the goal.
 *
 * heap_live counts what the last cycle marked plus the bytes allocated or
 * reserved in thread caches since; it is a relaxed atomic (a trigger test
 * that is a few objects off moves a cycle by as much).
 */
#ifndef CGC_PACER_H
#define CGC_PACER_H

#include <stdbool.h>
#include <stdint.h>

#define PACER_MIN_HEAP ((uint64_t)4 << 20)

void pacer_init(int percent, int64_t memory_limit);
void pacer_note_allocation(int64_t bytes);
/* Whether the heap reached the trigger (the goal when stop_the_world). */
bool pacer_should_collect(bool stop_the_world);

/* Whether the heap is past the hard goal, where allocating threads mark or
 * wait for the cycle: the goal itself with the world stopped or when the
 * memory limit set it, 10 % over it otherwise; never while the CPU cap is
 * engaged (pacer_cpu_limited). */
bool pacer_over_hard_goal(bool stop_the_world);
/* A concurrent cycle starts: fix the assist ratio for it. */
void pacer_cycle_start(void);
/* Scan work (bytes) owed for allocating `bytes` during this mark phase;
 * 0 while the CPU cap is engaged. */
int64_t pacer_assist_debt(uint64_t bytes);
/* End of a cycle: what was marked and scanned, what was allocated while
 * marking; sets heap_live, the next goal and trigger. `retained` is the
 * memory the limit counts (sys - heap_released), `heap_inuse` the bytes in
 * in-use spans. */
void pacer_cycle_end(uint64_t marked_bytes, uint64_t scanned_bytes,
                     uint64_t allocated_while_marking);
/* Re-derive the goal after the heap's footprint changed (memory limit). */
void pacer_update_overhead(uint64_t retained, uint64_t heap_inuse);

/* CGC_DEBUG=gcpacertrace=1: Go's two pacer lines, when marking starts and
 * when a cycle ends. */
struct cycle_record;
void pacer_trace_cycle_start(uint64_t heap_live_start);
void pacer_trace_cycle_end(const struct cycle_record *r);

uint64_t pacer_heap_live(void);
uint64_t pacer_heap_goal(void);
uint64_t pacer_trigger(void);
int pacer_percent(void);
int pacer_set_percent(int percent);
/* Go's GC CPU limiter, the pacer's side. Under a memory limit the collector
 * spaces automatic cycles so that they take at most about half the time
 * (gc.c, respect_cpu_cap); while it has to (the heap reaches the trigger
 * again before the cap allows a cycle: a limit below the live heap), it
 * sets this, and allocating threads neither assist nor wait for a cycle:
 * the heap overshoots the limit and the program runs at about half speed
 * instead of waiting for every cycle, cap included. Cleared when a cycle
 * may start on time again, or when the limit is removed. */
void pacer_set_cpu_limited(bool limited);
bool pacer_cpu_limited(void);
int64_t pacer_memory_limit(void);
int64_t pacer_set_memory_limit(int64_t bytes);

#endif
