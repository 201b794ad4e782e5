/*
 * stats.h — counters behind gc_read_stats and the gctrace line.
 *
 * Allocation counters live in each thread's record (threads.h); frees are
 * counted here by sweepers with relaxed atomic adds (statistics: no other
 * memory is published through them). Cycle records are written by the
 * collector with the world stopped and read under stats_lock.
 */
#ifndef CGC_STATS_H
#define CGC_STATS_H

#include "sizeclass.h"

#include <stdint.h>

struct gc_thread;

struct cycle_record {
    uint64_t start_ns;           /* monotonic, when the cycle began */
    uint64_t stop_ns;            /* STW 1: stop the world + setup */
    uint64_t mark_ns;            /* marking (inside the pause if STW) */
    uint64_t term_ns;            /* STW 2: mark termination */
    uint64_t mark_cpu_ns;        /* CPU time of the mark workers */
    uint64_t assist_ns;          /* time allocating threads assisted */
    uint64_t heap_live_start;    /* bytes */
    uint64_t heap_live_end_mark; /* bytes */
    uint64_t heap_marked;        /* bytes */
    uint64_t heap_goal;          /* goal of the next cycle */
    uint64_t cycle_goal;         /* goal this cycle aimed for */
    uint64_t stack_bytes;        /* stack bytes scanned */
    uint64_t global_bytes;       /* registered root bytes scanned */
    unsigned markers;
    bool forced;
    bool stop_the_world; /* marked inside the pause */
};

void stats_init(void);
void stats_count_small_frees(unsigned size_class, uint32_t n);
void stats_count_large_free(uint64_t bytes);
/* Fold a detaching thread's allocation counters into the totals. The
 * registry lock is held. */
void stats_fold_thread(struct gc_thread *t);
/* Record a finished cycle (world stopped) and print gctrace if enabled. */
void stats_record_cycle(const struct cycle_record *r);
void stats_print_gctrace(const struct cycle_record *r);

#endif
