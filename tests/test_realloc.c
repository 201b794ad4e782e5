/*
 * test_realloc — gc_realloc, gc_strdup and gc_calloc.
 *
 * gc_realloc grows and shrinks keeping the contents, zeroes the growth
 * (also when it grows in place after a shrink), treats NULL as gc_alloc,
 * keeps the scanning kind (noscan stays unscanned, typed stays typed,
 * conservative stays conservative), leaves the old object valid while
 * referenced, and on ENOMEM leaves the object untouched. gc_strdup copies
 * into a new object; gc_calloc zeroes and detects n * size overflow (NULL,
 * ENOMEM).
 */
#define _GNU_SOURCE
#include "test_util.h"

static unsigned seed_of(const void *p)
{
    return (unsigned)((uintptr_t)p >> 4);
}

static void test_grow_and_shrink(void **state)
{
    (void)state;
    static const size_t steps[] = {1,        7,    8,     16,    100,
                                   1000,     4096, 40000, 70000, 1u << 20,
                                   3u << 20, 5000, 300,   17,    1};
    unsigned char *p = gc_realloc(NULL, steps[0]);
    CHECK(p != NULL, "gc_realloc(NULL, 1) failed");
    fill_pattern(p, steps[0], 99);
    size_t cur = steps[0];
    for (size_t i = 1; i < sizeof steps / sizeof steps[0]; i++) {
        size_t ns = steps[i];
        unsigned char *q = gc_realloc(p, ns);
        CHECK(q != NULL, "gc_realloc(%zu -> %zu) failed, errno %d", cur, ns,
              errno);
        CHECK(gc_base(q) == q, "gc_realloc result is not an object start");
        CHECK(gc_size(q) >= ns, "gc_realloc(%zu -> %zu): gc_size %zu", cur, ns,
              gc_size(q));
        size_t keep = cur < ns ? cur : ns;
        size_t bad = check_pattern(q, keep, 99);
        CHECK(bad == keep,
              "gc_realloc(%zu -> %zu): byte %zu of the kept "
              "contents changed",
              cur, ns, bad);
        if (ns > cur) {
            size_t z = first_nonzero(q + cur, ns - cur);
            CHECK(z == ns - cur,
                  "gc_realloc(%zu -> %zu): grown byte %zu is "
                  "not zero",
                  cur, ns, cur + z);
        }
        fill_pattern(q, ns, 99);
        p = q;
        cur = ns;
    }
}

static void test_regrow_after_shrink_zeroes(void **state)
{
    (void)state;
    /* Shrink then grow back within the same slot: the bytes between the
     * shrunk size and the new size must read zero again, whether or not
     * the object was resized in place. */
    static const size_t sizes[] = {30, 64, 100, 1000, 4000, 40000, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t s = sizes[i];
        unsigned char *p = gc_alloc(s);
        memset(p, 0xff, s);
        unsigned char *q = gc_realloc(p, s / 3);
        CHECK(q != NULL, "shrink %zu -> %zu failed", s, s / 3);
        unsigned char *r = gc_realloc(q, s);
        CHECK(r != NULL, "grow %zu -> %zu failed", s / 3, s);
        for (size_t k = 0; k < s / 3; k++)
            CHECK(r[k] == 0xff, "size %zu: kept byte %zu changed", s, k);
        size_t z = first_nonzero(r + s / 3, s - s / 3);
        CHECK(
            z == s - s / 3,
            "size %zu: shrink to %zu then grow back: byte %zu (%s) is 0x%02x, "
            "expected zero",
            s, s / 3, s / 3 + z, r == p ? "resized in place" : "moved",
            r[s / 3 + z]);
    }
}

static void test_regrow_after_small_shrink_zeroes(void **state)
{
    (void)state;
    /* A shrink small enough to be done in place (same object), then a grow
     * back within the usable size: bytes past the shrunk size must read
     * zero, so an in-place resize has to clear them. */
    static const size_t sizes[] = {30, 64, 100, 250, 1000, 4000, 40000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t s = sizes[i], small = s - s / 4;
        unsigned char *p = gc_alloc(s);
        memset(p, 0xff, s);
        unsigned char *q = gc_realloc(p, small);
        CHECK(q != NULL, "shrink %zu -> %zu failed", s, small);
        unsigned char *r = gc_realloc(q, s);
        CHECK(r != NULL, "grow %zu -> %zu failed", small, s);
        for (size_t k = 0; k < small; k++)
            CHECK(r[k] == 0xff, "size %zu: kept byte %zu changed", s, k);
        size_t z = first_nonzero(r + small, s - small);
        CHECK(z == s - small,
              "gc_alloc(%zu), filled, gc_realloc to %zu (%s), gc_realloc "
              "back to %zu (%s): byte %zu is 0x%02x, expected zero (bytes "
              "past the old size are zeroed)",
              s, small, q == p ? "in place" : "moved", s,
              r == q ? "in place" : "moved", small + z, r[small + z]);
    }
}

static void test_realloc_null_is_alloc(void **state)
{
    (void)state;
    for (size_t s = 1; s < 5000; s += 123) {
        unsigned char *p = gc_realloc(NULL, s);
        CHECK(p != NULL, "gc_realloc(NULL, %zu) failed", s);
        CHECK(gc_base(p) == p && gc_size(p) >= s,
              "gc_realloc(NULL, %zu) is "
              "not an object of that size",
              s);
        CHECK(first_nonzero(p, s) == s, "gc_realloc(NULL, %zu) not zeroed", s);
    }
}

static void test_old_object_stays_valid(void **state)
{
    (void)state;
    unsigned char *p = gc_alloc(100);
    fill_pattern(p, 100, 5);
    unsigned char *q = gc_realloc(p, 100000); /* surely moves */
    CHECK(q != NULL, "gc_realloc failed");
    memset(q, 0, 100000);
    clear_stack();
    gc_collect();
    CHECK(gc_base(p) == p, "the old object was freed although still "
                           "referenced");
    CHECK(check_pattern(p, 100, 5) == 100,
          "the old object's contents changed after gc_realloc");
}

static void test_realloc_enomem_untouched(void **state)
{
    (void)state;
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX / 2, SIZE_MAX - 4095,
                                  (SIZE_MAX / 2) + 1};
    unsigned char *p = gc_alloc(200);
    fill_pattern(p, 200, 11);
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        errno = 0;
        void *q = gc_realloc(p, huge[i]);
        CHECK(q == NULL, "gc_realloc(p, %zu) returned %p", huge[i], q);
        CHECK_ERRNO(ENOMEM, "gc_realloc(p, huge)");
        CHECK(gc_base(p) == p && check_pattern(p, 200, 11) == 200,
              "gc_realloc(p, %zu) failing touched p", huge[i]);
    }
    unsigned char *r = gc_realloc(p, 400);
    CHECK(r != NULL && check_pattern(r, 200, 11) == 200,
          "gc_realloc after a failed one did not work");
}

/* ---- scanning kind kept ---------------------------------------------------
 */

struct tobj {
    void *ptr;
    uintptr_t word;
};
static const gc_type *tobj_type;

#define NKIND 200

static NOINLINE void *new_target(uintptr_t *hidden)
{
    void *t = gc_alloc_noscan(32);
    fill_pattern(t, 32, seed_of(t));
    *hidden = hide(t);
    return t;
}

/* holders[i] = realloc'd noscan / typed / conservative objects holding
 * targets; keep[] must survive, drop[] must be reclaimed. */
static NOINLINE void build_realloced(void **noscan, void **typed, void **cons,
                                     uintptr_t *keep, uintptr_t *drop)
{
    for (size_t i = 0; i < NKIND; i++) {
        void **n = gc_alloc_noscan(16);
        GC_WRITE(n[0], new_target(&drop[2 * i]));
        n = gc_realloc(n, 64);
        GC_WRITE(n[5], new_target(&drop[2 * i + 1]));
        noscan[i] = n;

        struct tobj *t = gc_alloc_typed(sizeof *t, tobj_type);
        GC_WRITE(t->ptr, new_target(&keep[3 * i]));
        t = gc_realloc(t, 3 * sizeof *t);
        GC_WRITE(t[2].ptr, new_target(&keep[3 * i + 1]));
        t[2].word = (uintptr_t)new_target(&drop[2 * NKIND + i]);
        typed[i] = t;

        void **c = gc_alloc(16);
        GC_WRITE(c[1], new_target(&keep[3 * i + 2]));
        c = gc_realloc(c, 5000);
        cons[i] = c;
    }
}

static void test_realloc_keeps_kind(void **state)
{
    (void)state;
    void *noscan[NKIND], *typed[NKIND], *cons[NKIND];
    uintptr_t keep[3 * NKIND], drop[3 * NKIND];
    build_realloced(noscan, typed, cons, keep, drop);
    clear_stack();
    gc_collect();
    for (size_t i = 0; i < NKIND; i++)
        CHECK(gc_base(noscan[i]) == noscan[i] &&
                  gc_base(typed[i]) == typed[i] && gc_base(cons[i]) == cons[i],
              "a realloc'd holder held by the stack was reclaimed");
    size_t lost = 3 * NKIND - count_alive(keep, 3 * NKIND);
    CHECK(lost == 0,
          "%zu of %d targets held by realloc'd typed (pointer slot) or "
          "conservative objects were reclaimed",
          lost, 3 * NKIND);
    for (size_t i = 0; i < 3 * NKIND; i++) {
        void *t = unhide(keep[i]);
        CHECK(check_pattern(t, 32, seed_of(t)) == 32,
              "retained target %zu lost its contents", i);
    }
    size_t alive = count_alive(drop, 3 * NKIND);
    CHECK(alive * 10 <= 3 * NKIND,
          "%zu of %d targets held only by realloc'd noscan objects or "
          "non-pointer words of realloc'd typed objects survived (allowed: "
          "10%%) -- realloc changed the scanning kind",
          alive, 3 * NKIND);
}

static void test_noscan_realloc_growth(void **state)
{
    (void)state;
    /* Noscan growth need not be zeroed, but the kept part must be kept. */
    unsigned char *p = gc_alloc_noscan(50);
    fill_pattern(p, 50, 3);
    unsigned char *q = gc_realloc(p, 5000);
    CHECK(q != NULL && check_pattern(q, 50, 3) == 50,
          "noscan realloc lost contents");
    CHECK(gc_size(q) >= 5000, "noscan realloc too small");
}

/* ---- gc_strdup --------------------------------------------------------------
 */

static void test_strdup(void **state)
{
    (void)state;
    const char *s = "hello, collector";
    char *d = gc_strdup(s);
    CHECK(d != NULL, "gc_strdup failed");
    CHECK(d != s, "gc_strdup returned its argument");
    CHECK(strcmp(d, s) == 0, "gc_strdup copied \"%s\"", d);
    CHECK(gc_base(d) == d && gc_size(d) >= strlen(s) + 1,
          "gc_strdup result is not a GC object of the right size");

    char *e = gc_strdup("");
    CHECK(e != NULL && e[0] == '\0' && gc_base(e) == e,
          "gc_strdup(\"\") wrong");

    /* Long strings, including a large object. */
    static const size_t lens[] = {100, 4095, 40000, 200000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char *src = malloc(lens[i] + 1);
        CHECK(src != NULL, "malloc");
        for (size_t k = 0; k < lens[i]; k++)
            src[k] = (char)('a' + k % 26);
        src[lens[i]] = '\0';
        char *c = gc_strdup(src);
        CHECK(c != NULL && strcmp(c, src) == 0, "gc_strdup of %zu chars wrong",
              lens[i]);
        CHECK(gc_size(c) >= lens[i] + 1, "gc_strdup of %zu chars: size %zu",
              lens[i], gc_size(c));
        /* The copy is independent of the source. */
        src[0] = 'Z';
        CHECK(c[0] == 'a', "gc_strdup result aliases its source");
        free(src);
    }

    /* The copy survives a collection (held by the stack). */
    clear_stack();
    gc_collect();
    CHECK(strcmp(d, s) == 0, "gc_strdup result changed after gc_collect");

    errno = 0;
    CHECK(gc_strdup(NULL) == NULL, "gc_strdup(NULL) did not return NULL");
    CHECK_ERRNO(EINVAL, "gc_strdup(NULL)");
}

/* ---- gc_calloc -------------------------------------------------------------
 */

static void test_calloc_zeroes(void **state)
{
    (void)state;
    static const size_t dims[][2] = {{1, 1},     {10, 100},    {3, 7},
                                     {1000, 8},  {7, 4096},    {100, 1000},
                                     {1, 40000}, {2, 1u << 20}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        size_t n = dims[i][0], sz = dims[i][1];
        unsigned char *p = gc_calloc(n, sz);
        CHECK(p != NULL, "gc_calloc(%zu, %zu) failed", n, sz);
        CHECK(gc_size(p) >= n * sz, "gc_calloc(%zu, %zu): gc_size %zu", n, sz,
              gc_size(p));
        CHECK(first_nonzero(p, n * sz) == n * sz,
              "gc_calloc(%zu, %zu): byte %zu not zero", n, sz,
              first_nonzero(p, n * sz));
        memset(p, 0x77, n * sz);
    }
}

static void test_calloc_overflow(void **state)
{
    (void)state;
    static const size_t bad[][2] = {
        {SIZE_MAX, SIZE_MAX},
        {SIZE_MAX / 2, 3},
        {3, SIZE_MAX / 2},
        {(SIZE_MAX / 16) + 2, 16},                /* wraps to 16 */
        {16, (SIZE_MAX / 16) + 2},                /* wraps to 16 */
        {((size_t)1 << 32) + 1, (size_t)1 << 32}, /* wraps to 4 GiB */
        {(size_t)1 << 33, (size_t)1 << 31},       /* exactly 2^64: wraps to 0 */
        {2, SIZE_MAX / 2 + 1},                    /* exactly 2^64: wraps to 0 */
        {1, SIZE_MAX},                            /* no wrap, too large */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = gc_calloc(bad[i][0], bad[i][1]);
        CHECK(p == NULL,
              "gc_calloc(%zu, %zu) (product overflows) returned "
              "%p",
              bad[i][0], bad[i][1], p);
        CHECK_ERRNO(ENOMEM, "gc_calloc overflow");
    }
    void *ok = gc_calloc(4, 4);
    CHECK(ok != NULL, "gc_calloc after overflow failures broken");
}

int main(void)
{
    static const size_t offs[] = {offsetof(struct tobj, ptr)};
    tobj_type = gc_type_new(sizeof(struct tobj), offs, 1);
    if (!tobj_type) {
        fprintf(stderr, "gc_type_new failed (errno %d)\n", errno);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_and_shrink),
        cmocka_unit_test(test_regrow_after_shrink_zeroes),
        cmocka_unit_test(test_regrow_after_small_shrink_zeroes),
        cmocka_unit_test(test_realloc_null_is_alloc),
        cmocka_unit_test(test_old_object_stays_valid),
        cmocka_unit_test(test_realloc_enomem_untouched),
        cmocka_unit_test(test_realloc_keeps_kind),
        cmocka_unit_test(test_noscan_realloc_growth),
        cmocka_unit_test(test_strdup),
        cmocka_unit_test(test_calloc_zeroes),
        cmocka_unit_test(test_calloc_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
