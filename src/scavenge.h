/*
 * scavenge.h — returning free pages to the OS (Go's mgcscavenge.go), so far
 * as the memory limit needs it: the memory the limit counts is what the
 * heap retains, sys - heap_released.
 */
#ifndef CGC_SCAVENGE_H
#define CGC_SCAVENGE_H

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

#endif
