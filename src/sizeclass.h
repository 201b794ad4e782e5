/*
 * sizeclass.h — the size classes: which object sizes exist, how many pages a
 * span of each holds, and the size -> class lookup used on every allocation.
 *
 * Class 0 stands for large objects (over MAX_SMALL_SIZE bytes), which get a
 * span of their own. Classes 1..NUM_SIZE_CLASSES-1 are 8, 16, then multiples
 * of 16 up to 256, then eight geometric steps per power of two up to 32 KiB,
 * so internal waste stays under 12.5 % (design §4: objects of 16 bytes or
 * more are 16-byte aligned, which every class size guarantees).
 */
#ifndef CGC_SIZECLASS_H
#define CGC_SIZECLASS_H

#include "internal.h"

#include <cgc.h>

#define NUM_SIZE_CLASSES GC_NUM_SIZE_CLASSES
#define MAX_SMALL_SIZE   32768
#define NUM_SPAN_CLASSES (NUM_SIZE_CLASSES * NUM_KINDS)
/* Most objects a span can hold (8-byte objects in one page), which bounds
 * the per-span bitmaps. */
#define SPAN_MAX_OBJECTS  (PAGE_SIZE / 8)
#define SPAN_BITMAP_WORDS (SPAN_MAX_OBJECTS / 64)

struct size_class {
    uint32_t size;   /* object size in bytes */
    uint32_t npages; /* pages per span */
    uint32_t nelems; /* objects per span */
    uint32_t magic;  /* offset * magic >> 32 == offset / size in a span */
};

extern struct size_class size_classes[NUM_SIZE_CLASSES];
/* Lookup tables: class of sizes <= 1024 by (size + 7) / 8, and of larger
 * small sizes by (size - 1024 + 127) / 128. */
extern uint8_t class_by_size_8[1024 / 8 + 1];
extern uint8_t class_by_size_128[(MAX_SMALL_SIZE - 1024) / 128 + 1];

/* Fill the tables; idempotent. */
void sizeclass_init(void);

/* The class of a small size (1..MAX_SMALL_SIZE). */
static inline unsigned size_to_class(size_t size)
{
    if (size <= 1024)
        return class_by_size_8[(size + 7) >> 3];
    return class_by_size_128[(size - 1024 + 127) >> 7];
}

static inline unsigned span_class_of(unsigned size_class, enum object_kind k)
{
    return size_class * NUM_KINDS + (unsigned)k;
}

#endif
