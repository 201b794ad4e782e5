/*
 * typed.c — bdwgc's typed allocation (gc_typed.h) on cgc's precise layouts.
 *
 * A descriptor (GC_descr) is one of:
 *   DESCR_ATOMIC (0)        no pointer bit: atomic objects;
 *   DESCR_CONSERVATIVE (1)  memory ran out in GC_make_descriptor: scan the
 *                           whole object, as GC_malloc;
 *   a struct descr *        (malloc'd, so aligned: never 0 or 1), immortal.
 * Descriptors are interned: one per distinct (len, bitmap), in a hash
 * table, so GC_make_descriptor called again with the same bitmap returns
 * the same one and makes no new layout.
 *
 * cgc's layout (gc_type) has a size T and repeats every T bytes over the
 * object's usable size. For GC_malloc_explicitly_typed(bytes, d), T is
 * bytes rounded up to a word (at least d's len words), so that the only
 * repetitions fall past the bytes asked for, which the program never
 * writes and which stay zero: words past len are never taken for
 * pointers. For GC_calloc_explicitly_typed, T is the element size. Each
 * descriptor keeps the gc_types it made, one per T, at most MAX_SIZES of
 * them (objects of further sizes are scanned conservatively): layouts are
 * bounded by descriptors times MAX_SIZES.
 *
 * Threads: the intern table and each descriptor's `sizes` entries are
 * written under `lock`. Allocation reads a descriptor's sizes without it:
 * an entry is complete before `nsizes` counts it (release), and readers
 * load `nsizes` with acquire and read only the entries it counts; entries
 * never change once counted.
 */
#include "bdwgc.h"

#include "gc_typed.h"

#include <cgc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DESCR_ATOMIC       ((GC_descr)0)
#define DESCR_CONSERVATIVE ((GC_descr)1)
#define MAX_SIZES          32
#define BUCKETS            256

struct sized_type {
    size_t size; /* T */
    const gc_type *type;
};

struct descr {
    struct descr *next; /* in its bucket (under lock) */
    size_t len;         /* words described */
    size_t n_ptrs;
    size_t *offsets; /* byte offsets of the pointer words: n_ptrs of them */
    /* Counted entries are immutable; see the file comment. */
    _Atomic size_t nsizes;
    struct sized_type sizes[MAX_SIZES];
    GC_word bitmap[]; /* (len + GC_WORDSZ - 1) / GC_WORDSZ words, masked */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct descr *buckets[BUCKETS]; /* under lock */

static size_t bitmap_words(size_t len)
{
    return (len + GC_WORDSZ - 1) / GC_WORDSZ;
}

static size_t bucket_of(const GC_word *bm, size_t words, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037) ^ len;
    for (size_t i = 0; i < words; i++)
        h = (h ^ bm[i]) * UINT64_C(1099511628211);
    return (size_t)(h ^ (h >> 29)) % BUCKETS;
}

GC_descr GC_make_descriptor(const GC_word *bitmap, size_t len)
{
    size_t words = bitmap_words(len);
    size_t n_ptrs = 0;
    for (size_t i = 0; i < len; i++)
        n_ptrs += GC_get_bit(bitmap, i);
    if (n_ptrs == 0)
        return DESCR_ATOMIC;
    if (len > SIZE_MAX / sizeof(GC_word) / 2)
        return DESCR_CONSERVATIVE;
    /* The bitmap with the bits past len cleared, for comparison. */
    struct descr *d = calloc(1, sizeof *d + words * sizeof(GC_word));
    size_t *offsets = malloc(n_ptrs * sizeof *offsets);
    if (!d || !offsets) {
        free(d);
        free(offsets);
        return DESCR_CONSERVATIVE;
    }
    for (size_t i = 0, k = 0; i < len; i++) {
        if (GC_get_bit(bitmap, i)) {
            GC_set_bit(d->bitmap, i);
            offsets[k++] = i * sizeof(GC_word);
        }
    }
    d->len = len;
    d->n_ptrs = n_ptrs;
    d->offsets = offsets;
    size_t b = bucket_of(d->bitmap, words, len);
    pthread_mutex_lock(&lock);
    struct descr *known = buckets[b];
    while (known && (known->len != len || memcmp(known->bitmap, d->bitmap,
                                                 words * sizeof(GC_word)) != 0))
        known = known->next;
    if (!known) {
        d->next = buckets[b];
        buckets[b] = d;
    }
    pthread_mutex_unlock(&lock);
    if (known) {
        free(d);
        free(offsets);
        return (GC_descr)known;
    }
    return (GC_descr)d;
}

/* d's layout of size T (a multiple of a word, at least d's len words);
 * NULL if d has MAX_SIZES others already or memory ran out. */
static const gc_type *layout(struct descr *d, size_t size)
{
    size_t n = atomic_load_explicit(&d->nsizes, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (d->sizes[i].size == size)
            return d->sizes[i].type;
    pthread_mutex_lock(&lock);
    const gc_type *t = NULL;
    n = atomic_load_explicit(&d->nsizes, memory_order_relaxed);
    for (size_t i = 0; i < n && !t; i++) /* another thread may have won */
        if (d->sizes[i].size == size)
            t = d->sizes[i].type;
    if (!t && n < MAX_SIZES) {
        t = gc_type_new(size, d->offsets, d->n_ptrs);
        if (t) {
            d->sizes[n] = (struct sized_type){size, t};
            atomic_store_explicit(&d->nsizes, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&lock);
    return t;
}

/* bytes plus the extra bytes, at least min; 0 if that overflows. */
static size_t padded(size_t bytes, size_t min)
{
    size_t total = bytes + bdwgc_extra_bytes;
    if (total < bytes)
        return 0;
    return total < min ? min : total;
}

/* t NULL: conservative (atomic says whether to scan at all). */
static void *allocate(size_t bytes, size_t total, const gc_type *t, bool atomic)
{
    void *p = NULL;
    if (total)
        p = t        ? gc_alloc_typed(total, t)
            : atomic ? gc_alloc_noscan(total)
                     : gc_alloc(total);
    if (!p)
        return bdwgc_out_of_memory(bytes);
    bdwgc_finalizers_after_allocation();
    return p;
}

void *GC_malloc_explicitly_typed(size_t bytes, GC_descr descr)
{
    bdwgc_ensure_init();
    bdwgc_sync();
    if (descr == DESCR_ATOMIC || descr == DESCR_CONSERVATIVE)
        return allocate(bytes, padded(bytes, 0), NULL, descr == DESCR_ATOMIC);
    struct descr *d = (struct descr *)descr;
    size_t rounded = (bytes + sizeof(GC_word) - 1) & ~(sizeof(GC_word) - 1);
    if (rounded < bytes)
        return bdwgc_out_of_memory(bytes);
    if (rounded < d->len * sizeof(GC_word)) /* "may be larger, not smaller" */
        rounded = d->len * sizeof(GC_word);
    const gc_type *t = layout(d, rounded);
    return allocate(bytes, padded(bytes, t ? rounded : 0), t, false);
}

void *GC_malloc_explicitly_typed_ignore_off_page(size_t bytes, GC_descr d)
{
    return GC_malloc_explicitly_typed(bytes, d);
}

void *GC_calloc_explicitly_typed(size_t n, size_t elem_size, GC_descr descr)
{
    bdwgc_ensure_init();
    bdwgc_sync();
    size_t bytes;
    if (__builtin_mul_overflow(n, elem_size, &bytes))
        return bdwgc_out_of_memory(SIZE_MAX);
    if (descr == DESCR_ATOMIC || bytes == 0)
        return allocate(bytes, padded(bytes, 0), NULL, true);
    const gc_type *t = NULL;
    if (descr != DESCR_CONSERVATIVE) {
        struct descr *d = (struct descr *)descr;
        if (elem_size % sizeof(GC_word) == 0 &&
            elem_size >= d->len * sizeof(GC_word))
            t = layout(d, elem_size);
    }
    return allocate(bytes, padded(bytes, 0), t, false);
}
