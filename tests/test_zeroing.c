/*
 * test_zeroing — memory handed out zeroed, also when it is reused.
 *
 * For small and large sizes: objects are filled with garbage, dropped and
 * collected (or freed with gc_free and collected), one of each kind kept
 * so that small spans are reused in place; the memory is then
 * allocated again (the test checks that slots really were reused) with
 * gc_alloc, gc_calloc and gc_alloc_typed, and every requested byte, and
 * the rest of the usable size, must read zero.
 */
#define _GNU_SOURCE
#include "test_util.h"

enum alloc_kind { K_ALLOC, K_CALLOC, K_TYPED, K_NKINDS };
static const char *kind_name[] = {"gc_alloc", "gc_calloc", "gc_alloc_typed"};

static const gc_type *word_type; /* 8 bytes, one pointer at 0 */

static void *alloc_kind(enum alloc_kind k, size_t size)
{
    switch (k) {
    case K_ALLOC:
        return gc_alloc(size);
    case K_CALLOC:
        return size % 8 == 0 ? gc_calloc(size / 8, 8) : gc_calloc(size, 1);
    case K_TYPED:
        return gc_alloc_typed(size, word_type);
    default:
        return NULL;
    }
}

/* The first object of each kind in a batch of garbage stays reachable from
 * this root (and is not freed), so that its span keeps an object and the
 * rest of the batch is reused in place after the sweep. If every object
 * of a small span died, the span would go back to the page heap, and
 * whether its pages come back next depends on the free lists (and on
 * whether a stale stack word happened to keep one object alive): the reuse
 * this test needs would be luck. */
static void *anchor[3];

/* Fill n objects of `size` (at least 8) with garbage and record their
 * addresses hidden; the objects are dropped on return, but for the
 * anchored ones. The garbage is spread over noscan, scanned and typed
 * objects (0x80.. bytes never look like pointers), so that every span kind
 * holds dirty freed memory. */
static NOINLINE void make_garbage(uintptr_t *hidden, size_t n, size_t size,
                                  int explicit_free)
{
    for (size_t i = 0; i < n; i++) {
        void *p = i % 3 == 0   ? gc_alloc_noscan(size)
                  : i % 3 == 1 ? gc_alloc(size)
                               : gc_alloc_typed(size, word_type);
        if (!p) {
            hidden[i] = hide(NULL);
            continue;
        }
        fill_pattern(p, gc_size(p), (unsigned)i);
        hidden[i] = hide(p);
        if (i < 3)
            GC_WRITE(anchor[i], p);
        else if (explicit_free)
            gc_free(p);
    }
}

static int cmp_uintptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Every address ever handed out and then dirtied and dropped in this
 * process (XOR-masked). A new object at one of these addresses is a reused
 * slot; earlier calls' garbage of the same size class counts too. */
static uintptr_t *g_dirty;
static size_t g_ndirty, g_capdirty;

static void remember_dirty(const uintptr_t *hidden, size_t n)
{
    if (g_ndirty + n > g_capdirty) {
        g_capdirty = (g_ndirty + n) * 2;
        g_dirty = realloc(g_dirty, g_capdirty * sizeof *g_dirty);
        if (!g_dirty)
            abort();
    }
    for (size_t i = 0; i < n; i++)
        g_dirty[g_ndirty++] = hidden[i];
}

/* How many of the new objects sit where dirty garbage was. */
static size_t count_reused(void **fresh, size_t n_new)
{
    qsort(g_dirty, g_ndirty, sizeof *g_dirty, cmp_uintptr);
    size_t reused = 0;
    for (size_t i = 0; i < n_new; i++) {
        uintptr_t key = hide(fresh[i]);
        if (bsearch(&key, g_dirty, g_ndirty, sizeof *g_dirty, cmp_uintptr))
            reused++;
    }
    return reused;
}

static void zero_after_reuse(size_t size, size_t n, int explicit_free)
{
    uintptr_t *hidden = malloc(n * sizeof *hidden);
    void **fresh = calloc(n, sizeof *fresh);
    CHECK(hidden && fresh, "malloc");
    /* The new objects stay live (a root) until the round drops them. */
    CHECK(gc_root_add(fresh, n * sizeof *fresh) == 0, "gc_root_add");
    for (int k = 0; k < K_NKINDS; k++) {
        make_garbage(hidden, n, size, explicit_free);
        remember_dirty(hidden, n);
        clear_stack();
        gc_collect();
        size_t bad = 0, first_bad_obj = 0, first_bad_byte = 0;
        size_t bad_tail = 0, tail_obj = 0, tail_byte = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char *p = alloc_kind((enum alloc_kind)k, size);
            CHECK(p != NULL, "%s(%zu) returned NULL", kind_name[k], size);
            GC_WRITE(fresh[i], p);
            size_t z = first_nonzero(p, size);
            if (z != size && bad++ == 0) {
                first_bad_obj = i;
                first_bad_byte = z;
            }
            size_t u = gc_size(p);
            size_t zt = first_nonzero(p + size, u - size);
            if (zt != u - size && bad_tail++ == 0) {
                tail_obj = i;
                tail_byte = size + zt;
            }
        }
        size_t reused = count_reused(fresh, n);
        CHECK(bad == 0,
              "%s(%zu) after reuse (%s): %zu of %zu objects not zeroed "
              "(%zu of them in reused slots); first: object %zu byte %zu",
              kind_name[k], size, explicit_free ? "gc_free" : "unreachable",
              bad, n, reused, first_bad_obj, first_bad_byte);
        CHECK(bad_tail == 0,
              "%s(%zu) after reuse (%s): %zu of %zu objects have garbage "
              "between the requested size and gc_size; first: object %zu "
              "byte %zu of usable %zu",
              kind_name[k], size, explicit_free ? "gc_free" : "unreachable",
              bad_tail, n, tail_obj, tail_byte, gc_size(fresh[tail_obj]));
        /* The test is only meaningful if memory was reused. Small classes
         * reuse slots after a sweep; large spans may be given back and
         * mapped elsewhere, so only ask it of small sizes. */
        if (size <= 32768)
            CHECK(reused > 0,
                  "%s(%zu) (%s): none of %zu new objects reused a slot of "
                  "the collected garbage",
                  kind_name[k], size, explicit_free ? "gc_free" : "unreachable",
                  n);
        /* Dirty this round's objects and drop them: garbage for the next
         * round. */
        for (size_t i = 0; i < n; i++) {
            fill_pattern(fresh[i], gc_size(fresh[i]), (unsigned)i);
            hidden[i] = hide(fresh[i]);
            if (explicit_free)
                gc_free(fresh[i]);
        }
        remember_dirty(hidden, n);
        for (size_t i = 0; i < n; i++)
            GC_WRITE(fresh[i], NULL);
    }
    for (int i = 0; i < 3; i++)
        GC_WRITE(anchor[i], NULL);
    CHECK(gc_root_remove(fresh) == 0, "gc_root_remove");
    free(hidden);
    free(fresh);
}

static void test_zero_small_after_collect(void **state)
{
    (void)state;
    static const size_t sizes[] = {8,   16,  24,   32,   48,   64,  100,
                                   128, 256, 1000, 1024, 4096, 5000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        zero_after_reuse(sizes[i], scaled(2000, 200), 0);
}

static void test_zero_medium_after_collect(void **state)
{
    (void)state;
    static const size_t sizes[] = {8192, 10000, 20000, 32768};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        zero_after_reuse(sizes[i], scaled(200, 40), 0);
}

static void test_zero_large_after_collect(void **state)
{
    (void)state;
    static const size_t sizes[] = {32769, 65536, 300000, 2u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        zero_after_reuse(sizes[i], sizes[i] > 1000000 ? 8 : scaled(40, 10), 0);
}

static void test_zero_after_gc_free(void **state)
{
    (void)state;
    static const size_t sizes[] = {8, 48, 512, 4096, 20000, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        zero_after_reuse(sizes[i], sizes[i] > 32768 ? 16 : scaled(1000, 100),
                         1);
}

static void test_zero_without_collect(void **state)
{
    (void)state;
    /* Fresh memory (no reuse possible without a cycle) is zero too. */
    int prev = gc_set_percent(-1);
    for (size_t s = 1; s < 3000; s += 37)
        for (int k = 0; k < K_NKINDS; k++) {
            if (k == K_TYPED && s < 8)
                continue; /* smaller than the type: EINVAL */
            unsigned char *p = alloc_kind((enum alloc_kind)k, s);
            CHECK(p != NULL, "%s(%zu) returned NULL", kind_name[k], s);
            CHECK(first_nonzero(p, s) == s, "%s(%zu): byte %zu not zero",
                  kind_name[k], s, first_nonzero(p, s));
            fill_pattern(p, gc_size(p), 3);
        }
    gc_set_percent(prev);
}

int main(void)
{
    static const size_t offs[] = {0};
    word_type = gc_type_new(8, offs, 1);
    if (!word_type) {
        fprintf(stderr, "gc_type_new(8, {0}, 1) failed\n");
        return 1;
    }
    if (GC_ROOT(anchor) != 0) {
        fprintf(stderr, "GC_ROOT(anchor) failed\n");
        return 1;
    }
    remember_percent();
    const struct CMUnitTest tests[] = {
        PERCENT_TEST(test_zero_without_collect),
        PERCENT_TEST(test_zero_small_after_collect),
        PERCENT_TEST(test_zero_medium_after_collect),
        PERCENT_TEST(test_zero_large_after_collect),
        PERCENT_TEST(test_zero_after_gc_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
