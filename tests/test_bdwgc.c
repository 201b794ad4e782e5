/*
 * test_bdwgc.c — the Boehm layer (compat/bdwgc) as a program written for
 * bdwgc uses it: gc.h, plain pointer stores, no cgc calls except to look.
 *
 *   test_bdwgc         allocation, uncollectable objects, roots, control,
 *                      figures, finalizers, warn and out-of-memory procs
 *   test_bdwgc threads four threads mutating shared trees with plain
 *                      stores while collections run (stop-the-world
 *                      marking, the layer's default), under gccheckmark
 *
 * Objects are referenced through hidden pointers (test_util.h) where a test
 * wants to see whether a collection freed them.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <gc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* A fresh frame per allocation, so no stale copy of the pointer stays in
 * the caller's frame. */
static NOINLINE uintptr_t hidden_object(size_t size)
{
    void *p = GC_MALLOC(size);
    return p ? hide(p) : 0;
}

static NOINLINE void collect_clean(void)
{
    clear_stack();
    GC_gcollect();
    clear_stack();
    GC_gcollect();
}

static NOINLINE bool alive(uintptr_t h)
{
    void *p = unhide(h);
    return GC_base(p) == p;
}

/* ---- allocation ----------------------------------------------------------
 */

static void test_allocation(void **state)
{
    (void)state;
    GC_INIT();
    CHECK(GC_is_init_called(), "GC_INIT did not initialise");
    CHECK(GC_get_version() == 0x080202, "version %#x", GC_get_version());
    char *p = GC_MALLOC(100);
    CHECK(p != NULL, "GC_MALLOC");
    CHECK(first_nonzero(p, 100) == 100, "GC_malloc memory is not zeroed");
    CHECK(GC_size(p) >= 101, "GC_size %zu: no room for the extra byte",
          GC_size(p));
    CHECK(GC_base(p + 57) == p, "GC_base of an interior pointer");
    CHECK(GC_base(p + 100) == p, "a pointer just past the end must name the "
                                 "object (GC_all_interior_pointers)");
    CHECK(GC_is_heap_ptr(p + 3), "GC_is_heap_ptr of a heap pointer");
    int local;
    CHECK(!GC_is_heap_ptr(&local), "GC_is_heap_ptr of a stack address");
    CHECK(GC_base(&local) == NULL, "GC_base of a stack address");

    char *s = GC_STRDUP("hello, world");
    CHECK(s && strcmp(s, "hello, world") == 0, "GC_strdup");
    char *t = GC_STRNDUP("hello, world", 5);
    CHECK(t && strcmp(t, "hello") == 0, "GC_strndup");

    memset(p, 'x', 100);
    char *q = GC_REALLOC(p, 5000);
    CHECK(q && q[0] == 'x' && q[99] == 'x', "GC_realloc lost the contents");
    CHECK(first_nonzero(q + 100, 4900) == 4900,
          "the grown part of a scanned object is not zeroed");
    CHECK(GC_REALLOC(NULL, 10) != NULL, "GC_realloc(NULL) allocates");
    CHECK(GC_REALLOC(q, 0) == NULL, "GC_realloc(p, 0) frees and returns NULL");

    void *list = GC_malloc_many(48);
    size_t n = 0;
    for (void *e = list; e; e = GC_NEXT(e)) {
        CHECK(GC_size(e) >= 48, "GC_malloc_many object of %zu bytes",
              GC_size(e));
        n++;
    }
    CHECK(n >= 2, "GC_malloc_many returned %zu objects", n);

    for (size_t align = 32; align <= 8192; align *= 4) {
        void *a = GC_memalign(align, 100);
        CHECK(a && (uintptr_t)a % align == 0, "GC_memalign(%zu)", align);
        CHECK(GC_base(a) != NULL, "GC_memalign result is not in an object");
    }
    void *out = NULL;
    CHECK(GC_posix_memalign(&out, 24, 100) == EINVAL,
          "GC_posix_memalign with a non-power-of-two alignment");
    CHECK(GC_posix_memalign(&out, 256, 100) == 0 && (uintptr_t)out % 256 == 0,
          "GC_posix_memalign(256)");
    char *atomic = GC_MALLOC_ATOMIC(64);
    CHECK(atomic != NULL, "GC_MALLOC_ATOMIC");
    GC_FREE(atomic);
    CHECK(GC_base(atomic) == NULL, "GC_free did not free");
}

/* An object whose only reference is in memory the collector does not scan
 * is reclaimed; one referenced from scanned memory is not. */
static void test_reclaim(void **state)
{
    (void)state;
    uintptr_t dropped[64];
    for (int i = 0; i < 64; i++)
        dropped[i] = hidden_object(200);
    collect_clean();
    size_t kept = count_alive(dropped, 64);
    CHECK(kept <= 2, "%zu of 64 unreachable objects survived", kept);
}

/* ---- uncollectable objects -------------------------------------------- */

struct uncollectable_probe {
    uintptr_t object, atomic, child;
};

static NOINLINE void make_uncollectable(struct uncollectable_probe *u)
{
    void **obj = GC_MALLOC_UNCOLLECTABLE(2 * sizeof(void *));
    obj[0] = GC_MALLOC(64); /* a plain store: the layer needs no barrier */
    fill_pattern(obj[0], 64, 5);
    u->object = hide(obj);
    u->child = hide(obj[0]);
    u->atomic = hide(GC_MALLOC_ATOMIC_UNCOLLECTABLE(32));
}

static NOINLINE bool child_intact(const struct uncollectable_probe *u)
{
    void **obj = unhide(u->object);
    return obj[0] == unhide(u->child) && alive(u->child) &&
           check_pattern(obj[0], 64, 5) == 64;
}

/* Grow the object: a new uncollectable object with the same contents. */
static NOINLINE bool grow_uncollectable(struct uncollectable_probe *u)
{
    void **grown = GC_REALLOC(unhide(u->object), 4096);
    if (!grown)
        return false;
    u->object = hide(grown);
    return true;
}

static NOINLINE void free_uncollectable(struct uncollectable_probe *u)
{
    GC_FREE(unhide(u->object));
    GC_FREE(unhide(u->atomic));
}

static void test_uncollectable(void **state)
{
    (void)state;
    struct uncollectable_probe u;
    make_uncollectable(&u);
    for (int i = 0; i < 3; i++)
        collect_clean();
    CHECK(alive(u.object), "an uncollectable object was collected");
    CHECK(alive(u.atomic), "an atomic uncollectable object was collected");
    CHECK(child_intact(&u),
          "what an uncollectable object references was collected");
    CHECK(grow_uncollectable(&u), "GC_realloc of an uncollectable object");
    collect_clean();
    CHECK(alive(u.object), "a reallocated uncollectable object was collected");
    CHECK(child_intact(&u), "the child of a reallocated uncollectable object "
                            "was lost");
    free_uncollectable(&u);
    collect_clean();
    CHECK(!alive(u.object) && !alive(u.atomic), "GC_free did not free");
    CHECK(!alive(u.child), "freeing the uncollectable object did not release "
                           "what it referenced");
}

/* ---- roots ---------------------------------------------------------------
 */

static NOINLINE uintptr_t store_object(void **table, int i)
{
    table[i] = GC_MALLOC(64);
    return hide(table[i]);
}

static void test_roots(void **state)
{
    (void)state;
    void **table = malloc(16 * sizeof *table); /* not scanned by itself */
    CHECK(table != NULL, "malloc");
    memset(table, 0, 16 * sizeof *table);
    uintptr_t a = store_object(table, 3), b = store_object(table, 12);
    /* Two overlapping registrations, merged into one. */
    GC_add_roots(table, table + 8);
    GC_add_roots(table + 4, table + 16);
    collect_clean();
    CHECK(alive(a) && alive(b), "objects held by GC_add_roots ranges were "
                                "collected");
    /* Removing a range that does not contain a whole registration removes
     * nothing. */
    GC_remove_roots(table, table + 8);
    collect_clean();
    CHECK(alive(a) && alive(b), "GC_remove_roots removed a root it does not "
                                "contain entirely");
    GC_remove_roots(table, table + 16);
    collect_clean();
    CHECK(!alive(a) && !alive(b), "objects survived GC_remove_roots");
    uintptr_t c = store_object(table, 5);
    GC_add_roots(table, table + 16);
    collect_clean();
    CHECK(alive(c), "a re-added root was not scanned");
    GC_clear_roots();
    collect_clean();
    CHECK(!alive(c), "an object survived GC_clear_roots");
    free(table);
}

/* ---- control and figures ---------------------------------------------- */

static void test_control(void **state)
{
    (void)state;
    GC_word before = GC_get_gc_no();
    GC_gcollect();
    CHECK(GC_get_gc_no() == before + 1 && GC_gc_no == before + 1,
          "GC_gc_no %lu after one collection from %lu", GC_gc_no, before);
    GC_disable();
    CHECK(GC_is_disabled(), "GC_disable");
    GC_gcollect();
    CHECK(GC_try_to_collect(NULL) == 0, "GC_try_to_collect while disabled");
    for (int i = 0; i < 20000; i++) /* 80 MB: several cycles' worth */
        GC_MALLOC_ATOMIC(4000);
    CHECK(GC_get_gc_no() == before + 1, "%lu collections while disabled",
          GC_get_gc_no() - before - 1);
    GC_enable();
    CHECK(!GC_is_disabled(), "GC_enable");
    CHECK(GC_try_to_collect(NULL) == 1, "GC_try_to_collect");
    CHECK(GC_get_gc_no() == before + 2, "no collection after GC_enable");
    /* The variable written directly, as programs do. */
    GC_dont_gc = 1;
    GC_word now = GC_get_gc_no();
    for (int i = 0; i < 20000; i++)
        GC_MALLOC_ATOMIC(4000);
    CHECK(GC_get_gc_no() == now, "collections ran with GC_dont_gc set");
    GC_dont_gc = 0;
    for (int i = 0; i < 40000 && GC_get_gc_no() == now; i++)
        GC_MALLOC_ATOMIC(4000);
    CHECK(GC_get_gc_no() > now, "no automatic collection after GC_dont_gc "
                                "was cleared");
}

static void test_figures(void **state)
{
    (void)state;
    GC_gcollect();
    GC_word heap, free_bytes, unmapped, since, total;
    GC_get_heap_usage_safe(&heap, &free_bytes, &unmapped, &since, &total);
    CHECK(heap > 0 && heap == GC_get_heap_size(), "heap size %lu", heap);
    CHECK(free_bytes <= heap, "free bytes %lu over the heap %lu", free_bytes,
          heap);
    size_t total_before = GC_get_total_bytes();
    for (int i = 0; i < 100; i++)
        GC_MALLOC_ATOMIC(1000);
    CHECK(GC_get_total_bytes() >= total_before + 100000,
          "total bytes grew by %zu for 100 kB allocated",
          GC_get_total_bytes() - total_before);
    CHECK(GC_get_bytes_since_gc() >= 100000,
          "bytes since the last collection: %zu", GC_get_bytes_since_gc());
    GC_gcollect();
    CHECK(GC_get_bytes_since_gc() < 100000,
          "bytes since the last collection not reset: %zu",
          GC_get_bytes_since_gc());
    GC_set_free_space_divisor(6);
    CHECK(GC_get_free_space_divisor() == 6, "GC_set_free_space_divisor");
    gc_stats s;
    gc_read_stats(&s);
    CHECK(s.gc_percent == 25, "divisor 6 gave cgc percent %d, expected 25",
          s.gc_percent);
    GC_set_free_space_divisor(3);
}

/* ---- finalizers ---------------------------------------------------------
 */

static atomic_int finalized;
static pthread_t finalizer_thread;

static void count_finalizer(void *obj, void *cd)
{
    (void)obj;
    finalizer_thread = pthread_self();
    atomic_fetch_add(&finalized, *(int *)cd);
}

static void other_finalizer(void *obj, void *cd)
{
    (void)obj, (void)cd;
}

static NOINLINE void make_finalizable(int *weight)
{
    void *p = GC_MALLOC(32);
    GC_finalization_proc old_fn = other_finalizer;
    void *old_cd = &old_fn;
    GC_register_finalizer(p, other_finalizer, NULL, &old_fn, &old_cd);
    CHECK(old_fn == NULL && old_cd == NULL, "a fresh object had a finalizer");
    GC_register_finalizer_no_order(p, count_finalizer, weight, &old_fn,
                                   &old_cd);
    CHECK(old_fn == other_finalizer, "the previous finalizer was not "
                                     "returned");
}

static void test_finalizers(void **state)
{
    (void)state;
    static int one = 1;
    atomic_store(&finalized, 0);
    make_finalizable(&one);
    collect_clean();
    /* Ready now; the default runs them from allocations (and GC_gcollect
     * did), on this thread. */
    for (int i = 0; i < 10 && !atomic_load(&finalized); i++)
        GC_MALLOC(16);
    CHECK(atomic_load(&finalized) == 1, "%d finalizers ran, expected 1",
          atomic_load(&finalized));
    CHECK(pthread_equal(finalizer_thread, pthread_self()),
          "the finalizer ran on another thread");

    /* On demand: nothing runs until GC_invoke_finalizers. */
    GC_set_finalize_on_demand(1);
    make_finalizable(&one);
    collect_clean();
    for (int i = 0; i < 10; i++)
        GC_MALLOC(16);
    CHECK(atomic_load(&finalized) == 1, "a finalizer ran on demand mode's "
                                        "own");
    CHECK(GC_should_invoke_finalizers(), "no finalizer said to be ready");
    CHECK(GC_invoke_finalizers() == 1, "GC_invoke_finalizers ran none");
    CHECK(atomic_load(&finalized) == 2, "the finalizer did not run");
    CHECK(!GC_should_invoke_finalizers(), "finalizers still said ready");
    GC_set_finalize_on_demand(0);

    /* Removing a registration. */
    void *p = GC_MALLOC(32);
    GC_register_finalizer(p, count_finalizer, &one, NULL, NULL);
    GC_register_finalizer(p, NULL, NULL, NULL, NULL);
    p = NULL;
    collect_clean();
    GC_MALLOC(16);
    CHECK(atomic_load(&finalized) == 2, "a removed finalizer ran");
    /* A non-heap object is ignored, as bdwgc does. */
    int local;
    GC_finalization_proc ofn = other_finalizer;
    GC_register_finalizer(&local, count_finalizer, &one, &ofn, NULL);
    CHECK(ofn == NULL, "registering on a stack address returned a finalizer");
}

static atomic_int notified;

static void notifier(void)
{
    atomic_fetch_add(&notified, 1);
}

static void test_finalizer_notifier(void **state)
{
    (void)state;
    static int one = 1;
    atomic_store(&finalized, 0);
    GC_set_finalize_on_demand(1);
    GC_set_finalizer_notifier(notifier);
    CHECK(GC_get_finalizer_notifier() == notifier, "notifier not set");
    make_finalizable(&one);
    collect_clean();
    GC_MALLOC(16);
    CHECK(atomic_load(&notified) >= 1, "the notifier was not called");
    CHECK(GC_invoke_finalizers() == 1, "GC_invoke_finalizers");
    GC_set_finalizer_notifier(NULL);
    GC_set_finalize_on_demand(0);
}

/* ---- warnings and out of memory ----------------------------------------- */

static char warned[600];

static void capture_warning(char *msg, GC_word arg)
{
    snprintf(warned, sizeof warned, msg, arg);
}

static size_t oom_asked;

/* What it returns is the allocation's result: a smaller object here. */
static void *on_oom(size_t bytes)
{
    oom_asked = bytes;
    return GC_MALLOC_ATOMIC(24);
}

static void test_warn_and_oom(void **state)
{
    (void)state;
    GC_warn_proc old = GC_get_warn_proc();
    CHECK(old != NULL, "no default warn proc");
    GC_set_warn_proc(capture_warning);
    CHECK(GC_get_warn_proc() == capture_warning, "warn proc not set");
    int local;
    GC_free(&local); /* cgc warns: not a GC object */
    CHECK(strstr(warned, "gc_free") != NULL,
          "cgc's warning did not reach the warn proc: \"%s\"", warned);
    GC_set_warn_proc(GC_ignore_warn_proc);
    GC_free(&local);
    GC_set_warn_proc(old);

    CHECK(GC_get_oom_fn() != NULL, "no default oom function");
    GC_oom_func previous = GC_get_oom_fn();
    GC_set_oom_fn(on_oom);
    size_t huge = (size_t)1 << 50;
    void *result = GC_MALLOC(huge);
    CHECK(result != NULL && GC_size(result) >= 24,
          "the oom function's result was not returned");
    CHECK(oom_asked == huge, "the oom function got %zu", oom_asked);
    GC_set_oom_fn(previous);
    CHECK(GC_MALLOC(huge) == NULL, "the default oom function returns NULL");
}

/* ---- threads: plain stores, stop-the-world marking ---------------------- */

#define THREADS    4
#define SLOTS      512
#define NODE_MAGIC 0xB0E4B0E4u

struct node {
    unsigned magic, id;
    struct node *child[2];
    uint64_t check;
};

static struct node *shared[SLOTS]; /* a static: scanned as Boehm does */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

static struct node *new_node(unsigned id)
{
    struct node *n = GC_MALLOC(sizeof *n);
    if (!n)
        abort();
    n->magic = NODE_MAGIC;
    n->id = id;
    n->check = (uint64_t)id * 2654435761u;
    return n;
}

static bool node_ok(const struct node *n)
{
    return n->magic == NODE_MAGIC && n->check == (uint64_t)n->id * 2654435761u;
}

static unsigned check_tree(const struct node *n, int depth)
{
    if (!n || depth > 64)
        return 0;
    if (!node_ok(n))
        return 1;
    return check_tree(n->child[0], depth + 1) +
           check_tree(n->child[1], depth + 1);
}

struct worker {
    pthread_t th;
    unsigned seed;
    unsigned damaged;
};

static void *mutator(void *arg)
{
    struct worker *w = arg;
    uint64_t x = w->seed;
    for (int step = 0; step < 150000; step++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        unsigned slot = (unsigned)(x >> 33) % SLOTS;
        struct node *fresh = new_node((unsigned)(x >> 40));
        pthread_mutex_lock(&shared_lock);
        struct node *old = shared[slot];
        switch ((x >> 20) % 4) {
        case 0: /* replace the subtree */
            shared[slot] = fresh;
            break;
        case 1: /* grow it */
            if (old)
                old->child[(x >> 25) & 1] = fresh;
            else
                shared[slot] = fresh;
            break;
        case 2: /* move it below the new node, held only locally meanwhile */
            shared[slot] = NULL;
            pthread_mutex_unlock(&shared_lock);
            fresh->child[0] = old;
            GC_MALLOC(64); /* an allocation while only this thread holds it */
            pthread_mutex_lock(&shared_lock);
            if (!shared[slot])
                shared[slot] = fresh;
            break;
        default: /* check and drop a grandchild */
            if (old) {
                w->damaged += check_tree(old, 0);
                if (old->child[0])
                    old->child[0]->child[1] = NULL;
            }
        }
        pthread_mutex_unlock(&shared_lock);
    }
    return NULL;
}

static void test_threads_plain_stores(void **state)
{
    (void)state;
    GC_INIT();
    GC_word before = GC_get_gc_no();
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.seed = (unsigned)i * 7919 + 1};
        CHECK(pthread_create(&w[i].th, NULL, mutator, &w[i]) == 0, "create");
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(w[i].th, NULL);
    unsigned damaged = 0;
    for (int i = 0; i < THREADS; i++)
        damaged += w[i].damaged;
    for (int s = 0; s < SLOTS; s++)
        damaged += check_tree(shared[s], 0);
    CHECK(damaged == 0, "%u damaged nodes: a live node was freed", damaged);
    CHECK(GC_get_gc_no() - before >= 5, "only %lu collections ran",
          GC_get_gc_no() - before);
    print_message("%lu collections with %d threads storing plainly\n",
                  GC_get_gc_no() - before, THREADS);
    memset(shared, 0, sizeof shared);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "api";
    if (strcmp(mode, "api") == 0) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_allocation),
            cmocka_unit_test(test_reclaim),
            cmocka_unit_test(test_uncollectable),
            cmocka_unit_test(test_roots),
            cmocka_unit_test(test_control),
            cmocka_unit_test(test_figures),
            cmocka_unit_test(test_finalizers),
            cmocka_unit_test(test_finalizer_notifier),
            cmocka_unit_test(test_warn_and_oom),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    if (strcmp(mode, "threads") == 0) {
        setenv("CGC_DEBUG", "gccheckmark=1", 1);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_threads_plain_stores),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    fprintf(stderr, "usage: %s [api|threads]\n", argv[0]);
    return 2;
}
