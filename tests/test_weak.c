/*
 * test_weak.c — weak pointers: the object while it is reachable, NULL once
 * it was found unreachable (also before its span is swept, and before a
 * finalizer resurrects it); one handle per object; errors; handles are
 * collected once dropped and their object is gone; statistics; several
 * threads making and reading weak pointers while collections run.
 *
 *   test_weak concurrent|stoptheworld   (CTest runs both, gccheckmark on)
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <pthread.h>
#include <stdbool.h>

struct node {
    uint64_t magic;
    struct node *ref;
};

#define MAGIC 0x3EA3EA3EA3EAull

static struct node *root; /* a global: a root */

static NOINLINE struct node *new_node(void)
{
    struct node *n = gc_alloc(sizeof *n);
    if (!n)
        abort();
    n->magic = MAGIC;
    return n;
}

static void collect(int times)
{
    clear_stack();
    for (int i = 0; i < times; i++)
        gc_collect();
}

/* A weak pointer to a fresh object that only `root` holds. */
static NOINLINE gc_weak *make_rooted(void)
{
    struct node *n = new_node();
    GC_WRITE(root, n);
    return gc_weak_new(n);
}

static NOINLINE void drop_root(void)
{
    GC_WRITE(root, NULL);
}

static NOINLINE bool weak_is_root(const gc_weak *w)
{
    struct node *n = gc_weak_get(w);
    return n && n == root && n->magic == MAGIC;
}

static void test_reachable_then_cleared(void **state)
{
    (void)state;
    gc_weak *w = make_rooted();
    CHECK(w != NULL, "gc_weak_new failed");
    collect(2);
    CHECK(weak_is_root(w), "the weak pointer lost a reachable object");
    drop_root();
    collect(2);
    CHECK(gc_weak_get(w) == NULL, "the weak pointer still names a dead "
                                  "object");
}

static NOINLINE bool same_handle(void)
{
    struct node *n = new_node();
    gc_weak *a = gc_weak_new(n), *b = gc_weak_new(n);
    gc_keep_alive(n);
    return a && a == b;
}

static void test_canonical_and_errors(void **state)
{
    (void)state;
    CHECK(same_handle(), "two handles for one object");
    int local;
    struct node *n = new_node();
    errno = 0;
    CHECK(gc_weak_new(NULL) == NULL, "NULL accepted");
    CHECK_ERRNO(EINVAL, "gc_weak_new(NULL)");
    CHECK(gc_weak_new(&local) == NULL, "stack address accepted");
    CHECK_ERRNO(EINVAL, "gc_weak_new(stack)");
    CHECK(gc_weak_new((char *)n + 8) == NULL, "interior pointer accepted");
    CHECK_ERRNO(EINVAL, "gc_weak_new(interior)");
    CHECK(gc_weak_get(NULL) == NULL, "gc_weak_get(NULL)");
    gc_keep_alive(n);
}

/* Between the end of a mark and the sweep of the object's span, the weak
 * pointer already reads NULL: with sweeping left to the background (an
 * automatic cycle, not gc_collect), read right after the cycle ends. */
static atomic_int cycle_ended;

static void on_event(const gc_event *e, void *data)
{
    (void)data;
    if (e->kind == GC_EVENT_MARK_DONE)
        atomic_fetch_add(&cycle_ended, 1);
}

static void test_null_before_sweep(void **state)
{
    (void)state;
    gc_weak *w = make_rooted();
    drop_root();
    clear_stack();
    gc_set_event_handler(on_event, NULL);
    int before = atomic_load(&cycle_ended);
    /* Drive automatic cycles by allocating; look at the weak pointer as
     * soon as a cycle's mark is done, when its span is likely unswept. */
    bool cleared = false;
    for (int i = 0; i < 2000000 && !cleared; i++) {
        char *p = gc_alloc_noscan(256);
        p[0] = 1;
        if (atomic_load(&cycle_ended) >= before + 2)
            cleared = gc_weak_get(w) == NULL;
    }
    gc_set_event_handler(NULL, NULL);
    CHECK(cleared, "the weak pointer did not read NULL after two cycles");
}

static struct node *resurrected;
static atomic_int saw_weak_null;
static gc_weak *resurrect_weak;

static void resurrect(void *obj, void *data)
{
    (void)data;
    /* Go's rule: weak pointers are NULL before the finalizer runs. */
    if (gc_weak_get(resurrect_weak) == NULL)
        atomic_store(&saw_weak_null, 1);
    GC_WRITE(resurrected, (struct node *)obj);
}

static NOINLINE void make_finalizable_with_weak(void)
{
    struct node *n = new_node();
    if (gc_set_finalizer(n, resurrect, NULL))
        abort();
    resurrect_weak = gc_weak_new(n);
}

static NOINLINE bool resurrected_alive(void)
{
    return resurrected && resurrected->magic == MAGIC;
}

static void test_resurrected_object_stays_null(void **state)
{
    (void)state;
    gc_set_finalizer_mode(GC_FINALIZE_ON_DEMAND);
    make_finalizable_with_weak();
    collect(2);
    CHECK(gc_run_finalizers() == 1, "the finalizer did not run");
    CHECK(atomic_load(&saw_weak_null), "the weak pointer was not NULL when "
                                       "the finalizer ran");
    collect(2);
    CHECK(resurrected_alive(), "the resurrected object was lost");
    CHECK(gc_weak_get(resurrect_weak) == NULL,
          "the weak pointer names the resurrected object");
    GC_WRITE(resurrected, NULL);
    gc_set_finalizer_mode(GC_FINALIZE_THREAD);
}

static NOINLINE void make_dropped_handle(uintptr_t *h)
{
    struct node *n = new_node();
    gc_weak *w = gc_weak_new(n);
    if (!w)
        abort();
    *h = hide(w);
}

static void test_handles_are_collected_and_counted(void **state)
{
    (void)state;
    gc_stats before, after;
    gc_read_stats(&before);
    enum { N = 100 };
    uintptr_t h[N];
    for (int i = 0; i < N; i++)
        make_dropped_handle(&h[i]);
    collect(4);
    gc_read_stats(&after);
    CHECK(after.weak_cleared - before.weak_cleared >= N - 2,
          "only %llu of %d weak pointers cleared",
          (unsigned long long)(after.weak_cleared - before.weak_cleared), N);
    size_t alive = count_alive(h, N);
    CHECK(alive <= 2, "%zu of %d dropped handles were not collected", alive,
          N);
}

/* ---- threads ------------------------------------------------------------- */

#define THREADS 3
static atomic_int bad;

static void *weak_worker(void *arg)
{
    (void)arg;
    gc_weak *ws[64] = {0};
    struct node *keep[64] = {0};
    for (int i = 0; i < (int)scaled(50000, 5000); i++) {
        int k = i % 64;
        if (i % 3 == 0) {
            keep[k] = new_node(); /* reachable: its weak must hold */
            ws[k] = gc_weak_new(keep[k]);
            if (!ws[k])
                atomic_fetch_add(&bad, 1);
        } else if (i % 3 == 1) {
            struct node *n = ws[k] ? gc_weak_get(ws[k]) : NULL;
            if (keep[k] && n != keep[k])
                atomic_fetch_add(&bad, 1); /* lost a reachable object */
            if (n && n->magic != MAGIC)
                atomic_fetch_add(&bad, 1); /* handed out a dead one */
        } else {
            keep[k] = NULL; /* now only weak: may die at any cycle */
            struct node *n = ws[k] ? gc_weak_get(ws[k]) : NULL;
            if (n && n->magic != MAGIC)
                atomic_fetch_add(&bad, 1);
            if (n) {
                GC_WRITE(n->ref, new_node()); /* use it as strong */
                keep[k] = n;
            }
        }
    }
    gc_keep_alive(keep);
    return NULL;
}

static void test_threads_make_and_read_weak_pointers(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, weak_worker, NULL) == 0, "create");
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK(atomic_load(&bad) == 0, "%d wrong weak-pointer reads",
          atomic_load(&bad));
}

int main(int argc, char **argv)
{
    bool stw = argc > 1 && strcmp(argv[1], "stoptheworld") == 0;
    setenv("CGC_DEBUG", stw ? "gcstoptheworld=1,gccheckmark=1" : "gccheckmark=1",
           1);
    setenv("CGC_PERCENT", "20", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reachable_then_cleared),
        cmocka_unit_test(test_canonical_and_errors),
        cmocka_unit_test(test_null_before_sweep),
        cmocka_unit_test(test_resurrected_object_stays_null),
        cmocka_unit_test(test_handles_are_collected_and_counted),
        cmocka_unit_test(test_threads_make_and_read_weak_pointers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
