/*
 * gc.h — the collection cycle and the collector's lifetime.
 */
#ifndef CGC_GC_H
#define CGC_GC_H

#include <cgc.h>
#include <stdbool.h>
#include <stdint.h>

struct gc_thread;

/* Whether gc_init has completed (acquire). */
bool gc_initialized(void);
/* Ask the collector thread for a cycle if the heap reached the pacer's
 * trigger. Never waits. Called from allocation slow paths. */
void gc_collect_if_due(struct gc_thread *self);
/* At a safepoint while marking: scan the thread's stack once per cycle and
 * flush its barrier buffer once per flush epoch. */
void gc_thread_mark_duties(struct gc_thread *t);
/* While marking: do scan work in proportion to `allocated` bytes. */
void gc_assist(struct gc_thread *t, uint64_t allocated);

/* Nanoseconds (monotonic) since gc_init. */
uint64_t gc_uptime_ns(void);
uint64_t gc_start_monotonic_ns(void);

#endif
