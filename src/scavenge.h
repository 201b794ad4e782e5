/*
 * scavenge.h — returning free pages to the OS (Go's mgcscavenge.go): in the
 * background down to about 10 % over the heap goal, eagerly to stay under a
 * memory limit, and all at once for gc_free_os_memory. What the heap
 * retains is sys - heap_released.
 */
#ifndef CGC_SCAVENGE_H
#define CGC_SCAVENGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Memory retained from the OS: mapped minus released. */
uint64_t scavenge_retained(void);
/* Release free pages until the retained memory is within the limit. */
void scavenge_to_limit(void);
/* Before the heap maps `bytes` more: make room under the limit. */
void scavenge_for_growth(size_t bytes);
/* Tell the pacer how much retained memory is not heap objects. */
void scavenge_update_pacer(void);

/* The background scavenger (Go's bgscavenge): keeps the heap's retained
 * memory within about 10 % over the heap goal, releasing free pages at
 * about 1 % of one CPU. */
int scavenge_start_background(void);
void scavenge_stop_background(void);
/* Release every free page now (gc_free_os_memory); returns the bytes. */
uint64_t scavenge_all(void);
/* One scavtrace line for the cycle that just ended, if enabled. */
void scavenge_trace_cycle(bool forced);

#endif
