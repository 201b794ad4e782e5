/*
 * test_scanning — what the collector scans inside heap objects.
 *
 * Each scenario builds holder objects (kept alive from this stack) that
 * hold pointers to noscan target objects; the targets' addresses are also
 * recorded hidden (XOR-masked, in malloc'd memory). After clearing the
 * stack and a gc_collect:
 *   - targets held where the holder is scanned must all be alive with
 *     their contents intact;
 *   - targets held where the holder must not be scanned must be reclaimed
 *     (at least 90%: conservative stack scanning may find a stale copy).
 * Scenarios: noscan holders, typed holders (pointer vs non-pointer
 * offsets, interior pointers), typed arrays tiled, a trailing partial
 * element (every whole element within gc_size is scanned, a partial one
 * is not), a type without pointers, typed large objects, conservative
 * holders (every word, interior pointers, large), mixed chains.
 */
#define _GNU_SOURCE
#include "test_util.h"

#define NHOLD       200
#define TARGET_SIZE 48

struct sets {
    uintptr_t *keep; /* hidden targets that must survive */
    size_t nkeep;
    uintptr_t *drop; /* hidden targets that must be reclaimed */
    size_t ndrop;
};

/* Static storage: a failed check must not leave a leak behind. */
#define SETS_CAP 8192
static uintptr_t sets_keep[SETS_CAP], sets_drop[SETS_CAP];

static void sets_init(struct sets *s, size_t cap)
{
    if (cap > SETS_CAP)
        abort();
    s->keep = sets_keep;
    s->drop = sets_drop;
    s->nkeep = s->ndrop = 0;
}

static void sets_free(struct sets *s)
{
    s->keep = s->drop = NULL;
}

static unsigned seed_of(const void *p)
{
    return (unsigned)((uintptr_t)p >> 4);
}

/* A noscan target filled with a pattern derived from its address. */
static NOINLINE void *new_target(void)
{
    void *t = gc_alloc_noscan(TARGET_SIZE);
    if (t)
        fill_pattern(t, TARGET_SIZE, seed_of(t));
    return t;
}

static NOINLINE void *keep_target(struct sets *s)
{
    void *t = new_target();
    s->keep[s->nkeep++] = hide(t);
    return t;
}

static NOINLINE void *drop_target(struct sets *s)
{
    void *t = new_target();
    s->drop[s->ndrop++] = hide(t);
    return t;
}

/* Collect and check the two sets. holders[0..nhold) must all be alive. */
static void verify(const char *scenario, void **holders, size_t nhold,
                   struct sets *s)
{
    clear_stack();
    gc_collect();
    for (size_t i = 0; i < nhold; i++)
        CHECK(gc_base(holders[i]) == holders[i],
              "%s: holder %zu (%p), referenced from the stack, was reclaimed",
              scenario, i, holders[i]);
    size_t lost = 0, corrupt = 0;
    for (size_t i = 0; i < s->nkeep; i++) {
        void *t = unhide(s->keep[i]);
        if (gc_base(t) != t) {
            if (lost++ < 5)
                print_error("  %s: retained target %zu at %p was reclaimed\n",
                            scenario, i, t);
        } else if (check_pattern(t, TARGET_SIZE, seed_of(t)) != TARGET_SIZE) {
            corrupt++;
        }
    }
    CHECK(lost == 0,
          "%s: %zu of %zu targets that are referenced from scanned "
          "words were reclaimed",
          scenario, lost, s->nkeep);
    CHECK(corrupt == 0, "%s: %zu of %zu retained targets lost their contents",
          scenario, corrupt, s->nkeep);
    size_t alive = count_alive(s->drop, s->ndrop);
    CHECK(alive * 10 <= s->ndrop,
          "%s: %zu of %zu targets referenced only from words that must not be "
          "scanned are still alive (allowed: 10%%)",
          scenario, alive, s->ndrop);
}

/* ---- noscan -------------------------------------------------------------- */

static NOINLINE void build_noscan(void **holders, struct sets *s)
{
    for (size_t i = 0; i < NHOLD; i++) {
        void **h = gc_alloc_noscan(64);
        for (size_t w = 0; w < 8; w++)
            GC_WRITE(h[w], drop_target(s));
        holders[i] = h;
    }
}

static void test_noscan_not_scanned(void **state)
{
    (void)state;
    void *holders[NHOLD];
    struct sets s;
    sets_init(&s, NHOLD * 8);
    build_noscan(holders, &s);
    verify("noscan holder", holders, NHOLD, &s);
    sets_free(&s);
}

/* ---- typed -----------------------------------------------------------------
 */

/* 32 bytes: pointers at 0 and 16, plain words at 8 and 24. */
struct tobj {
    void *p0;
    uintptr_t w8;
    void *p16;
    uintptr_t w24;
};
static const gc_type *tobj_type;
static const gc_type *nptr_type; /* 16 bytes, no pointers */

static NOINLINE void build_typed(void **holders, struct sets *s)
{
    for (size_t i = 0; i < NHOLD; i++) {
        struct tobj *h = gc_alloc_typed(sizeof *h, tobj_type);
        GC_WRITE(h->p0, keep_target(s));
        h->w8 = (uintptr_t)drop_target(s);
        GC_WRITE(h->p16, (char *)keep_target(s) + 5); /* interior */
        h->w24 = (uintptr_t)drop_target(s) + 3;
        holders[i] = h;
    }
}

static void test_typed_only_pointer_offsets(void **state)
{
    (void)state;
    void *holders[NHOLD];
    struct sets s;
    sets_init(&s, NHOLD * 2);
    build_typed(holders, &s);
    verify("typed object", holders, NHOLD, &s);
    sets_free(&s);
}

#define NELEM 16

static NOINLINE void build_typed_array(void **holders, size_t nhold,
                                       size_t nelem, struct sets *s)
{
    for (size_t i = 0; i < nhold; i++) {
        struct tobj *a = gc_alloc_typed(nelem * sizeof *a, tobj_type);
        for (size_t e = 0; e < nelem; e++) {
            GC_WRITE(a[e].p0, keep_target(s));
            a[e].w8 = (uintptr_t)drop_target(s);
            GC_WRITE(a[e].p16, (char *)keep_target(s) + TARGET_SIZE - 1);
            a[e].w24 = (uintptr_t)drop_target(s);
        }
        holders[i] = a;
    }
}

static void test_typed_array_tiled(void **state)
{
    (void)state;
    void *holders[NHOLD / 8];
    struct sets s;
    sets_init(&s, NHOLD / 8 * NELEM * 2);
    build_typed_array(holders, NHOLD / 8, NELEM, &s);
    verify("typed array (16 elements)", holders, NHOLD / 8, &s);
    sets_free(&s);
}

static void test_typed_large_array_tiled(void **state)
{
    (void)state;
    /* 2000 elements of 32 bytes: a large object (64000 bytes). */
    void *holders[2];
    struct sets s;
    sets_init(&s, 2 * 2000 * 2);
    build_typed_array(holders, 2, 2000, &s);
    CHECK(gc_size(holders[0]) >= 2000 * sizeof(struct tobj), "size");
    verify("typed large array (2000 elements)", holders, 2, &s);
    sets_free(&s);
}

static NOINLINE void build_typed_trailing(void **holders, struct sets *s)
{
    /* Every whole element within the usable size (gc_size) is scanned;
     * trailing bytes that do not make a whole element are not. Requests of
     * 3 elements + 8 bytes and 3 elements + 24 bytes: whatever the size
     * class makes of them, a pointer in a whole element retains and a
     * pointer in the trailing partial element does not. */
    for (size_t i = 0; i < NHOLD; i++) {
        size_t req = 3 * sizeof(struct tobj) + ((i & 1) ? 24 : 8);
        struct tobj *a = gc_alloc_typed(req, tobj_type);
        size_t whole = gc_size(a) / sizeof *a;
        for (size_t e = 0; e < whole; e++) {
            GC_WRITE(a[e].p0, keep_target(s));
            GC_WRITE(a[e].p16, keep_target(s));
        }
        size_t tail = gc_size(a) - whole * sizeof *a;
        if (tail >= sizeof(void *)) {
            void **partial = (void **)&a[whole];
            GC_WRITE(partial[0], drop_target(s)); /* p0 of a partial one */
        }
        holders[i] = a;
    }
}

static void test_typed_trailing_partial_element(void **state)
{
    (void)state;
    void *holders[NHOLD];
    struct sets s;
    sets_init(&s, NHOLD * 10);
    build_typed_trailing(holders, &s);
    CHECK(s.ndrop >= NHOLD / 4,
          "only %zu of %d objects had a trailing partial element; the test "
          "needs sizes whose usable size is not a whole number of elements",
          s.ndrop, NHOLD);
    verify("typed array with a trailing partial element", holders, NHOLD, &s);
    sets_free(&s);
}

static NOINLINE void build_no_pointer_type(void **holders, struct sets *s)
{
    for (size_t i = 0; i < NHOLD; i++) {
        void **h = gc_alloc_typed(16 * 4, nptr_type);
        for (size_t w = 0; w < 8; w++)
            GC_WRITE(h[w], drop_target(s));
        holders[i] = h;
    }
}

static void test_type_without_pointers(void **state)
{
    (void)state;
    void *holders[NHOLD];
    struct sets s;
    sets_init(&s, NHOLD * 8);
    build_no_pointer_type(holders, &s);
    verify("typed object whose type has no pointers", holders, NHOLD, &s);
    sets_free(&s);
}

/* ---- conservative -------------------------------------------------------- */

static NOINLINE void build_conservative(void **holders, struct sets *s)
{
    for (size_t i = 0; i < NHOLD; i++) {
        void **h = gc_alloc(8 * sizeof(void *));
        for (size_t w = 0; w < 8; w++) {
            char *t = keep_target(s);
            /* even words: start pointers; odd words: interior pointers */
            GC_WRITE(h[w], (w & 1) ? t + (w * 5) % TARGET_SIZE : t);
        }
        holders[i] = h;
    }
}

static void test_conservative_every_word(void **state)
{
    (void)state;
    void *holders[NHOLD];
    struct sets s;
    sets_init(&s, NHOLD * 8);
    build_conservative(holders, &s);
    verify("conservative object", holders, NHOLD, &s);
    sets_free(&s);
}

static NOINLINE void build_conservative_large(void **holders, struct sets *s)
{
    /* A 1 MiB conservative object with pointers spread over it, up to its
     * last word; and one made by gc_calloc. */
    const size_t words = (1u << 20) / sizeof(void *);
    void **h = gc_alloc(words * sizeof(void *));
    for (size_t w = 0; w < words; w += 1021)
        GC_WRITE(h[w], keep_target(s));
    GC_WRITE(h[words - 1], keep_target(s));
    holders[0] = h;
    void **c = gc_calloc(5000, sizeof(void *));
    for (size_t w = 0; w < 5000; w += 97)
        GC_WRITE(c[w], (char *)keep_target(s) + 1);
    GC_WRITE(c[4999], keep_target(s));
    holders[1] = c;
}

static void test_conservative_large(void **state)
{
    (void)state;
    void *holders[2];
    struct sets s;
    sets_init(&s, 2000);
    build_conservative_large(holders, &s);
    verify("large conservative objects", holders, 2, &s);
    sets_free(&s);
}

/* conservative -> typed (pointer slot) -> conservative -> noscan target;
 * a noscan object in the middle of a second chain cuts it. */
static NOINLINE void build_chains(void **holders, struct sets *s)
{
    for (size_t i = 0; i < NHOLD; i++) {
        void **c1 = gc_alloc(32);
        struct tobj *t = gc_alloc_typed(sizeof *t, tobj_type);
        void **c2 = gc_alloc(16);
        GC_WRITE(c2[1], keep_target(s));
        GC_WRITE(t->p16, c2);
        GC_WRITE(c1[3], t);
        /* second chain, cut by a noscan link */
        void **n = gc_alloc_noscan(16);
        void **c3 = gc_alloc(16);
        GC_WRITE(c3[0], drop_target(s));
        GC_WRITE(n[0], c3);
        GC_WRITE(c1[0], n);
        holders[i] = c1;
    }
}

static void test_mixed_chains(void **state)
{
    (void)state;
    void *holders[NHOLD];
    struct sets s;
    sets_init(&s, NHOLD);
    build_chains(holders, &s);
    verify("mixed chains", holders, NHOLD, &s);
    sets_free(&s);
}

int main(void)
{
    static const size_t offs[] = {offsetof(struct tobj, p0),
                                  offsetof(struct tobj, p16)};
    tobj_type = gc_type_new(sizeof(struct tobj), offs, 2);
    nptr_type = gc_type_new(16, NULL, 0);
    if (!tobj_type || !nptr_type) {
        fprintf(stderr, "gc_type_new failed (errno %d)\n", errno);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noscan_not_scanned),
        cmocka_unit_test(test_typed_only_pointer_offsets),
        cmocka_unit_test(test_typed_array_tiled),
        cmocka_unit_test(test_typed_large_array_tiled),
        cmocka_unit_test(test_typed_trailing_partial_element),
        cmocka_unit_test(test_type_without_pointers),
        cmocka_unit_test(test_conservative_every_word),
        cmocka_unit_test(test_conservative_large),
        cmocka_unit_test(test_mixed_chains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
