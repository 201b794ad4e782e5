/*
 * test_ephemeron.c — ephemerons: the value lives while the key does; a
 * value that references its key does not keep it; chains resolve in one
 * cycle; a dropped ephemeron keeps nothing; errors; several threads making
 * and reading ephemerons while collections run.
 *
 *   test_ephemeron concurrent|stoptheworld   (CTest runs both, gccheckmark)
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <pthread.h>
#include <stdbool.h>

struct node {
    uint64_t magic;
    struct node *ref;
};

#define MAGIC 0xE9E9E9E9E9E9ull

static struct node *root;    /* a global root */
static gc_ephemeron *eph[4]; /* globals: the ephemerons */

static NOINLINE struct node *new_node(struct node *ref)
{
    struct node *n = gc_alloc(sizeof *n);
    if (!n)
        abort();
    n->magic = MAGIC;
    GC_WRITE(n->ref, ref);
    return n;
}

static void collect(int times)
{
    clear_stack();
    for (int i = 0; i < times; i++)
        gc_collect();
}

static NOINLINE bool value_intact(const gc_ephemeron *e, uintptr_t hv)
{
    struct node *v = gc_ephemeron_value(e);
    return v && v == unhide(hv) && v->magic == MAGIC;
}

/* Out of line, so that the test's frame keeps no copy of the key. */
static NOINLINE bool key_is_root(const gc_ephemeron *e)
{
    return gc_ephemeron_key(e) == root;
}

static NOINLINE bool both_null(const gc_ephemeron *e)
{
    return gc_ephemeron_key(e) == NULL && gc_ephemeron_value(e) == NULL;
}

/* eph[0]: key = root, value known only by *hv (and the ephemeron). */
static NOINLINE void make_rooted_key(uintptr_t *hv, bool value_refs_key)
{
    struct node *k = new_node(NULL);
    struct node *v = new_node(value_refs_key ? k : NULL);
    GC_WRITE(root, k);
    GC_WRITE(eph[0], gc_ephemeron_new(k, v));
    if (!eph[0])
        abort();
    *hv = hide(v);
}

static NOINLINE void drop_root(void)
{
    GC_WRITE(root, NULL);
}

/* Conservative scanning may keep one key alive by a stale or chance word
 * equal to its address (seen once, in a CI run on a loaded machine; not
 * again in 100 runs): a fresh key, in another slot, is not kept so too. */
#define RETENTION_ATTEMPTS 3

static void test_value_lives_with_key(void **state)
{
    (void)state;
    bool cleared = false;
    for (int attempt = 0; attempt < RETENTION_ATTEMPTS && !cleared; attempt++) {
        uintptr_t hv;
        make_rooted_key(&hv, false);
        collect(3);
        CHECK(value_intact(eph[0], hv), "the value died while its key lived");
        CHECK(key_is_root(eph[0]), "the key is not the key");
        drop_root();
        collect(2);
        cleared = both_null(eph[0]);
        if (cleared)
            CHECK(count_alive(&hv, 1) == 0, "the value outlived its key");
        else
            print_message("attempt %d: the key was retained\n", attempt);
        GC_WRITE(eph[0], NULL);
    }
    CHECK(cleared,
          "key and value must read NULL once the key died (%d "
          "attempts)",
          RETENTION_ATTEMPTS);
}

static void test_value_referencing_key_does_not_keep_it(void **state)
{
    (void)state;
    uintptr_t hv;
    make_rooted_key(&hv, true);
    collect(2);
    CHECK(value_intact(eph[0], hv), "the value died while its key lived");
    drop_root();
    collect(2);
    CHECK(both_null(eph[0]),
          "a key reachable only through its own value was kept");
    CHECK(count_alive(&hv, 1) == 0, "the value outlived its key");
    GC_WRITE(eph[0], NULL);
}

/* k1 -> v1 (ephemeron 1); v1 is the key of ephemeron 2 -> v2; likewise
 * v2 -> v3 (ephemeron 3), declared in the order that needs most passes. */
static NOINLINE void make_chain(uintptr_t *hv)
{
    struct node *k1 = new_node(NULL);
    struct node *v1 = new_node(NULL), *v2 = new_node(NULL),
                *v3 = new_node(NULL);
    GC_WRITE(eph[2], gc_ephemeron_new(v2, v3));
    GC_WRITE(eph[1], gc_ephemeron_new(v1, v2));
    GC_WRITE(eph[0], gc_ephemeron_new(k1, v1));
    GC_WRITE(root, k1);
    hv[0] = hide(v1);
    hv[1] = hide(v2);
    hv[2] = hide(v3);
}

static void test_chains_resolve_in_one_cycle(void **state)
{
    (void)state;
    uintptr_t hv[3];
    make_chain(hv);
    collect(1);
    CHECK(value_intact(eph[0], hv[0]) && value_intact(eph[1], hv[1]) &&
              value_intact(eph[2], hv[2]),
          "a chain of ephemerons lost a value in one cycle");
    drop_root();
    collect(2);
    CHECK(count_alive(hv, 3) == 0, "%zu values of the chain outlived its key",
          count_alive(hv, 3));
    for (int i = 0; i < 3; i++)
        GC_WRITE(eph[i], NULL);
}

static NOINLINE void make_dropped_ephemeron(uintptr_t *hv)
{
    struct node *k = new_node(NULL), *v = new_node(NULL);
    GC_WRITE(root, k);
    if (!gc_ephemeron_new(k, v)) /* dropped at once */
        abort();
    *hv = hide(v);
}

static void test_dropped_ephemeron_keeps_nothing(void **state)
{
    (void)state;
    uintptr_t hv;
    make_dropped_ephemeron(&hv);
    collect(3);
    CHECK(count_alive(&hv, 1) == 0, "a dropped ephemeron kept its value alive");
    drop_root();
}

static void test_errors(void **state)
{
    (void)state;
    struct node *n = new_node(NULL);
    int local;
    CHECK(gc_ephemeron_new(NULL, n) == NULL, "NULL key");
    CHECK_ERRNO(EINVAL, "gc_ephemeron_new(NULL)");
    CHECK(gc_ephemeron_new(&local, n) == NULL, "stack key");
    CHECK_ERRNO(EINVAL, "gc_ephemeron_new(stack)");
    CHECK(gc_ephemeron_new((char *)n + 8, NULL) == NULL, "interior key");
    CHECK_ERRNO(EINVAL, "gc_ephemeron_new(interior)");
    CHECK(gc_ephemeron_key(NULL) == NULL && gc_ephemeron_value(NULL) == NULL,
          "NULL ephemeron");
    gc_keep_alive(n);
}

/* ---- threads ------------------------------------------------------------- */

#define THREADS 3
static atomic_int bad;

static void *worker(void *arg)
{
    (void)arg;
    struct node *keys[32] = {0};
    gc_ephemeron *es[32] = {0};
    for (int i = 0; i < (int)scaled(30000, 3000); i++) {
        int k = i % 32;
        if (i % 2 == 0) {
            keys[k] = new_node(NULL);
            es[k] = gc_ephemeron_new(keys[k], new_node(keys[k]));
            if (!es[k])
                atomic_fetch_add(&bad, 1);
        } else if (es[k]) {
            struct node *v = gc_ephemeron_value(es[k]);
            if (keys[k] && (!v || v->magic != MAGIC || v->ref != keys[k]))
                atomic_fetch_add(&bad, 1); /* lost while its key lived */
            if (i % 7 == 0)
                keys[k] = NULL; /* the key may now die */
        }
    }
    gc_keep_alive(keys);
    gc_keep_alive(es);
    return NULL;
}

static void test_threads_use_ephemerons_while_collecting(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, worker, NULL) == 0, "create");
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK(atomic_load(&bad) == 0, "%d wrong ephemeron reads",
          atomic_load(&bad));
}

int main(int argc, char **argv)
{
    bool stw = argc > 1 && strcmp(argv[1], "stoptheworld") == 0;
    setenv("CGC_DEBUG",
           stw ? "gcstoptheworld=1,gccheckmark=1" : "gccheckmark=1", 1);
    setenv("CGC_PERCENT", "20", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_lives_with_key),
        cmocka_unit_test(test_value_referencing_key_does_not_keep_it),
        cmocka_unit_test(test_chains_resolve_in_one_cycle),
        cmocka_unit_test(test_dropped_ephemeron_keeps_nothing),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_threads_use_ephemerons_while_collecting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
