/*
 * test_layout.c — the layout arithmetic behind every lookup, checked
 * exhaustively against the library's internal tables (it includes src/
 * headers): the size-class rule (alignment, waste bound, pages per span,
 * the bitmap capacity), size -> class for every small size, and the divide
 * magic for every offset of every span of every class.
 */
#include "test_util.h"

#include "sizeclass.h"

static void test_classes_follow_the_rule(void **state)
{
    (void)state;
    gc_init();
    CHECK(size_classes[0].size == 0, "class 0 stands for large objects");
    for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
        const struct size_class *k = &size_classes[c];
        CHECK(k->size > size_classes[c - 1].size, "class %u not increasing", c);
        CHECK(k->size < 16 || k->size % 16 == 0,
              "class %u (%u bytes) breaks 16-byte alignment", c, k->size);
        size_t span = (size_t)k->npages * PAGE_SIZE;
        CHECK(k->nelems == span / k->size, "class %u object count", c);
        CHECK((span % k->size) * 8 <= span,
              "class %u wastes more than 1/8 of its span", c);
        CHECK(k->nelems <= SPAN_MAX_OBJECTS, "class %u overflows bitmaps", c);
        if (c > 1)
            CHECK((uint64_t)(k->size - size_classes[c - 1].size) * 8 <=
                      (uint64_t)size_classes[c - 1].size + 16 * 8,
                  "class %u (%u) too far above class %u (%u)", c, k->size,
                  c - 1, size_classes[c - 1].size);
    }
    CHECK(size_classes[NUM_SIZE_CLASSES - 1].size == MAX_SMALL_SIZE,
          "the last class is %u, not %u",
          size_classes[NUM_SIZE_CLASSES - 1].size, MAX_SMALL_SIZE);
}

static void test_size_to_class_is_smallest_fit(void **state)
{
    (void)state;
    gc_init();
    for (size_t size = 1; size <= MAX_SMALL_SIZE; size++) {
        unsigned c = size_to_class(size);
        CHECK(c >= 1 && c < NUM_SIZE_CLASSES, "size %zu -> class %u", size, c);
        CHECK(size_classes[c].size >= size,
              "size %zu -> class %u (%u) too "
              "small",
              size, c, size_classes[c].size);
        CHECK(size_classes[c - 1].size < size || c == 1,
              "size %zu -> class %u but class %u (%u) fits", size, c, c - 1,
              size_classes[c - 1].size);
    }
}

static void test_divide_magic_exact(void **state)
{
    (void)state;
    gc_init();
    for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
        const struct size_class *k = &size_classes[c];
        size_t span = (size_t)k->npages * PAGE_SIZE;
        for (uint64_t off = 0; off < span; off++) {
            uint32_t idx = (uint32_t)((off * k->magic) >> 32);
            if (idx != off / k->size) {
                CHECK(false,
                      "class %u (%u bytes): offset %llu -> %u, "
                      "expected %llu",
                      c, k->size, (unsigned long long)off, idx,
                      (unsigned long long)(off / k->size));
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes_follow_the_rule),
        cmocka_unit_test(test_size_to_class_is_smallest_fit),
        cmocka_unit_test(test_divide_magic_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
