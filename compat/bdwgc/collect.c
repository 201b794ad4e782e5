/*
 * collect.c — explicit collections, GC_enable/GC_disable, GC_gc_no and the
 * heap figures of bdwgc's API.
 *
 * GC_gc_no and the allocation total at the last cycle's end are written by
 * an event handler on cgc's collector thread when each cycle ends, with
 * relaxed atomic stores: the program reads GC_gc_no directly, and a value
 * one cycle old is what bdwgc's unlocked readers see too.
 */
#include "bdwgc.h"

#include "sweep.h"

#include <cgc.h>
#include <stdint.h>
#include <stdlib.h>

static uint64_t total_alloc_at_gc;

static void on_event(const gc_event *event, void *data)
{
    (void)data;
    if (event->kind != GC_EVENT_CYCLE_END)
        return;
    gc_stats *s = malloc(sizeof *s); /* 6 KiB: not on the collector's stack */
    if (s) {
        gc_read_stats(s);
        __atomic_store_n(&total_alloc_at_gc, s->total_alloc, __ATOMIC_RELAXED);
        free(s);
    }
    __atomic_store_n(&GC_gc_no, (GC_word)event->cycle, __ATOMIC_RELAXED);
}

void bdwgc_collect_init(void)
{
    gc_set_event_handler(on_event, NULL);
}

static bool collection_allowed(void)
{
    bdwgc_ensure_init();
    bdwgc_sync();
    return __atomic_load_n(&GC_dont_gc, __ATOMIC_RELAXED) == 0;
}

/* After an explicit collection, as bdwgc: run what became ready. */
static void after_collection(void)
{
    if (!GC_get_finalize_on_demand())
        GC_invoke_finalizers();
}

void GC_gcollect(void)
{
    if (!collection_allowed())
        return;
    gc_collect();
    after_collection();
}

void GC_gcollect_and_unmap(void)
{
    if (!collection_allowed())
        return;
    gc_free_os_memory();
    after_collection();
}

int GC_try_to_collect(GC_stop_func stop)
{
    if (!collection_allowed() || (stop && stop()))
        return 0;
    gc_collect();
    after_collection();
    return 1;
}

int GC_collect_a_little(void)
{
    bdwgc_ensure_init();
    return sweep_help();
}

void GC_disable(void)
{
    __atomic_fetch_add(&GC_dont_gc, 1, __ATOMIC_RELAXED);
    if (GC_is_init_called())
        bdwgc_sync();
}

void GC_enable(void)
{
    __atomic_fetch_sub(&GC_dont_gc, 1, __ATOMIC_RELAXED);
    if (GC_is_init_called())
        bdwgc_sync();
}

int GC_is_disabled(void)
{
    return __atomic_load_n(&GC_dont_gc, __ATOMIC_RELAXED) != 0;
}

GC_word GC_get_gc_no(void)
{
    return __atomic_load_n(&GC_gc_no, __ATOMIC_RELAXED);
}

/* ---- figures ------------------------------------------------------------ */

struct figures {
    GC_word heap_size, free_bytes, unmapped, since_gc, total;
};

static void read_figures(struct figures *f)
{
    *f = (struct figures){0};
    if (!GC_is_init_called())
        return;
    gc_stats *s = malloc(sizeof *s);
    if (!s)
        return;
    gc_read_stats(s);
    f->heap_size = s->heap_sys - s->heap_released;
    f->free_bytes =
        f->heap_size > s->heap_alloc ? f->heap_size - s->heap_alloc : 0;
    f->unmapped = s->heap_released;
    uint64_t at_gc = __atomic_load_n(&total_alloc_at_gc, __ATOMIC_RELAXED);
    f->since_gc = s->total_alloc > at_gc ? s->total_alloc - at_gc : 0;
    f->total = s->total_alloc;
    free(s);
}

size_t GC_get_heap_size(void)
{
    struct figures f;
    read_figures(&f);
    return f.heap_size;
}

size_t GC_get_free_bytes(void)
{
    struct figures f;
    read_figures(&f);
    return f.free_bytes;
}

size_t GC_get_unmapped_bytes(void)
{
    struct figures f;
    read_figures(&f);
    return f.unmapped;
}

size_t GC_get_bytes_since_gc(void)
{
    struct figures f;
    read_figures(&f);
    return f.since_gc;
}

size_t GC_get_total_bytes(void)
{
    struct figures f;
    read_figures(&f);
    return f.total;
}

void GC_get_heap_usage_safe(GC_word *heap_size, GC_word *free_bytes,
                            GC_word *unmapped_bytes, GC_word *bytes_since_gc,
                            GC_word *total_bytes)
{
    struct figures f;
    read_figures(&f);
    if (heap_size)
        *heap_size = f.heap_size;
    if (free_bytes)
        *free_bytes = f.free_bytes;
    if (unmapped_bytes)
        *unmapped_bytes = f.unmapped;
    if (bytes_since_gc)
        *bytes_since_gc = f.since_gc;
    if (total_bytes)
        *total_bytes = f.total;
}
