/*
 * test_pointers — the arena index: pointer -> object.
 *
 * gc_base of an object's start, of an interior byte and of its last usable
 * byte returns the start; one past the end never returns this object (it
 * is the next slot's start or NULL); gc_size of an interior pointer is the
 * object's size; addresses that are not in the GC heap (stack, malloc,
 * NULL, globals, string literals) give gc_base NULL and gc_size 0; the same
 * for large objects and for every allocation function.
 */
#define _GNU_SOURCE
#include "test_util.h"

static int a_global_int = 42;
static char a_global_buf[4096];

/* Check the start / interior / last byte / one-past-end of p. */
static void check_object(const char *what, unsigned char *p, size_t req)
{
    CHECK(p != NULL, "%s(%zu) returned NULL", what, req);
    size_t u = gc_size(p);
    CHECK(u >= req, "%s(%zu): gc_size = %zu", what, req, u);
    CHECK(gc_base(p) == p, "%s(%zu): gc_base(start) = %p, expected %p", what,
          req, gc_base(p), (void *)p);
    if (u > 1) {
        CHECK(gc_base(p + 1) == p,
              "%s(%zu): gc_base(start+1) = %p, "
              "expected %p",
              what, req, gc_base(p + 1), (void *)p);
        CHECK(gc_base(p + u / 2) == p,
              "%s(%zu): gc_base(start+%zu) = %p, "
              "expected %p",
              what, req, u / 2, gc_base(p + u / 2), (void *)p);
        CHECK(gc_size(p + u / 2) == u,
              "%s(%zu): gc_size(interior) = %zu, "
              "expected %zu",
              what, req, gc_size(p + u / 2), u);
    }
    CHECK(gc_base(p + u - 1) == p,
          "%s(%zu): gc_base(last usable byte, "
          "start+%zu) = %p, expected %p",
          what, req, u - 1, gc_base(p + u - 1), (void *)p);
    CHECK(gc_size(p + u - 1) == u, "%s(%zu): gc_size(last byte) = %zu", what,
          req, gc_size(p + u - 1));
    void *past = gc_base(p + u);
    CHECK(past != p,
          "%s(%zu): gc_base(one past the end) returned the object "
          "itself",
          what, req);
    CHECK(past == NULL || past == p + u,
          "%s(%zu): gc_base(one past the end, %p) = %p: neither NULL nor the "
          "next slot",
          what, req, (void *)(p + u), past);
}

static void test_base_and_size_small(void **state)
{
    (void)state;
    for (size_t s = 1; s <= 32768; s += (s < 512 ? 1 : s / 16)) {
        check_object("gc_alloc", gc_alloc(s), s);
        check_object("gc_alloc_noscan", gc_alloc_noscan(s), s);
        check_object("gc_calloc", gc_calloc(1, s), s);
    }
}

static void test_base_and_size_typed_and_strdup(void **state)
{
    (void)state;
    static const size_t offs[] = {0, 16};
    const gc_type *t = gc_type_new(32, offs, 2);
    CHECK(t != NULL, "gc_type_new failed");
    for (size_t n = 1; n < 300; n += 7)
        check_object("gc_alloc_typed", gc_alloc_typed(n * 32, t), n * 32);
    char *s = gc_strdup("hello, interior pointers");
    check_object("gc_strdup", (unsigned char *)s, strlen(s) + 1);
    unsigned char *r = gc_realloc(NULL, 100);
    check_object("gc_realloc(NULL)", r, 100);
    r = gc_realloc(r, 3000);
    check_object("gc_realloc(grow)", r, 3000);
}

static void test_neighbours(void **state)
{
    (void)state;
    /* Consecutive objects of one class: each pointer maps to its own
     * object, never to a neighbour. */
    enum { N = 512 };
    unsigned char *objs[N];
    for (size_t i = 0; i < N; i++) {
        objs[i] = gc_alloc(48);
        CHECK(objs[i] != NULL, "gc_alloc(48) #%zu failed", i);
    }
    for (size_t i = 0; i < N; i++) {
        size_t u = gc_size(objs[i]);
        for (size_t off = 0; off < u; off += 7)
            CHECK(gc_base(objs[i] + off) == objs[i],
                  "object %zu at %p: gc_base(+%zu) = %p", i, (void *)objs[i],
                  off, gc_base(objs[i] + off));
    }
    /* Every object is distinct and the ranges do not overlap. */
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++) {
            unsigned char *a = objs[i], *b = objs[j];
            int disjoint = a + gc_size(a) <= b || b + gc_size(b) <= a;
            CHECK(disjoint, "objects %p (+%zu) and %p (+%zu) overlap",
                  (void *)a, gc_size(a), (void *)b, gc_size(b));
        }
}

static void test_not_heap_addresses(void **state)
{
    (void)state;
    int local = 7;
    char local_buf[256];
    memset(local_buf, 1, sizeof local_buf);
    void *m = malloc(100);
    void *big = malloc(1 << 20);
    CHECK(m && big, "malloc failed");
    const char *literal = "a string literal";
    const void *cases[] = {
        NULL,
        &local,
        local_buf + 100,
        m,
        (char *)m + 50,
        big,
        (char *)big + 4096,
        &a_global_int,
        a_global_buf,
        a_global_buf + 2048,
        literal,
        (void *)&errno,
    };
    const char *names[] = {
        "NULL",          "stack int",     "stack buffer",    "malloc",
        "malloc+50",     "malloc 1 MiB",  "malloc 1 MiB+4K", "global int",
        "global buffer", "global buf+2K", "string literal",  "errno (TLS)",
    };
    /* Make sure the heap exists while we ask. */
    void *obj = gc_alloc(64);
    CHECK(obj != NULL, "gc_alloc(64) failed");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(gc_base(cases[i]) == NULL, "gc_base(%s = %p) = %p, expected NULL",
              names[i], cases[i], gc_base(cases[i]));
        CHECK(gc_size(cases[i]) == 0, "gc_size(%s = %p) = %zu, expected 0",
              names[i], cases[i], gc_size(cases[i]));
    }
    /* Arbitrary addresses far from anything. */
    static const uintptr_t wild[] = {
        1,
        4096,
        0x7fff0000u,
        (uintptr_t)1 << 40,
        (uintptr_t)0x00007ffffffff000ull,
        (uintptr_t)0xffff800000000000ull,
        UINTPTR_MAX,
        UINTPTR_MAX - 4095,
    };
    for (size_t i = 0; i < sizeof wild / sizeof wild[0]; i++) {
        const void *w = (const void *)wild[i];
        CHECK(gc_base(w) == NULL, "gc_base(%p) = %p, expected NULL", w,
              gc_base(w));
        CHECK(gc_size(w) == 0, "gc_size(%p) = %zu, expected 0", w, gc_size(w));
    }
    free(m);
    free(big);
}

static void test_large_interior(void **state)
{
    (void)state;
    static const size_t sizes[] = {32769, 65536, 200000, 5u << 20,
                                   (9u << 20) + 3};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t s = sizes[i];
        unsigned char *p = gc_alloc(s);
        check_object("gc_alloc(large)", p, s);
        size_t u = gc_size(p);
        /* Every page of the object maps back to it. */
        for (size_t off = 0; off < u; off += 4096) {
            CHECK(gc_base(p + off) == p,
                  "large %zu: gc_base(+%zu) = %p, "
                  "expected %p",
                  s, off, gc_base(p + off), (void *)p);
            CHECK(gc_size(p + off) == u, "large %zu: gc_size(+%zu) = %zu", s,
                  off, gc_size(p + off));
        }
        unsigned char *q = gc_alloc_noscan(s);
        check_object("gc_alloc_noscan(large)", q, s);
    }
}

static void test_init_idempotent(void **state)
{
    (void)state;
    CHECK(gc_init() == 0, "gc_init() did not return 0");
    CHECK(gc_init() == 0, "second gc_init() did not return 0");
    void *p = gc_alloc(10);
    CHECK(gc_base(p) == p, "allocation after gc_init broken");
    CHECK(gc_init() == 0, "gc_init() after allocation did not return 0");
    CHECK(gc_base(p) == p, "gc_init() disturbed a live object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_idempotent),
        cmocka_unit_test(test_base_and_size_small),
        cmocka_unit_test(test_base_and_size_typed_and_strdup),
        cmocka_unit_test(test_neighbours),
        cmocka_unit_test(test_not_heap_addresses),
        cmocka_unit_test(test_large_interior),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
