/*
 * gc_typed.h — bdwgc's typed allocation (bdwgc 8.2's gc_typed.h), backed
 * by cgc's precise layouts (gc_type_new, gc_alloc_typed).
 *
 * A descriptor says which of the first len words of an object may hold
 * pointers (bit i of the bitmap: word i); the object may be longer, and
 * its words past len hold no pointers. Objects from these functions are
 * scanned only at those words (and, for GC_calloc_explicitly_typed, at
 * those words of every element).
 *
 * Where cgc's layouts cannot say it, the object is scanned conservatively
 * instead, which is always safe (it may only keep more alive):
 *   - GC_calloc_explicitly_typed with an element size that is not a
 *     multiple of sizeof(GC_word), or smaller than the descriptor's len
 *     words;
 *   - more than 32 different object sizes (rounded up to words) allocated
 *     with one descriptor: the sizes past the 32nd;
 *   - GC_make_descriptor when memory ran out (as bdwgc, it then returns a
 *     descriptor that means "scan conservatively").
 * A descriptor with no pointer bit allocates atomic objects (never
 * scanned), as GC_malloc_atomic. Descriptors are immortal and shared:
 * calling GC_make_descriptor again with the same bitmap and len returns the
 * same descriptor and creates no new layout.
 */
#ifndef CGC_BDWGC_GC_TYPED_H
#define CGC_BDWGC_GC_TYPED_H

#include "gc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef GC_word *GC_bitmap;

#define GC_WORDSZ (8 * sizeof(GC_word))
#define GC_get_bit(bm, index)                                                  \
    (((bm)[(index) / GC_WORDSZ] >> ((index) % GC_WORDSZ)) & 1)
#define GC_set_bit(bm, index)                                                  \
    ((bm)[(index) / GC_WORDSZ] |= (GC_word)1 << ((index) % GC_WORDSZ))
#define GC_WORD_OFFSET(t, f) (offsetof(t, f) / sizeof(GC_word))
#define GC_WORD_LEN(t)       (sizeof(t) / sizeof(GC_word))
#define GC_BITMAP_SIZE(t)    ((GC_WORD_LEN(t) + GC_WORDSZ - 1) / GC_WORDSZ)

typedef GC_word GC_descr;

/* The descriptor of objects whose first len words may hold pointers where
 * bitmap (len bits, GC_set_bit) has a one. Thread-safe. */
GC_API GC_descr GC_CALL GC_make_descriptor(const GC_word *bitmap, size_t len);

/* A zeroed object of the given size scanned as d says; the out-of-memory
 * function (GC_set_oom_fn) on failure, as GC_malloc. */
GC_API GC_ATTR_MALLOC void *GC_CALL GC_malloc_explicitly_typed(size_t,
                                                               GC_descr d);
/* The same (cgc always recognises interior pointers). */
GC_API GC_ATTR_MALLOC void *GC_CALL
GC_malloc_explicitly_typed_ignore_off_page(size_t, GC_descr d);
/* An array of nelements elements of element_size bytes, each scanned as d
 * says, zeroed. */
GC_API GC_ATTR_MALLOC void *GC_CALL GC_calloc_explicitly_typed(
    size_t nelements, size_t element_size_in_bytes, GC_descr d);

#ifdef GC_DEBUG
#define GC_MALLOC_EXPLICITLY_TYPED(bytes, d) ((void)(d), GC_MALLOC(bytes))
#define GC_CALLOC_EXPLICITLY_TYPED(n, bytes, d)                                \
    ((void)(d), GC_MALLOC((n) * (bytes)))
#else
#define GC_MALLOC_EXPLICITLY_TYPED(bytes, d)                                   \
    GC_malloc_explicitly_typed(bytes, d)
#define GC_CALLOC_EXPLICITLY_TYPED(n, bytes, d)                                \
    GC_calloc_explicitly_typed(n, bytes, d)
#endif

#ifdef __cplusplus
}
#endif

#endif /* CGC_BDWGC_GC_TYPED_H */
