/*
 * test_roots — registered roots.
 *
 * A registered global (GC_ROOT), a registered malloc'd table and many
 * small roots keep their objects alive across gc_collect; after
 * gc_root_remove the objects of the malloc'd ranges are reclaimed (at least
 * 90%: conservative stack scanning may find a stale copy), while a static
 * stays a root (module data is scanned by default) until it is cleared. Bad
 * input: gc_root_add with a NULL address, size 0, a wrapping range, or
 * overlapping a registered root -> -1 EINVAL; gc_root_remove of an address
 * where no root starts
 * -> -1 ENOENT; a root can be added again after removal; adjacent roots
 * are not overlapping.
 */
#define _GNU_SOURCE
#include "test_util.h"

#define NOBJ     256
#define OBJ_SIZE 40

static void *g_objs[NOBJ];
static struct {
    long id;
    void *obj;
    char name[16];
} g_struct;

static unsigned seed_of(const void *p)
{
    return (unsigned)((uintptr_t)p >> 4);
}

/* Fill table[0..n) (a root) with fresh objects through GC_WRITE; record
 * them hidden. */
static NOINLINE void fill_table(void **table, size_t n, uintptr_t *hidden)
{
    for (size_t i = 0; i < n; i++) {
        void *p = gc_alloc_noscan(OBJ_SIZE);
        fill_pattern(p, OBJ_SIZE, seed_of(p));
        hidden[i] = hide(p);
        GC_WRITE(table[i], p);
    }
}

/* Churn: garbage that gives the collector something to do and reuses any
 * memory it wrongly freed. */
static NOINLINE void churn(size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = gc_alloc(OBJ_SIZE);
        memset(p, 0xee, OBJ_SIZE);
    }
}

static void expect_all_alive(const char *what, uintptr_t *hidden, size_t n)
{
    size_t lost = 0, corrupt = 0;
    for (size_t i = 0; i < n; i++) {
        void *p = unhide(hidden[i]);
        if (gc_base(p) != p)
            lost++;
        else if (check_pattern(p, OBJ_SIZE, seed_of(p)) != OBJ_SIZE)
            corrupt++;
    }
    CHECK(lost == 0,
          "%s: %zu of %zu objects held by a registered root were "
          "reclaimed",
          what, lost, n);
    CHECK(corrupt == 0,
          "%s: %zu of %zu objects held by a root lost their "
          "contents",
          what, corrupt, n);
}

static void expect_mostly_reclaimed(const char *what, uintptr_t *hidden,
                                    size_t n)
{
    size_t alive = count_alive(hidden, n);
    CHECK(alive * 10 <= n,
          "%s: %zu of %zu objects still alive after their root was removed "
          "(allowed: 10%%)",
          what, alive, n);
}

static void test_global_root(void **state)
{
    (void)state;
    uintptr_t hidden[NOBJ];
    errno = 0;
    CHECK(GC_ROOT(g_objs) == 0, "GC_ROOT(g_objs) failed, errno %d", errno);
    fill_table(g_objs, NOBJ, hidden);
    for (int round = 0; round < 3; round++) {
        clear_stack();
        gc_collect();
        churn(scaled(20000, 2000));
        expect_all_alive("registered global array", hidden, NOBJ);
    }
    CHECK(gc_root_remove(g_objs) == 0,
          "gc_root_remove(g_objs) failed, errno "
          "%d",
          errno);
    /* A static is a root anyway (CGC_SCAN_GLOBALS defaults to 1): removing
     * the registration loses nothing. */
    clear_stack();
    gc_collect();
    expect_all_alive("global array after gc_root_remove", hidden, NOBJ);
    for (size_t i = 0; i < NOBJ; i++)
        GC_WRITE(g_objs[i], NULL);
    clear_stack();
    gc_collect();
    expect_mostly_reclaimed("global array cleared", hidden, NOBJ);
}

static NOINLINE void fill_struct(uintptr_t *hidden)
{
    void *p = gc_alloc_noscan(OBJ_SIZE);
    fill_pattern(p, OBJ_SIZE, seed_of(p));
    *hidden = hide(p);
    g_struct.id = 7;
    GC_WRITE(g_struct.obj, p);
}

static void test_global_struct_root(void **state)
{
    (void)state;
    uintptr_t hidden;
    CHECK(GC_ROOT(g_struct) == 0, "GC_ROOT(g_struct) failed, errno %d", errno);
    fill_struct(&hidden);
    clear_stack();
    gc_collect();
    churn(scaled(10000, 1000));
    gc_collect();
    expect_all_alive("registered global struct", &hidden, 1);
    CHECK(gc_root_remove(&g_struct) == 0, "gc_root_remove failed");
    g_struct.obj = NULL;
}

static void test_malloc_table_root(void **state)
{
    (void)state;
    const size_t n = 4096;
    void **table = calloc(n, sizeof *table);
    uintptr_t *hidden = malloc(n * sizeof *hidden);
    CHECK(table && hidden, "malloc");
    CHECK(gc_root_add(table, n * sizeof *table) == 0,
          "gc_root_add(malloc'd table) failed, errno %d", errno);
    fill_table(table, n, hidden);
    clear_stack();
    gc_collect();
    churn(scaled(50000, 5000));
    gc_collect();
    expect_all_alive("malloc'd table root", hidden, n);
    CHECK(gc_root_remove(table) == 0, "gc_root_remove(table) failed");
    clear_stack();
    gc_collect();
    expect_mostly_reclaimed("malloc'd table after gc_root_remove", hidden, n);
    free(table);
    free(hidden);
}

static void test_many_small_roots(void **state)
{
    (void)state;
    /* 1000 separate one-word roots, registered, used, then removed. */
    const size_t n = 1000;
    void **slots = calloc(n * 2, sizeof *slots); /* every other word */
    uintptr_t *hidden = malloc(n * sizeof *hidden);
    CHECK(slots && hidden, "malloc");
    for (size_t i = 0; i < n; i++)
        CHECK(gc_root_add(&slots[2 * i], sizeof(void *)) == 0,
              "gc_root_add of small root %zu failed, errno %d", i, errno);
    for (size_t i = 0; i < n; i++)
        fill_table(&slots[2 * i], 1, &hidden[i]);
    clear_stack();
    gc_collect();
    churn(scaled(20000, 2000));
    gc_collect();
    expect_all_alive("1000 small roots", hidden, n);
    /* Remove in a scattered order. */
    for (size_t k = 0; k < n; k++) {
        size_t i = (k * 7919) % n;
        CHECK(gc_root_remove(&slots[2 * i]) == 0,
              "gc_root_remove of small root %zu failed, errno %d", i, errno);
    }
    clear_stack();
    gc_collect();
    expect_mostly_reclaimed("1000 small roots after removal", hidden, n);
    free(slots);
    free(hidden);
}

static void test_root_add_bad_input(void **state)
{
    (void)state;
    static char buf[512];
    char local[64];

    errno = 0;
    CHECK(gc_root_add(NULL, 64) == -1, "gc_root_add(NULL, 64) did not fail");
    CHECK_ERRNO(EINVAL, "gc_root_add(NULL, 64)");

    errno = 0;
    CHECK(gc_root_add(buf, 0) == -1, "gc_root_add(buf, 0) did not fail");
    CHECK_ERRNO(EINVAL, "gc_root_add(buf, 0)");

    errno = 0;
    CHECK(gc_root_add(local, 0) == -1, "gc_root_add(local, 0) did not fail");
    CHECK_ERRNO(EINVAL, "gc_root_add(stack, 0)");

    errno = 0;
    CHECK(gc_root_add((void *)(UINTPTR_MAX - 15), 64) == -1,
          "gc_root_add of a wrapping range did not fail");
    CHECK_ERRNO(EINVAL, "gc_root_add(UINTPTR_MAX - 15, 64)");

    errno = 0;
    CHECK(gc_root_add(buf, SIZE_MAX) == -1,
          "gc_root_add(buf, SIZE_MAX) (wraps) did not fail");
    CHECK_ERRNO(EINVAL, "gc_root_add(buf, SIZE_MAX)");

    /* The heap still works and nothing was registered. */
    void *p = gc_alloc(16);
    CHECK(p != NULL, "gc_alloc after bad gc_root_add failed");
    errno = 0;
    CHECK(gc_root_remove(buf) == -1 && errno == ENOENT,
          "a failed gc_root_add(buf, ...) left a root registered");
}

static void test_root_overlap(void **state)
{
    (void)state;
    static char buf[512] __attribute__((aligned(16)));
    CHECK(gc_root_add(buf + 64, 64) == 0,
          "gc_root_add(buf+64, 64) failed, "
          "errno %d",
          errno);
    struct {
        size_t off, len;
        const char *what;
    } bad[] = {
        {64, 64, "the same range again"}, {32, 64, "overlapping its start"},
        {96, 64, "overlapping its end"},  {80, 8, "inside it"},
        {0, 256, "containing it"},        {127, 1, "its last byte"},
        {0, 65, "its first byte"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        int r = gc_root_add(buf + bad[i].off, bad[i].len);
        CHECK(r == -1,
              "gc_root_add(buf+%zu, %zu) (%s of root [64,128)) "
              "returned %d, expected -1",
              bad[i].off, bad[i].len, bad[i].what, r);
        CHECK_ERRNO(EINVAL, bad[i].what);
    }
    /* Adjacent ranges do not overlap. */
    CHECK(gc_root_add(buf + 128, 64) == 0,
          "gc_root_add(buf+128, 64), adjacent above [64,128), failed, errno "
          "%d",
          errno);
    CHECK(gc_root_add(buf, 64) == 0,
          "gc_root_add(buf, 64), adjacent below [64,128), failed, errno %d",
          errno);
    /* Now [0,192) is covered by three roots: anything inside overlaps. */
    errno = 0;
    CHECK(gc_root_add(buf + 120, 16) == -1 && errno == EINVAL,
          "gc_root_add over the boundary of two roots did not fail with "
          "EINVAL");
    CHECK(gc_root_remove(buf) == 0, "remove buf");
    CHECK(gc_root_remove(buf + 64) == 0, "remove buf+64");
    CHECK(gc_root_remove(buf + 128) == 0, "remove buf+128");
}

static void test_root_remove_unknown(void **state)
{
    (void)state;
    static char buf[256];
    int local;

    errno = 0;
    CHECK(gc_root_remove(&local) == -1, "removing an unknown stack address "
                                        "did not fail");
    CHECK_ERRNO(ENOENT, "gc_root_remove(unknown stack address)");

    errno = 0;
    CHECK(gc_root_remove(NULL) == -1, "gc_root_remove(NULL) did not fail");
    CHECK_ERRNO(ENOENT, "gc_root_remove(NULL)");

    CHECK(gc_root_add(buf, 128) == 0, "gc_root_add(buf, 128) failed");
    errno = 0;
    CHECK(gc_root_remove(buf + 8) == -1,
          "gc_root_remove of an address inside a root (not its start) did "
          "not fail");
    CHECK_ERRNO(ENOENT, "gc_root_remove(inside a root)");
    CHECK(gc_root_remove(buf) == 0, "gc_root_remove(buf) failed, errno %d",
          errno);

    errno = 0;
    CHECK(gc_root_remove(buf) == -1, "removing a root twice did not fail");
    CHECK_ERRNO(ENOENT, "gc_root_remove (second time)");
}

static void test_add_after_remove(void **state)
{
    (void)state;
    static void *slots[64];
    uintptr_t hidden[64];
    for (int round = 0; round < 5; round++) {
        size_t len = round % 2 ? sizeof slots : sizeof slots / 2;
        CHECK(gc_root_add(slots, len) == 0,
              "round %d: gc_root_add(slots, %zu) failed, errno %d", round, len,
              errno);
        CHECK(gc_root_remove(slots) == 0, "round %d: gc_root_remove failed",
              round);
    }
    /* And the re-added root works. */
    CHECK(GC_ROOT(slots) == 0, "GC_ROOT(slots) after removals failed");
    fill_table(slots, 64, hidden);
    clear_stack();
    gc_collect();
    churn(scaled(10000, 1000));
    gc_collect();
    expect_all_alive("root re-added after removal", hidden, 64);
    CHECK(gc_root_remove(slots) == 0, "gc_root_remove(slots)");
    memset(slots, 0, sizeof slots);
}

static void test_reregister_other_size(void **state)
{
    (void)state;
    /* Register a malloc'd block, remove it, register it again with a
     * larger size at the same address: the whole new range is scanned. */
    void **t = calloc(128, sizeof *t);
    uintptr_t hidden[128];
    CHECK(t != NULL, "calloc");
    CHECK(gc_root_add(t, 16 * sizeof *t) == 0, "add 16 words");
    CHECK(gc_root_remove(t) == 0, "remove");
    CHECK(gc_root_add(t, 128 * sizeof *t) == 0, "add 128 words");
    fill_table(t, 128, hidden);
    clear_stack();
    gc_collect();
    churn(scaled(10000, 1000));
    gc_collect();
    expect_all_alive("re-registered with a larger size", hidden, 128);
    CHECK(gc_root_remove(t) == 0, "remove");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_root),
        cmocka_unit_test(test_global_struct_root),
        cmocka_unit_test(test_malloc_table_root),
        cmocka_unit_test(test_many_small_roots),
        cmocka_unit_test(test_root_add_bad_input),
        cmocka_unit_test(test_root_overlap),
        cmocka_unit_test(test_root_remove_unknown),
        cmocka_unit_test(test_add_after_remove),
        cmocka_unit_test(test_reregister_other_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
