/*
 * heap.c — arenas, the arena index and the page allocator (Go's mheap).
 *
 * Arenas are 64 MiB, aligned to their size, reserved with MAP_NORESERVE. The
 * arena index has one entry per possible arena of a 48-bit address space; an
 * arena's record maps each of its pages to the span that holds it.
 *
 * Invariants (all under heap_lock):
 *  - a page of an in-use span maps to that span;
 *  - a free span is on exactly one free list, and its first and last pages
 *    map to it; its other pages map to nothing;
 *  - two adjacent free spans differ in their released state (runs in the
 *    same state are merged on free).
 * Arena index entries and arena records are published with release stores
 * and never removed until gc_shutdown, so lookups need no lock.
 */
#include "heap.h"
#include "fork.h"

#include "os.h"
#include "report.h"
#include "scavenge.h"
#include "sweep.h"

#include <stdlib.h>
#include <string.h>

#define FREE_LIST_BUCKETS      128 /* exact-size buckets for runs < 128 pages */
#define SPAN_RECORDS_PER_CHUNK 256
/* Metadata blocks (types arrays, freed bitmaps) come in powers of two from
 * 16 bytes to 8 KiB, carved from mapped chunks: not from malloc, so that leak
 * checkers, which do not scan our mappings, see no orphaned blocks. */
#define META_MIN_SHIFT  4
#define META_BUCKETS    10
#define META_CHUNK_SIZE ((size_t)64 << 10)

CGC_STATE _Atomic uintptr_t heap_min_address = UINTPTR_MAX,
                            heap_max_address = 0;
CGC_STATE _Atomic(struct arena *) *arena_index;

/* A mapped region of arenas, remembered so gc_shutdown can unmap it. */
struct region {
    struct region *next;
    void *base;
    size_t size;
};

static CGC_STATE struct {
    pthread_mutex_t lock;
    /* Free runs, [0] retained and [1] released: allocation prefers
     * retained memory, whose pages need no fault to come back. */
    struct span *free_small[2][FREE_LIST_BUCKETS]; /* by npages */
    struct span *free_large[2];                    /* npages >= 128 */
    struct span *spare_records;
    void *spare_blocks[META_BUCKETS]; /* metadata blocks by size bucket */
    struct region *regions;
    struct region *meta_chunks; /* span record chunks and arena records */
    _Atomic uint64_t sys, inuse, released, meta;
} heap = {.lock = PTHREAD_MUTEX_INITIALIZER};

int heap_init(void)
{
    os_probe_memory();
    size_t bytes = ARENA_INDEX_ENTRIES * sizeof *arena_index;
    arena_index = os_map(bytes);
    if (!arena_index)
        return -1;
    atomic_store_explicit(&heap_min_address, UINTPTR_MAX, memory_order_relaxed);
    atomic_store_explicit(&heap_max_address, 0, memory_order_relaxed);
    return 0;
}

void heap_shutdown(void)
{
    pthread_mutex_lock(&heap.lock);
    for (struct region *r = heap.regions, *next; r; r = next) {
        next = r->next;
        os_unmap(r->base, r->size);
        free(r);
    }
    for (struct region *r = heap.meta_chunks, *next; r; r = next) {
        next = r->next;
        os_unmap(r->base, r->size);
        free(r);
    }
    if (arena_index)
        os_unmap(arena_index, ARENA_INDEX_ENTRIES * sizeof *arena_index);
    arena_index = NULL;
    memset(heap.free_small, 0, sizeof heap.free_small);
    memset(heap.free_large, 0, sizeof heap.free_large);
    heap.spare_records = NULL;
    memset(heap.spare_blocks, 0, sizeof heap.spare_blocks);
    heap.regions = NULL;
    heap.meta_chunks = NULL;
    atomic_store(&heap.sys, 0);
    atomic_store(&heap.inuse, 0);
    atomic_store(&heap.released, 0);
    atomic_store(&heap.meta, 0);
    pthread_mutex_unlock(&heap.lock);
}

void heap_count_metadata(int64_t bytes)
{
    atomic_fetch_add_explicit(&heap.meta, (uint64_t)bytes,
                              memory_order_relaxed);
}

void heap_read_counters(struct heap_counters *out)
{
    out->sys = atomic_load_explicit(&heap.sys, memory_order_relaxed);
    out->inuse = atomic_load_explicit(&heap.inuse, memory_order_relaxed);
    out->released = atomic_load_explicit(&heap.released, memory_order_relaxed);
    out->meta = atomic_load_explicit(&heap.meta, memory_order_relaxed);
}

/* Remember a mapping; returns false (and unmaps) if the note cannot be made. */
static bool remember_mapping(struct region **list, void *base, size_t size)
{
    struct region *r = malloc(sizeof *r);
    if (!r) {
        os_unmap(base, size);
        return false;
    }
    r->base = base;
    r->size = size;
    r->next = *list;
    *list = r;
    return true;
}

/* ---- span records (never unmapped while the heap lives) ---------------- */

static struct span *record_new(void)
{
    if (!heap.spare_records) {
        size_t bytes = SPAN_RECORDS_PER_CHUNK * sizeof(struct span);
        struct span *chunk = os_map(bytes);
        if (!chunk || !remember_mapping(&heap.meta_chunks, chunk, bytes))
            return NULL;
        heap_count_metadata((int64_t)bytes);
        for (size_t i = 0; i < SPAN_RECORDS_PER_CHUNK; i++) {
            chunk[i].next = heap.spare_records;
            heap.spare_records = &chunk[i];
        }
    }
    struct span *s = heap.spare_records;
    heap.spare_records = s->next;
    /* The record may be read concurrently by a marker holding a stale
     * pointer, so fields are reset individually, never with memset. */
    s->next = s->prev = NULL;
    s->released = 0;
    s->releasing = 0;
    return s;
}

static void record_release(struct span *s)
{
    atomic_store_explicit(&s->state, SPAN_FREE, memory_order_release);
    s->npages = 0;
    s->next = heap.spare_records;
    heap.spare_records = s;
}

/* ---- metadata blocks -------------------------------------------------- */

static unsigned meta_bucket(size_t bytes)
{
    unsigned b = 0;
    while (((size_t)1 << (b + META_MIN_SHIFT)) < bytes)
        b++;
    return b;
}

static void *meta_alloc_locked(size_t bytes)
{
    unsigned b = meta_bucket(bytes);
    if (b >= META_BUCKETS)
        return NULL;
    size_t block = (size_t)1 << (b + META_MIN_SHIFT);
    if (!heap.spare_blocks[b]) {
        char *chunk = os_map(META_CHUNK_SIZE);
        if (!chunk ||
            !remember_mapping(&heap.meta_chunks, chunk, META_CHUNK_SIZE))
            return NULL;
        heap_count_metadata((int64_t)META_CHUNK_SIZE);
        for (size_t off = 0; off < META_CHUNK_SIZE; off += block) {
            *(void **)(chunk + off) = heap.spare_blocks[b];
            heap.spare_blocks[b] = chunk + off;
        }
    }
    void *p = heap.spare_blocks[b];
    heap.spare_blocks[b] = *(void **)p;
    memset(p, 0, block);
    return p;
}

static void meta_free_locked(void *p, size_t bytes)
{
    if (!p)
        return;
    unsigned b = meta_bucket(bytes);
    *(void **)p = heap.spare_blocks[b];
    heap.spare_blocks[b] = p;
}

void *heap_meta_alloc(size_t bytes)
{
    pthread_mutex_lock(&heap.lock);
    void *p = meta_alloc_locked(bytes);
    pthread_mutex_unlock(&heap.lock);
    return p;
}

void heap_meta_free(void *p, size_t bytes)
{
    pthread_mutex_lock(&heap.lock);
    meta_free_locked(p, bytes);
    pthread_mutex_unlock(&heap.lock);
}

/* The alloc + mark bitmap block of a span class. */
static size_t bitmap_bytes(unsigned span_class)
{
    unsigned size_class = span_class / NUM_KINDS;
    size_t n = size_class ? size_classes[size_class].nelems : 1;
    return 2 * ((n + 63) / 64) * sizeof(uint64_t);
}

static size_t types_array_bytes(unsigned span_class)
{
    unsigned size_class = span_class / NUM_KINDS;
    size_t n = size_class ? size_classes[size_class].nelems : 1;
    return n * sizeof(const struct gc_type *);
}

/* ---- the page map ------------------------------------------------------ */

static struct arena *arena_of(uintptr_t p)
{
    return atomic_load_explicit(&arena_index[p >> ARENA_SHIFT],
                                memory_order_acquire);
}

static void map_page(uintptr_t page_addr, struct span *s)
{
    struct arena *a = arena_of(page_addr);
    atomic_store_explicit(
        &a->spans[(page_addr >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)], s,
        memory_order_release);
}

static struct span *page_owner(uintptr_t page_addr)
{
    struct arena *a = arena_of(page_addr);
    if (!a)
        return NULL;
    return atomic_load_explicit(
        &a->spans[(page_addr >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)],
        memory_order_relaxed);
}

static void map_pages(struct span *s, struct span *to)
{
    for (size_t i = 0; i < s->npages; i++)
        map_page(s->base + i * PAGE_SIZE, to);
}

/* ---- free lists -------------------------------------------------------- */

static struct span **free_list_for(const struct span *s)
{
    unsigned released = s->released ? 1 : 0;
    return s->npages < FREE_LIST_BUCKETS ? &heap.free_small[released][s->npages]
                                         : &heap.free_large[released];
}

static void free_list_remove(struct span *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *free_list_for(s) = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

static void free_list_insert(struct span *s)
{
    struct span **head = free_list_for(s);
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
    map_page(s->base, s);
    map_page(s->base + (s->npages - 1) * PAGE_SIZE, s);
}

static bool is_free_span(struct span *s)
{
    return s &&
           atomic_load_explicit(&s->state, memory_order_relaxed) == SPAN_FREE &&
           s->npages > 0 && !s->releasing;
}

/* Put the run [s->base, +npages) on the free lists, merging neighbours in
 * the same released state (a released run stays apart from a retained
 * one, so the released count stays exact: as Go's scavenged bits). */
static void free_run(struct span *s)
{
    atomic_store_explicit(&s->state, SPAN_FREE, memory_order_release);
    struct span *before = page_owner(s->base - PAGE_SIZE);
    if (is_free_span(before) && before->released == s->released &&
        before->base + before->npages * PAGE_SIZE == s->base) {
        free_list_remove(before);
        map_page(before->base + (before->npages - 1) * PAGE_SIZE, NULL);
        map_page(s->base, NULL);
        s->base = before->base;
        s->npages += before->npages;
        s->needzero |= before->needzero;
        record_release(before);
    }
    uintptr_t end = s->base + s->npages * PAGE_SIZE;
    struct span *after = page_owner(end);
    if (is_free_span(after) && after->released == s->released &&
        after->base == end) {
        free_list_remove(after);
        map_page(after->base, NULL);
        map_page(s->base + (s->npages - 1) * PAGE_SIZE, NULL);
        s->npages += after->npages;
        s->needzero |= after->needzero;
        record_release(after);
    }
    free_list_insert(s);
}

static struct span *find_free_run(size_t npages)
{
    for (unsigned released = 0; released < 2; released++) {
        for (size_t n = npages; n < FREE_LIST_BUCKETS; n++)
            if (heap.free_small[released][n])
                return heap.free_small[released][n];
        struct span *best = NULL;
        for (struct span *s = heap.free_large[released]; s; s = s->next)
            if (s->npages >= npages && (!best || s->npages < best->npages))
                best = s;
        if (best)
            return best;
    }
    return NULL;
}

/* Map enough new arenas for npages and put them on the free lists. */
static bool grow(size_t npages)
{
    size_t bytes = round_up(npages * PAGE_SIZE, ARENA_SIZE);
    char *base = os_map_aligned(bytes, ARENA_SIZE);
    if (!base)
        return false;
    if ((uintptr_t)base + bytes > ((uintptr_t)1 << ADDRESS_BITS)) {
        os_unmap(base, bytes);
        return false;
    }
    size_t narenas = bytes / ARENA_SIZE;
    for (size_t i = 0; i < narenas; i++) {
        struct arena *a = os_map(sizeof *a);
        if (!a || !remember_mapping(&heap.meta_chunks, a, sizeof *a)) {
            os_unmap(base, bytes); /* entries set so far map nothing used */
            return false;
        }
        heap_count_metadata(sizeof *a + 4096 /* its index page, at most */);
        atomic_store_explicit(
            &arena_index[((uintptr_t)base >> ARENA_SHIFT) + i], a,
            memory_order_release);
    }
    if (!remember_mapping(&heap.regions, base, bytes))
        return false;
    struct span *s = record_new();
    if (!s)
        return false;
    s->base = (uintptr_t)base;
    s->npages = bytes / PAGE_SIZE;
    s->needzero = 0;
    /* Never touched, so not resident: it counts as released (as Go counts
     * fresh heap memory) until a span is carved from it. */
    s->released = 1;
    atomic_fetch_add_explicit(&heap.released, bytes, memory_order_relaxed);
    uintptr_t lo = (uintptr_t)base, hi = lo + bytes;
    if (lo < atomic_load_explicit(&heap_min_address, memory_order_relaxed))
        atomic_store_explicit(&heap_min_address, lo, memory_order_relaxed);
    if (hi > atomic_load_explicit(&heap_max_address, memory_order_relaxed))
        atomic_store_explicit(&heap_max_address, hi, memory_order_relaxed);
    atomic_fetch_add_explicit(&heap.sys, bytes, memory_order_relaxed);
    free_run(s);
    return true;
}

/* ---- spans ------------------------------------------------------------- */

static void span_init(struct span *s, unsigned span_class,
                      const struct gc_type **types, _Atomic uint64_t *bitmaps)
{
    unsigned size_class = span_class / NUM_KINDS;
    s->span_class = (uint16_t)span_class;
    s->kind = (uint8_t)(span_class % NUM_KINDS);
    if (size_class == 0) {
        s->elem_size = s->npages * PAGE_SIZE;
        s->nelems = 1;
        s->magic = 0;
    } else {
        s->elem_size = size_classes[size_class].size;
        s->nelems = size_classes[size_class].nelems;
        s->magic = size_classes[size_class].magic;
    }
    /* The bitmap block comes zeroed from meta_alloc_locked. */
    s->alloc_bits = bitmaps;
    s->mark_bits = bitmaps + (s->nelems + 63) / 64;
    atomic_store_explicit(&s->freed_bits, NULL, memory_order_relaxed);
    atomic_store_explicit(&s->free_index, 0, memory_order_relaxed);
    s->cache_base = 0;
    s->alloc_cache =
        s->nelems >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << s->nelems) - 1);
    s->alloc_count = 0;
    s->types = types;
    s->finalizers = NULL;
    atomic_store_explicit(&s->has_finalizers, 0, memory_order_relaxed);
    s->weaks = NULL;
    atomic_store_explicit(&s->has_weaks, 0, memory_order_relaxed);
    s->ephemerons = NULL;
    atomic_store_explicit(&s->has_ephemerons, 0, memory_order_relaxed);
    atomic_store_explicit(&s->sweepgen, sweep_current_generation(),
                          memory_order_relaxed);
}

struct span *heap_alloc_span(size_t npages, unsigned span_class)
{
    pthread_mutex_lock(&heap.lock);
    _Atomic uint64_t *bitmaps = meta_alloc_locked(bitmap_bytes(span_class));
    if (!bitmaps) {
        pthread_mutex_unlock(&heap.lock);
        return NULL;
    }
    const struct gc_type **types = NULL;
    if (span_class % NUM_KINDS == KIND_TYPED) {
        types = meta_alloc_locked(types_array_bytes(span_class));
        if (!types) {
            meta_free_locked((void *)bitmaps, bitmap_bytes(span_class));
            pthread_mutex_unlock(&heap.lock);
            return NULL;
        }
    }
    struct span *s = find_free_run(npages);
    if (!s) {
        /* Growing: first make room under a memory limit, if any. */
        pthread_mutex_unlock(&heap.lock);
        scavenge_for_growth(round_up(npages * PAGE_SIZE, ARENA_SIZE));
        pthread_mutex_lock(&heap.lock);
        s = find_free_run(npages);
    }
    if (!s && grow(npages))
        s = find_free_run(npages);
    if (!s) {
        meta_free_locked(types, types_array_bytes(span_class));
        meta_free_locked((void *)bitmaps, bitmap_bytes(span_class));
        pthread_mutex_unlock(&heap.lock);
        return NULL;
    }
    free_list_remove(s);
    map_page(s->base, NULL);
    map_page(s->base + (s->npages - 1) * PAGE_SIZE, NULL);
    if (s->npages > npages) {
        struct span *rest = record_new();
        if (rest) {
            rest->base = s->base + npages * PAGE_SIZE;
            rest->npages = s->npages - npages;
            rest->needzero = s->needzero;
            rest->released = s->released;
            atomic_store_explicit(&rest->state, SPAN_FREE,
                                  memory_order_relaxed);
            free_list_insert(rest);
            s->npages = npages;
        }
    }
    if (s->released) {
        /* Reused: the kernel faults fresh zero pages back in. */
        atomic_fetch_sub_explicit(&heap.released, s->npages * PAGE_SIZE,
                                  memory_order_relaxed);
        s->released = 0;
    }
    span_init(s, span_class, types, bitmaps);
    map_pages(s, s);
    atomic_fetch_add_explicit(&heap.inuse, s->npages * PAGE_SIZE,
                              memory_order_relaxed);
    /* Publish: a lookup that sees SPAN_IN_USE also sees the fields above. */
    atomic_store_explicit(&s->state, SPAN_IN_USE, memory_order_release);
    pthread_mutex_unlock(&heap.lock);
    return s;
}

void heap_free_span(struct span *s)
{
    pthread_mutex_lock(&heap.lock);
    if (s->types)
        meta_free_locked(s->types, types_array_bytes(s->span_class));
    s->types = NULL;
    /* The bitmaps go back to the pool but stay mapped: a marker or lookup
     * holding this record reads stale bits, never unmapped memory. */
    meta_free_locked((void *)s->alloc_bits, bitmap_bytes(s->span_class));
    meta_free_locked((void *)atomic_exchange_explicit(&s->freed_bits, NULL,
                                                      memory_order_relaxed),
                     FREED_BITS_BYTES);
    atomic_fetch_sub_explicit(&heap.inuse, s->npages * PAGE_SIZE,
                              memory_order_relaxed);
    atomic_store_explicit(&s->state, SPAN_FREE, memory_order_release);
    map_pages(s, NULL);
    s->needzero = 1;
    s->released = 0;
    free_run(s);
    pthread_mutex_unlock(&heap.lock);
}

/* Release one free run; the lock is held. */
/* Release a free run the caller took off the lists. The madvise runs
 * without the heap lock (it may take milliseconds, and a thread that waits
 * for the lock cannot reach a safepoint); meanwhile the run is on no list
 * and marked `releasing`, so no allocation or merge touches it. */
static uint64_t release_run(struct span *s)
{
    s->releasing = 1;
    pthread_mutex_unlock(&heap.lock);
    os_release((void *)s->base, s->npages * PAGE_SIZE);
    pthread_mutex_lock(&heap.lock);
    s->releasing = 0;
    s->released = 1;
    s->needzero = 0; /* MADV_DONTNEED pages read back as zero */
    uint64_t bytes = s->npages * PAGE_SIZE;
    atomic_fetch_add_explicit(&heap.released, bytes, memory_order_relaxed);
    return bytes;
}

/* Release up to `budget` bytes of the first retained run of a list (its
 * tail, when the run is larger: the two parts then differ in state and
 * stay apart), moving what was released to the released lists; 0 if the
 * list is empty. */
static uint64_t release_first(struct span **list, uint64_t budget)
{
    struct span *s = *list;
    if (!s)
        return 0;
    free_list_remove(s);
    size_t pages = budget / PAGE_SIZE;
    if (pages == 0)
        pages = 1;
    if (pages < s->npages) {
        struct span *tail = record_new();
        if (tail) {
            map_page(s->base + (s->npages - 1) * PAGE_SIZE, NULL);
            tail->npages = pages;
            tail->base = s->base + (s->npages - pages) * PAGE_SIZE;
            tail->needzero = s->needzero;
            atomic_store_explicit(&tail->state, SPAN_FREE,
                                  memory_order_relaxed);
            s->npages -= pages;
            free_list_insert(s);
            s = tail;
        }
    }
    uint64_t bytes = release_run(s);
    free_list_insert(s);
    return bytes;
}

uint64_t heap_release_free(uint64_t bytes)
{
    uint64_t done = 0;
    pthread_mutex_lock(&heap.lock);
    while (done < bytes && heap.free_large[0])
        done += release_first(&heap.free_large[0], bytes - done);
    for (size_t n = FREE_LIST_BUCKETS - 1; n > 0 && done < bytes; n--)
        while (done < bytes && heap.free_small[0][n])
            done += release_first(&heap.free_small[0][n], bytes - done);
    pthread_mutex_unlock(&heap.lock);
    return done;
}

void heap_fork(enum fork_phase phase)
{
    fork_mutex(&heap.lock, phase);
}
