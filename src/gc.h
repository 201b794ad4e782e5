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
/* Collect if the pacer says the heap reached its goal. Called from
 * allocation slow paths of an attached, running thread holding no lock. */
void gc_collect_if_due(struct gc_thread *self);
/* Nanoseconds (monotonic) since gc_init. */
uint64_t gc_uptime_ns(void);
uint64_t gc_start_monotonic_ns(void);

#endif
