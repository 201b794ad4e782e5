/*
 * alloc.c — bdwgc's allocation functions on gc_alloc and gc_alloc_noscan.
 *
 * Every object gets bdwgc_extra_bytes more than asked (bdwgc does the same
 * with GC_all_interior_pointers), so that a pointer just past its end,
 * common in C loops, names the object and not the next one. Each call
 * first applies variables the program changed (bdwgc_sync), and afterwards
 * runs the finalizers that became ready, as bdwgc does from its
 * allocation path unless GC_finalize_on_demand is set.
 */
#include "bdwgc.h"

#include "heap.h"

#include <cgc.h>
#include <errno.h>
#include <string.h>

/* The request plus the extra bytes, or 0 if that overflows. */
static size_t padded(size_t bytes)
{
    size_t total = bytes + bdwgc_extra_bytes;
    return total < bytes ? 0 : total;
}

static void *allocate(size_t bytes, bool atomic)
{
    bdwgc_ensure_init();
    bdwgc_sync();
    size_t total = padded(bytes);
    void *p = NULL;
    if (total)
        p = atomic ? gc_alloc_noscan(total) : gc_alloc(total);
    if (!p)
        return bdwgc_out_of_memory(bytes);
    bdwgc_finalizers_after_allocation();
    return p;
}

void *GC_malloc(size_t bytes)
{
    return allocate(bytes, false);
}

void *GC_malloc_atomic(size_t bytes)
{
    return allocate(bytes, true);
}

void *GC_malloc_ignore_off_page(size_t bytes)
{
    return allocate(bytes, false);
}

void *GC_malloc_atomic_ignore_off_page(size_t bytes)
{
    return allocate(bytes, true);
}

void *GC_malloc_uncollectable(size_t bytes)
{
    bdwgc_ensure_init();
    void *p = bdwgc_uncollectable_alloc(bytes, false);
    return p ? p : bdwgc_out_of_memory(bytes);
}

void *GC_malloc_atomic_uncollectable(size_t bytes)
{
    bdwgc_ensure_init();
    void *p = bdwgc_uncollectable_alloc(bytes, true);
    return p ? p : bdwgc_out_of_memory(bytes);
}

/* Objects per GC_malloc_many call: about a page's worth, as bdwgc hands
 * out a page of free-list entries at once. */
#define MANY_BYTES 4096

void *GC_malloc_many(size_t bytes)
{
    if (bytes < sizeof(void *))
        bytes = sizeof(void *);
    size_t count = MANY_BYTES / bytes;
    if (count == 0)
        count = 1;
    void *head = NULL;
    for (size_t i = 0; i < count; i++) {
        void *p = allocate(bytes, false);
        if (!p)
            break;
        GC_NEXT(p) = head; /* a fresh object: no barrier needed */
        head = p;
    }
    return head;
}

static bool power_of_two(size_t n)
{
    return n && (n & (n - 1)) == 0;
}

void *GC_memalign(size_t align, size_t bytes)
{
    /* Every object is aligned to 16 bytes. Larger alignments: allocate
     * enough to slide the start up, as bdwgc does; the aligned pointer is
     * an interior pointer, which keeps the object alive. */
    if (align <= 16)
        return allocate(bytes, false);
    if (!power_of_two(align) || bytes + align < bytes) {
        errno = EINVAL;
        return NULL;
    }
    char *p = allocate(bytes + align - 1, false);
    if (!p)
        return NULL;
    uintptr_t aligned = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    return (void *)aligned;
}

int GC_posix_memalign(void **out, size_t align, size_t bytes)
{
    if (!power_of_two(align) || align % sizeof(void *) != 0)
        return EINVAL;
    void *p = GC_memalign(align, bytes);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *GC_realloc(void *p, size_t bytes)
{
    if (!p)
        return GC_malloc(bytes);
    if (bytes == 0) {
        GC_free(p);
        return NULL;
    }
    bdwgc_ensure_init();
    if (bdwgc_is_uncollectable(p)) {
        void *q = bdwgc_uncollectable_realloc(p, bytes);
        return q ? q : bdwgc_out_of_memory(bytes);
    }
    size_t total = padded(bytes);
    void *q = total ? gc_realloc(p, total) : NULL;
    if (!q)
        return bdwgc_out_of_memory(bytes);
    bdwgc_finalizers_after_allocation();
    return q;
}

void GC_free(void *p)
{
    if (!p)
        return;
    bdwgc_uncollectable_remove(p);
    gc_free(p);
}

char *GC_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    char *copy = allocate(len + 1, true);
    if (copy)
        memcpy(copy, s, len + 1);
    return copy;
}

char *GC_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t len = strnlen(s, n);
    char *copy = allocate(len + 1, true);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = 0;
    }
    return copy;
}

void *GC_base(void *p)
{
    return GC_is_init_called() ? gc_base(p) : NULL;
}

int GC_is_heap_ptr(const void *p)
{
    return GC_is_init_called() && span_lookup((uintptr_t)p) != NULL;
}

size_t GC_size(const void *p)
{
    return GC_is_init_called() ? gc_size(p) : 0;
}

/* ---- the debugging forms: the same objects, no debug headers ----------- */

void *GC_debug_malloc(size_t bytes, const char *descr, int lineno)
{
    (void)descr, (void)lineno;
    return GC_malloc(bytes);
}

void *GC_debug_malloc_atomic(size_t bytes, const char *descr, int lineno)
{
    (void)descr, (void)lineno;
    return GC_malloc_atomic(bytes);
}

void *GC_debug_malloc_uncollectable(size_t bytes, const char *descr, int lineno)
{
    (void)descr, (void)lineno;
    return GC_malloc_uncollectable(bytes);
}

void *GC_debug_malloc_atomic_uncollectable(size_t bytes, const char *descr,
                                           int lineno)
{
    (void)descr, (void)lineno;
    return GC_malloc_atomic_uncollectable(bytes);
}

void *GC_debug_malloc_ignore_off_page(size_t bytes, const char *descr,
                                      int lineno)
{
    (void)descr, (void)lineno;
    return GC_malloc_ignore_off_page(bytes);
}

void *GC_debug_malloc_atomic_ignore_off_page(size_t bytes, const char *descr,
                                             int lineno)
{
    (void)descr, (void)lineno;
    return GC_malloc_atomic_ignore_off_page(bytes);
}

void *GC_debug_realloc(void *p, size_t bytes, const char *descr, int lineno)
{
    (void)descr, (void)lineno;
    return GC_realloc(p, bytes);
}

void GC_debug_free(void *p)
{
    GC_free(p);
}

char *GC_debug_strdup(const char *s, const char *descr, int lineno)
{
    (void)descr, (void)lineno;
    return GC_strdup(s);
}

char *GC_debug_strndup(const char *s, size_t n, const char *descr, int lineno)
{
    (void)descr, (void)lineno;
    return GC_strndup(s, n);
}
