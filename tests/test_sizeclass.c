/*
 * test_sizeclass — size rounding and alignment.
 *
 * gc_size(p) >= the requested size for every size 1..4096 and a sample up
 * to 70000; rounding wastes at most 12.5% + 16 bytes for sizes <= 32 KiB;
 * objects of 16 bytes or more are 16-byte aligned, smaller ones 8-byte
 * aligned, for every allocation function; the whole usable size can be
 * written; large objects (> 32 KiB, several MiB) work.
 */
#define _GNU_SOURCE
#include "test_util.h"

#define SMALL_MAX 32768u

/* Sizes to try: every size up to 4096, then a sample up to 70000 including
 * the neighbours of every multiple of 1024. */
static size_t next_size(size_t s)
{
    if (s < 4096)
        return s + 1;
    if (s % 1024 == 1023)
        return s + 1; /* the multiple itself */
    if (s % 1024 == 0)
        return s + 1; /* and one past it */
    size_t n = s + 97;
    size_t k = (s / 1024 + 1) * 1024 - 1; /* one below the next multiple */
    return n < k ? n : k;
}

static void test_size_at_least_requested(void **state)
{
    (void)state;
    size_t tested = 0;
    for (size_t s = 1; s <= 70000; s = next_size(s)) {
        unsigned char *p = gc_alloc(s);
        CHECK(p != NULL, "gc_alloc(%zu) returned NULL (errno %d)", s, errno);
        size_t u = gc_size(p);
        CHECK(u >= s, "gc_alloc(%zu): gc_size = %zu, smaller than requested", s,
              u);
        CHECK(gc_base(p) == p, "gc_alloc(%zu): gc_base(p) = %p, p = %p", s,
              gc_base(p), (void *)p);
        /* The whole usable size belongs to the caller. */
        p[0] = 0x11;
        p[u - 1] = 0x22;
        CHECK(gc_size(p + u - 1) == u,
              "gc_alloc(%zu): gc_size of the last usable byte = %zu, not %zu",
              s, gc_size(p + u - 1), u);
        tested++;
    }
    CHECK(tested > 4096 + 500, "only %zu sizes tried", tested);
}

static void test_rounding_waste(void **state)
{
    (void)state;
    size_t violations = 0;
    size_t last_bad_usable = 0;
    for (size_t s = 1; s <= SMALL_MAX; s = next_size(s)) {
        void *p = gc_alloc(s);
        CHECK(p != NULL, "gc_alloc(%zu) returned NULL", s);
        size_t u = gc_size(p);
        if (u - s > s / 8 + 16) {
            /* Report each offending class once, at its worst size. */
            if (u != last_bad_usable)
                print_error("  size %zu rounds to %zu: waste %zu bytes > "
                            "12.5%% + 16 = %zu\n",
                            s, u, u - s, s / 8 + 16);
            last_bad_usable = u;
            violations++;
        }
    }
    CHECK(violations == 0,
          "%zu requested sizes <= 32 KiB waste more than 12.5%% + 16 bytes "
          "(classes listed above)",
          violations);
}

static void check_alignment(const char *fn, size_t s, const void *p)
{
    CHECK(p != NULL, "%s(%zu) returned NULL", fn, s);
    uintptr_t a = (uintptr_t)p;
    if (s >= 16)
        CHECK(a % 16 == 0, "%s(%zu) = %p is not 16-byte aligned", fn, s, p);
    else
        CHECK(a % 8 == 0, "%s(%zu) = %p is not 8-byte aligned", fn, s, p);
}

static void test_alignment_every_allocator(void **state)
{
    (void)state;
    static const size_t offs[] = {0};
    const gc_type *t8 = gc_type_new(8, offs, 1);
    CHECK(t8 != NULL, "gc_type_new(8, {0}, 1) failed, errno %d", errno);
    for (size_t s = 1; s <= 70000; s = next_size(s)) {
        check_alignment("gc_alloc", s, gc_alloc(s));
        check_alignment("gc_alloc_noscan", s, gc_alloc_noscan(s));
        check_alignment("gc_calloc(1, s)", s, gc_calloc(1, s));
        if (s >= 8)
            check_alignment("gc_alloc_typed", s, gc_alloc_typed(s, t8));
        if (s <= 2048) {
            char *str = malloc(s);
            CHECK(str != NULL, "malloc");
            memset(str, 'x', s - 1);
            str[s - 1] = '\0';
            check_alignment("gc_strdup(strlen+1)", s, gc_strdup(str));
            free(str);
        }
    }
    /* gc_realloc results follow the same rule. */
    void *r = gc_realloc(NULL, 8);
    check_alignment("gc_realloc(NULL, 8)", 8, r);
    for (size_t s = 9; s <= 5000; s += 13) {
        r = gc_realloc(r, s);
        check_alignment("gc_realloc", s, r);
    }
}

static void test_small_classes_are_multiples(void **state)
{
    (void)state;
    /* With 16-byte alignment for objects >= 16 bytes, consecutive objects
     * of a class >= 16 are a multiple of 16 apart, so the usable size of
     * any object >= 16 bytes is a multiple of 16 and of a smaller one a
     * multiple of 8. */
    for (size_t s = 1; s <= SMALL_MAX; s = next_size(s)) {
        void *p = gc_alloc(s);
        size_t u = gc_size(p);
        if (u >= 16)
            CHECK(u % 16 == 0,
                  "gc_size(gc_alloc(%zu)) = %zu, not a multiple "
                  "of 16",
                  s, u);
        else
            CHECK(u % 8 == 0,
                  "gc_size(gc_alloc(%zu)) = %zu, not a multiple "
                  "of 8",
                  s, u);
    }
}

static void test_large_objects(void **state)
{
    (void)state;
    static const size_t sizes[] = {
        SMALL_MAX + 1,
        40000,
        65536,
        65537,
        100000,
        1u << 20,
        (1u << 20) + 1,
        3u << 20,
        (3u << 20) + 5,
        8u << 20,
        (16u << 20) + 12345,
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t s = sizes[i];
        unsigned char *p = gc_alloc(s);
        CHECK(p != NULL, "gc_alloc(%zu) returned NULL, errno %d", s, errno);
        check_alignment("gc_alloc", s, p);
        size_t u = gc_size(p);
        CHECK(u >= s, "gc_alloc(%zu): gc_size %zu < requested", s, u);
        CHECK(u <= s + s / 8 + 65536,
              "gc_alloc(%zu): gc_size %zu is far above the request", s, u);
        CHECK(first_nonzero(p, s) == s, "gc_alloc(%zu): byte %zu is not zero",
              s, first_nonzero(p, s));
        /* Writable over its whole usable size. */
        memset(p, 0x5c, u);
        CHECK(gc_base(p + u - 1) == p,
              "gc_alloc(%zu): gc_base(last byte) = "
              "%p, expected %p",
              s, gc_base(p + u - 1), (void *)p);
        CHECK(gc_base(p + s / 2) == p, "gc_alloc(%zu): gc_base(middle) wrong",
              s);
        CHECK(gc_size(p + s / 3) == u,
              "gc_alloc(%zu): gc_size(interior) = "
              "%zu, expected %zu",
              s, gc_size(p + s / 3), u);
        void *q = gc_alloc_noscan(s);
        CHECK(q != NULL, "gc_alloc_noscan(%zu) returned NULL", s);
        CHECK(gc_size(q) >= s, "gc_alloc_noscan(%zu): gc_size %zu", s,
              gc_size(q));
        memset(q, 0x3a, s);
    }
}

static void test_many_large_objects(void **state)
{
    (void)state;
    /* Several MiB objects, enough to need several arenas' worth of address
     * space over the loop; all garbage but the last few. */
    size_t rounds = scaled(40, 8);
    unsigned char *keep[4] = {0};
    for (size_t i = 0; i < rounds; i++) {
        size_t s = (size_t)(4 + i % 5) << 20;
        unsigned char *p = gc_alloc(s);
        CHECK(p != NULL, "gc_alloc(%zu MiB) round %zu failed", s >> 20, i);
        p[0] = (unsigned char)i;
        p[s - 1] = (unsigned char)~i;
        keep[i % 4] = p;
        for (size_t k = 0; k < 4 && k <= i; k++) {
            size_t j = i - k;
            unsigned char *o = keep[j % 4];
            size_t os = (size_t)(4 + j % 5) << 20;
            CHECK(o[0] == (unsigned char)j && o[os - 1] == (unsigned char)~j,
                  "large object %zu (kept) lost its contents", j);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_at_least_requested),
        cmocka_unit_test(test_rounding_waste),
        cmocka_unit_test(test_alignment_every_allocator),
        cmocka_unit_test(test_small_classes_are_multiples),
        cmocka_unit_test(test_large_objects),
        cmocka_unit_test(test_many_large_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
