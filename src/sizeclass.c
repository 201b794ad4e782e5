/*
 * sizeclass.c — builds the size-class table at start-up from a rule rather
 * than a list of numbers, so the waste bound is checked, not hoped for.
 *
 * Pages per span: the fewest pages whose tail waste (span bytes not divisible
 * by the object size) is at most 1/8 of the span. The divide magic maps an
 * offset inside a span to an object index with a multiply; it is exact while
 * offset * size < 2^32, which sizeclass_init checks for every class.
 */
#include "sizeclass.h"

#include "report.h"

CGC_STATE struct size_class size_classes[NUM_SIZE_CLASSES];
CGC_STATE uint8_t class_by_size_8[1024 / 8 + 1];
uint8_t class_by_size_128[(MAX_SMALL_SIZE - 1024) / 128 + 1];

static uint32_t pages_for(uint32_t size)
{
    for (uint32_t npages = 1;; npages++) {
        size_t bytes = npages * PAGE_SIZE;
        if (bytes >= size && (bytes % size) * 8 <= bytes)
            return npages;
    }
}

static void add_class(unsigned *n, uint32_t size)
{
    struct size_class *c = &size_classes[*n];
    c->size = size;
    c->npages = pages_for(size);
    c->nelems = (uint32_t)(c->npages * PAGE_SIZE / size);
    c->magic = (uint32_t)(UINT32_MAX / size + 1);
    if ((uint64_t)c->npages * PAGE_SIZE * size >= ((uint64_t)1 << 32) ||
        c->nelems > SPAN_MAX_OBJECTS)
        report_fatal("internal error: size class %u (%u bytes) breaks the "
                     "span layout",
                     *n, size);
    (*n)++;
}

void sizeclass_init(void)
{
    unsigned n = 1; /* class 0: large objects */
    add_class(&n, 8);
    for (uint32_t size = 16; size <= 256; size += 16)
        add_class(&n, size);
    for (uint32_t base = 256; base < MAX_SMALL_SIZE; base *= 2)
        for (uint32_t step = 1; step <= 8; step++)
            add_class(&n, base + step * (base / 8));
    if (n != NUM_SIZE_CLASSES)
        report_fatal("internal error: %u size classes, expected %u", n,
                     (unsigned)NUM_SIZE_CLASSES);

    unsigned c = 1;
    for (size_t i = 0; i < sizeof class_by_size_8; i++) {
        size_t size = i * 8;
        while (size_classes[c].size < size)
            c++;
        class_by_size_8[i] = (uint8_t)c;
    }
    for (size_t i = 0; i < sizeof class_by_size_128; i++) {
        size_t size = 1024 + i * 128;
        while (size_classes[c].size < size)
            c++;
        class_by_size_128[i] = (uint8_t)c;
    }
}
