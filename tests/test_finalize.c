/*
 * test_finalize.c — finalizers: run once, after the object is unreachable,
 * with the object and its referents intact; resurrection; ordering (A
 * references B: A's first); a cycle of finalizable objects is kept; errors;
 * gc_free drops the finalizer; the dedicated thread and on-demand mode;
 * cleanups (several per object, cancellable, after a finalizer);
 * finalizers that allocate, collect and set finalizers; statistics; and
 * several threads setting and clearing finalizers while collections run.
 *
 *   test_finalize concurrent|stoptheworld   (CTest runs both)
 *
 * Objects are made in NOINLINE helpers and kept only as hidden pointers,
 * so that no stale stack word keeps them alive.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <pthread.h>
#include <stdbool.h>

struct node {
    struct node *ref;
    uint64_t magic;
    char payload[48];
};

#define MAGIC 0xF1A1F1A1F1A1ull

static atomic_int ran;
static atomic_int bad;
static uintptr_t seen[64]; /* hidden: what the finalizers were given */

static void check_node(const struct node *n)
{
    if (gc_base(n) != n || n->magic != MAGIC ||
        check_pattern(n->payload, sizeof n->payload, 7) != sizeof n->payload)
        atomic_fetch_add(&bad, 1);
}

static void record(void *obj, void *data)
{
    const struct node *n = obj;
    check_node(n);
    if (n->ref)
        check_node(n->ref); /* referents are alive while it runs */
    int i = atomic_fetch_add(&ran, 1);
    if (i < 64)
        seen[i] = hide(obj);
    (void)data;
}

static NOINLINE struct node *new_node(struct node *ref)
{
    struct node *n = gc_alloc(sizeof *n);
    if (!n)
        abort();
    n->magic = MAGIC;
    fill_pattern(n->payload, sizeof n->payload, 7);
    GC_WRITE(n->ref, ref);
    return n;
}

/* A finalizable node (referencing a plain one) known only by h. */
static NOINLINE void make_finalizable(uintptr_t *h, void *data)
{
    struct node *n = new_node(new_node(NULL));
    if (gc_set_finalizer(n, record, data) != 0)
        abort();
    *h = hide(n);
}

static void collect(int times)
{
    clear_stack();
    for (int i = 0; i < times; i++)
        gc_collect();
}

/* Each test starts with no finalizer pending from the one before. */
static void reset(void)
{
    gc_set_finalizer_mode(GC_FINALIZE_ON_DEMAND);
    collect(2);
    gc_run_finalizers();
    atomic_store(&ran, 0);
    atomic_store(&bad, 0);
    memset(seen, 0, sizeof seen);
}

static void test_runs_once_after_unreachable(void **state)
{
    (void)state;
    reset();
    uintptr_t h;
    make_finalizable(&h, NULL);
    collect(1);
    CHECK(gc_run_finalizers() == 1, "the finalizer did not become ready");
    CHECK(atomic_load(&ran) == 1 && seen[0] == h,
          "ran %d finalizers, on the wrong object?", atomic_load(&ran));
    CHECK(atomic_load(&bad) == 0, "the object or its referent was damaged "
                                  "when its finalizer ran");
    collect(2);
    CHECK(gc_run_finalizers() == 0, "a finalizer ran twice");
    CHECK(count_alive(&h, 1) == 0, "the object survived after its finalizer");
}

static struct node *kept; /* a global: a root */

static NOINLINE void keep(uintptr_t h)
{
    GC_WRITE(kept, (struct node *)unhide(h));
}

static NOINLINE void drop(void)
{
    GC_WRITE(kept, NULL);
}

static void test_reachable_is_not_finalized(void **state)
{
    (void)state;
    reset();
    uintptr_t h;
    make_finalizable(&h, NULL);
    keep(h);
    collect(3);
    CHECK(gc_run_finalizers() == 0, "a reachable object was finalized");
    drop();
    collect(2);
    CHECK(gc_run_finalizers() == 1, "dropped, it was not finalized within "
                                    "two cycles");
}

static struct node *resurrected;

static void resurrect(void *obj, void *data)
{
    (void)data;
    GC_WRITE(resurrected, (struct node *)obj);
    atomic_fetch_add(&ran, 1);
}

static NOINLINE void make_resurrectable(uintptr_t *h)
{
    struct node *n = new_node(new_node(NULL));
    if (gc_set_finalizer(n, resurrect, NULL) != 0)
        abort();
    *h = hide(n);
}

/* Out of line, so that the test's frame holds no copy of the pointer. */
static NOINLINE bool resurrected_is(uintptr_t h)
{
    if (resurrected != unhide(h))
        return false;
    check_node(resurrected);
    check_node(resurrected->ref);
    return true;
}

static NOINLINE void drop_resurrected(void)
{
    GC_WRITE(resurrected, NULL);
}

static void test_resurrection(void **state)
{
    (void)state;
    reset();
    uintptr_t h;
    make_resurrectable(&h);
    collect(1);
    CHECK(gc_run_finalizers() == 1, "not finalized");
    collect(3);
    CHECK(resurrected_is(h), "the resurrected object was reclaimed");
    CHECK(atomic_load(&bad) == 0, "the resurrected object was damaged");
    CHECK(gc_run_finalizers() == 0, "the finalizer ran again");
    drop_resurrected();
    collect(2);
    CHECK(count_alive(&h, 1) == 0, "dropped again, it was not reclaimed");
}

/* A references B; both have finalizers. */
static NOINLINE void make_chain(uintptr_t *ha, uintptr_t *hb)
{
    struct node *b = new_node(NULL);
    struct node *a = new_node(b);
    if (gc_set_finalizer(a, record, NULL) || gc_set_finalizer(b, record, NULL))
        abort();
    *ha = hide(a);
    *hb = hide(b);
}

static void test_ordering(void **state)
{
    (void)state;
    reset();
    uintptr_t ha, hb;
    make_chain(&ha, &hb);
    collect(1);
    CHECK(gc_run_finalizers() == 1 && seen[0] == ha,
          "first cycle: expected only A's finalizer (ran %d)",
          atomic_load(&ran));
    collect(1);
    CHECK(gc_run_finalizers() == 1 && seen[1] == hb,
          "second cycle: expected B's finalizer (ran %d)", atomic_load(&ran));
    CHECK(atomic_load(&bad) == 0, "an object was damaged");
}

static NOINLINE void make_cycle(uintptr_t *h)
{
    struct node *b = new_node(NULL);
    struct node *a = new_node(b);
    GC_WRITE(b->ref, a);
    if (gc_set_finalizer(a, record, NULL) || gc_set_finalizer(b, record, NULL))
        abort();
    *h = hide(a);
}

static void test_cycle_of_finalizable_objects_is_kept(void **state)
{
    (void)state;
    reset();
    uintptr_t h;
    make_cycle(&h);
    collect(4);
    CHECK(gc_run_finalizers() == 0, "a finalizer of a cycle ran");
    CHECK(count_alive(&h, 1) == 1, "a cycle of finalizable objects was freed");
}

static void test_errors(void **state)
{
    (void)state;
    reset();
    struct node *n = new_node(NULL);
    int local;
    errno = 0;
    CHECK(gc_set_finalizer(NULL, record, NULL) == -1, "NULL accepted");
    CHECK_ERRNO(EINVAL, "gc_set_finalizer(NULL)");
    CHECK(gc_set_finalizer(&local, record, NULL) == -1, "stack address");
    CHECK_ERRNO(EINVAL, "gc_set_finalizer(stack)");
    CHECK(gc_set_finalizer((char *)n + 8, record, NULL) == -1, "interior");
    CHECK_ERRNO(EINVAL, "gc_set_finalizer(interior)");
    CHECK(gc_set_finalizer(n, record, NULL) == 0, "first set");
    CHECK(gc_set_finalizer(n, record, NULL) == -1, "second set accepted");
    CHECK_ERRNO(EEXIST, "gc_set_finalizer twice");
    CHECK(gc_set_finalizer(n, NULL, NULL) == 0, "remove");
    CHECK(gc_set_finalizer(n, NULL, NULL) == 0, "remove twice");
    CHECK(gc_set_finalizer(n, record, NULL) == 0, "set after remove");
    CHECK(gc_set_finalizer(n, NULL, NULL) == 0, "remove again");
    gc_keep_alive(n);
}

static NOINLINE void make_freed(uintptr_t *h)
{
    struct node *n = new_node(NULL);
    if (gc_set_finalizer(n, record, NULL))
        abort();
    *h = hide(n);
    gc_free(n);
}

static void test_gc_free_drops_the_finalizer(void **state)
{
    (void)state;
    reset();
    uintptr_t h;
    make_freed(&h);
    collect(2);
    CHECK(gc_run_finalizers() == 0, "a freed object's finalizer ran");
}

/* A finalizer that allocates, sets a finalizer on what it allocated and
 * runs a collection. */
static atomic_int nested;

static void nested_finalizer(void *obj, void *data)
{
    (void)obj;
    (void)data;
    atomic_fetch_add(&nested, 1);
}

static void busy_finalizer(void *obj, void *data)
{
    (void)data;
    check_node(obj);
    struct node *n = new_node(NULL);
    if (gc_set_finalizer(n, nested_finalizer, NULL))
        atomic_fetch_add(&bad, 1);
    GC_WRITE(kept, n); /* reachable until the test drops it */
    gc_collect();
    atomic_fetch_add(&ran, 1);
}

static NOINLINE void make_busy(uintptr_t *h)
{
    struct node *n = new_node(NULL);
    if (gc_set_finalizer(n, busy_finalizer, NULL))
        abort();
    *h = hide(n);
}

static void test_finalizer_allocates_and_collects(void **state)
{
    (void)state;
    reset();
    atomic_store(&nested, 0);
    uintptr_t h;
    make_busy(&h);
    collect(2);
    size_t first = gc_run_finalizers();
    CHECK(first == 1, "%zu finalizers ran, expected the busy one", first);
    drop();
    collect(2);
    size_t second = gc_run_finalizers();
    CHECK(second == 1 && atomic_load(&nested) == 1,
          "the finalizer set inside a finalizer did not run (%zu ran)", second);
    CHECK(atomic_load(&bad) == 0, "damaged, or gc_set_finalizer failed");
}

static void test_finalizer_thread_and_stats(void **state)
{
    (void)state;
    reset();
    gc_stats before, after;
    gc_read_stats(&before);
    gc_set_finalizer_mode(GC_FINALIZE_THREAD);
    enum { N = 500 };
    uintptr_t *h = calloc(N, sizeof *h);
    CHECK(h != NULL, "calloc");
    for (int i = 0; i < N; i++)
        make_finalizable(&h[i], NULL);
    collect(1);
    uint64_t deadline = mono_ns() + 10000000000ull;
    while (atomic_load(&ran) < N && mono_ns() < deadline)
        usleep(1000);
    CHECK(atomic_load(&ran) == N, "the finalizer thread ran %d of %d",
          atomic_load(&ran), N);
    CHECK(atomic_load(&bad) == 0, "objects damaged when finalized");
    gc_read_stats(&after);
    CHECK(after.finalizers_queued - before.finalizers_queued == N &&
              after.finalizers_run - before.finalizers_run == N,
          "statistics: %llu queued, %llu run",
          (unsigned long long)(after.finalizers_queued -
                               before.finalizers_queued),
          (unsigned long long)(after.finalizers_run - before.finalizers_run));
    free(h);
    gc_set_finalizer_mode(GC_FINALIZE_ON_DEMAND);
}

/* ---- cleanups --------------------------------------------------------------
 */

static atomic_int cleaned[8];

static void cleanup_fn(void *arg)
{
    atomic_fetch_add(&cleaned[(uintptr_t)arg % 8], 1);
}

static NOINLINE void make_with_cleanups(int n, gc_cleanup **handles)
{
    struct node *obj = new_node(NULL);
    for (int i = 0; i < n; i++) {
        handles[i] = gc_add_cleanup(obj, cleanup_fn, (void *)(uintptr_t)i);
        if (!handles[i])
            abort();
    }
}

static void reset_cleaned(void)
{
    for (int i = 0; i < 8; i++)
        atomic_store(&cleaned[i], 0);
}

static void test_cleanups_run_and_cancel(void **state)
{
    (void)state;
    reset();
    reset_cleaned();
    gc_stats before, after;
    gc_read_stats(&before);
    static gc_cleanup *h[3]; /* a root: the handles stay valid */
    make_with_cleanups(3, h);
    CHECK(gc_cleanup_cancel(h[1]) == 0, "cancel a pending cleanup");
    CHECK(gc_cleanup_cancel(h[1]) == -1, "cancelled twice");
    CHECK_ERRNO(ENOENT, "gc_cleanup_cancel twice");
    collect(2);
    size_t ran_now = gc_run_finalizers();
    CHECK(ran_now == 2, "expected the two cleanups left to run, %zu ran",
          ran_now);
    CHECK(atomic_load(&cleaned[0]) == 1 && atomic_load(&cleaned[1]) == 0 &&
              atomic_load(&cleaned[2]) == 1,
          "cleanups ran %d/%d/%d times (the second was cancelled)",
          atomic_load(&cleaned[0]), atomic_load(&cleaned[1]),
          atomic_load(&cleaned[2]));
    CHECK(gc_cleanup_cancel(h[0]) == -1, "cancelled after it ran");
    CHECK_ERRNO(ENOENT, "gc_cleanup_cancel after it ran");
    gc_read_stats(&after);
    CHECK(after.cleanups_queued - before.cleanups_queued == 2 &&
              after.cleanups_run - before.cleanups_run == 2,
          "cleanup statistics");
    memset(h, 0, sizeof h);
}

static void test_cleanup_errors(void **state)
{
    (void)state;
    reset();
    struct node *n = new_node(NULL);
    int local;
    CHECK(gc_add_cleanup(NULL, cleanup_fn, NULL) == NULL, "NULL object");
    CHECK_ERRNO(EINVAL, "gc_add_cleanup(NULL)");
    CHECK(gc_add_cleanup(n, NULL, NULL) == NULL, "NULL fn");
    CHECK_ERRNO(EINVAL, "gc_add_cleanup(fn NULL)");
    CHECK(gc_add_cleanup(&local, cleanup_fn, NULL) == NULL, "stack object");
    CHECK_ERRNO(EINVAL, "gc_add_cleanup(stack)");
    CHECK(gc_add_cleanup(n, cleanup_fn, &n->payload[3]) == NULL,
          "an arg inside the object would keep it alive for ever");
    CHECK_ERRNO(EINVAL, "gc_add_cleanup(arg inside obj)");
    CHECK(gc_cleanup_cancel(NULL) == -1, "cancel NULL");
    CHECK_ERRNO(EINVAL, "gc_cleanup_cancel(NULL)");
    gc_keep_alive(n);
}

/* An arg that reaches the object (here through another node) keeps it
 * alive for ever: gccheckmark (on in this test) says so, once. */
static NOINLINE void make_self_keeping_cleanup(void)
{
    struct node *obj = new_node(NULL);
    struct node *arg = new_node(obj);
    if (!gc_add_cleanup(obj, cleanup_fn, arg))
        abort();
}

static void test_checkmark_names_an_arg_that_keeps_its_object(void **state)
{
    (void)state;
    reset();
    struct capture c;
    capture_begin(&c);
    make_self_keeping_cleanup();
    collect(3);
    char *err = capture_end(&c);
    CHECK(count_lines(err, "cgc: gccheckmark: the cleanup of the object",
                      "can never run", NULL) == 1,
          "expected one report of the cleanup that can never run; "
          "stderr:\n%s",
          err);
    free(err);
    CHECK(gc_run_finalizers() == 0, "the cleanup ran although its arg "
                                    "keeps its object");
}

/* With a finalizer that resurrects the object, its cleanup waits until the
 * object is unreachable again. */
static NOINLINE void make_resurrectable_with_cleanup(void)
{
    struct node *n = new_node(NULL);
    if (gc_set_finalizer(n, resurrect, NULL) ||
        !gc_add_cleanup(n, cleanup_fn, (void *)(uintptr_t)5))
        abort();
}

static void test_cleanup_after_finalizer(void **state)
{
    (void)state;
    reset();
    reset_cleaned();
    make_resurrectable_with_cleanup();
    collect(2);
    CHECK(gc_run_finalizers() == 1 && atomic_load(&cleaned[5]) == 0,
          "the finalizer must run first, alone");
    collect(2);
    CHECK(gc_run_finalizers() == 0, "the cleanup ran while the object was "
                                    "resurrected");
    drop_resurrected();
    collect(2);
    CHECK(gc_run_finalizers() == 1 && atomic_load(&cleaned[5]) == 1,
          "the cleanup did not run once the object died again");
}

/* ---- several threads while collections run ------------------------------- */

#define THREADS 3

static void counting(void *obj, void *data)
{
    (void)data;
    check_node(obj);
    atomic_fetch_add(&ran, 1);
}

static void *setter_main(void *arg)
{
    atomic_int *set = arg;
    struct node *keep[16] = {0};
    for (int i = 0; i < (int)scaled(20000, 2000); i++) {
        struct node *n = new_node(new_node(NULL));
        if (i % 3 == 0) {
            /* set and clear while it is reachable: never runs */
            if (gc_set_finalizer(n, counting, NULL) ||
                gc_set_finalizer(n, NULL, NULL))
                atomic_fetch_add(&bad, 1);
        } else if (gc_set_finalizer(n, counting, NULL) == 0) {
            atomic_fetch_add(set, 1);
        } else {
            atomic_fetch_add(&bad, 1);
        }
        keep[i % 16] = n; /* a few stay reachable for a while */
    }
    gc_keep_alive(keep);
    return NULL;
}

static void test_threads_set_finalizers_while_collecting(void **state)
{
    (void)state;
    reset();
    gc_set_finalizer_mode(GC_FINALIZE_THREAD);
    atomic_int set = 0;
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, setter_main, &set) == 0, "create");
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    uint64_t deadline = mono_ns() + 20000000000ull;
    while (atomic_load(&ran) < atomic_load(&set) && mono_ns() < deadline) {
        collect(1);
        usleep(1000);
    }
    CHECK(atomic_load(&ran) == atomic_load(&set), "%d finalizers set, %d ran",
          atomic_load(&set), atomic_load(&ran));
    CHECK(atomic_load(&bad) == 0, "damaged objects or failed calls");
    gc_set_finalizer_mode(GC_FINALIZE_ON_DEMAND);
}

int main(int argc, char **argv)
{
    bool stw = argc > 1 && strcmp(argv[1], "stoptheworld") == 0;
    setenv("CGC_DEBUG",
           stw ? "gcstoptheworld=1,gccheckmark=1" : "gccheckmark=1", 1);
    setenv("CGC_PERCENT", "50", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_once_after_unreachable),
        cmocka_unit_test(test_reachable_is_not_finalized),
        cmocka_unit_test(test_resurrection),
        cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_cycle_of_finalizable_objects_is_kept),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_gc_free_drops_the_finalizer),
        cmocka_unit_test(test_finalizer_allocates_and_collects),
        cmocka_unit_test(test_finalizer_thread_and_stats),
        cmocka_unit_test(test_cleanups_run_and_cancel),
        cmocka_unit_test(test_cleanup_errors),
        cmocka_unit_test(test_cleanup_after_finalizer),
        cmocka_unit_test(test_checkmark_names_an_arg_that_keeps_its_object),
        cmocka_unit_test(test_threads_set_finalizers_while_collecting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
