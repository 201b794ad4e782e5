/*
 * scavenge.c — keeping retained memory under the memory limit (see
 * scavenge.h). Free runs are released with MADV_DONTNEED, largest first
 * (heap.c); reusing one faults in zero pages, so it needs no zeroing.
 */
#include "scavenge.h"

#include "heap.h"
#include "pacer.h"

uint64_t scavenge_retained(void)
{
    struct heap_counters h;
    heap_read_counters(&h);
    uint64_t mapped = h.sys + h.meta;
    return mapped > h.released ? mapped - h.released : 0;
}

static void release_above(uint64_t target)
{
    uint64_t retained = scavenge_retained();
    if (retained > target)
        heap_release_free(retained - target);
}

void scavenge_to_limit(void)
{
    int64_t limit = pacer_memory_limit();
    if (limit != INT64_MAX)
        release_above((uint64_t)limit);
}

void scavenge_for_growth(size_t bytes)
{
    int64_t limit = pacer_memory_limit();
    if (limit != INT64_MAX)
        release_above((uint64_t)limit > bytes ? (uint64_t)limit - bytes : 0);
}

void scavenge_update_pacer(void)
{
    struct heap_counters h;
    heap_read_counters(&h);
    pacer_update_overhead(scavenge_retained(), h.inuse);
}
