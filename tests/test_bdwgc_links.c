/*
 * test_bdwgc_links.c — the Boehm layer's disappearing and long links
 * (compat/bdwgc/links.c) and typed allocation (gc_typed.h, typed.c), used
 * as a bdwgc program uses them: gc.h, plain stores. Single-threaded.
 *
 * Link words live in malloc memory (never scanned), so they do not keep
 * their objects alive. Objects that should die are made by NOINLINE
 * helpers that leave no raw pointer in the test's frame; objects that
 * should live are held by the global `keep` (scanned data). Since scanning
 * is conservative, deaths are awaited over a few collections.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <gc.h>
#include <gc/gc_typed.h>

#include <stdbool.h>

#define TRIES 10

static void *volatile keep[4]; /* roots: the executable's data is scanned */

static NOINLINE void collect_clean(void)
{
    clear_stack();
    GC_gcollect();
    clear_stack();
}

static void **new_slot(void)
{
    void **slot = malloc(sizeof *slot);
    CHECK(slot != NULL, "malloc");
    *slot = NULL;
    return slot;
}

/* A collection, then the finalizers that became ready (on this thread),
 * with no stale copy of their objects left on the stack. */
static NOINLINE void collect_and_finalize(void)
{
    collect_clean();
    GC_invoke_finalizers();
    clear_stack();
}

static NOINLINE bool slot_is_null(void **slot)
{
    return *(void *volatile *)slot == NULL;
}

/* Collect until *slot is NULL (or TRIES collections went by). */
static NOINLINE bool collect_until_cleared(void **slot)
{
    for (int i = 0; i < TRIES; i++) {
        collect_clean();
        if (slot_is_null(slot))
            return true;
    }
    return false;
}

/* The same, first clearing the stack below the caller's frame, where the
 * frames of earlier calls (a finalizer's, say) may have left a copy of the
 * object's address that the next frames would not overwrite. Inlined, so
 * that the caller's frame is the one cleared below. */
static inline __attribute__((always_inline)) bool
cleared_within_tries(void **slot)
{
    clear_stack();
    return collect_until_cleared(slot);
}

/* An object of size bytes, linked from *slot (registered as a short or a
 * long link); nothing else references it. */
static NOINLINE void linked_object(void **slot, size_t size, bool is_long)
{
    void *p = GC_MALLOC(size);
    CHECK(p != NULL, "GC_MALLOC");
    *slot = p;
    int r = is_long ? GC_register_long_link(slot, p)
                    : GC_general_register_disappearing_link(slot, p);
    CHECK(r == GC_SUCCESS, "register returned %d", r);
}

/* Raw pointers are handled only in NOINLINE helpers like these, so that
 * no register of a test's own frame keeps a copy. */
static NOINLINE uintptr_t slot_hidden(void **slot)
{
    /* Volatile: loaded here (not by the caller), into the register the
     * hiding then overwrites. */
    return *(volatile uintptr_t *)slot ^ HIDE_MASK;
}

static NOINLINE void pin(int i, void **slot)
{
    keep[i] = *slot;
}

static NOINLINE void pin_new(int i, size_t size)
{
    keep[i] = GC_MALLOC(size);
    CHECK(keep[i] != NULL, "GC_MALLOC");
}

/* ---- disappearing links --------------------------------------------------
 */

static void test_link_follows_reachability(void **state)
{
    (void)state;
    void **slot = new_slot();
    linked_object(slot, 48, false);
    pin(0, slot); /* reachable from a root */
    uintptr_t h = slot_hidden(slot);
    for (int i = 0; i < 3; i++) {
        collect_clean();
        CHECK(slot_hidden(slot) == h,
              "collection %d cleared the link of a "
              "reachable object",
              i);
    }
    keep[0] = NULL;
    CHECK(cleared_within_tries(slot),
          "the link of a dead object was not "
          "cleared in %d collections",
          TRIES);
    /* It fired once: the entry is gone. */
    CHECK(GC_unregister_disappearing_link(slot) == 0,
          "a link still registered after it was cleared");
    free(slot);
}

static NOINLINE uintptr_t hidden_atomic(size_t size)
{
    return hide(GC_MALLOC_ATOMIC(size));
}

/* The link word inside an atomic GC object; the hidden-pointer form. */
/* A second, hidden link to the object *slot names, in hidden_slot. */
static NOINLINE void hidden_link_too(GC_word *hidden_slot, void **slot)
{
    *hidden_slot = GC_HIDE_POINTER(*slot);
    CHECK(GC_general_register_disappearing_link((void **)hidden_slot, *slot) ==
              GC_SUCCESS,
          "registering the hidden link");
}

static void test_link_in_gc_object(void **state)
{
    (void)state;
    keep[1] = unhide(hidden_atomic(4 * sizeof(void *)));
    void **words = keep[1];
    linked_object(&words[1], 32, false);
    /* A hidden link in malloc memory, as bdwgc programs often keep them. */
    GC_word *hidden_slot = malloc(sizeof *hidden_slot);
    CHECK(hidden_slot != NULL, "malloc");
    hidden_link_too(hidden_slot, &words[1]);
    CHECK(cleared_within_tries(&words[1]),
          "a link in an atomic object was not cleared");
    CHECK(cleared_within_tries((void **)hidden_slot),
          "the hidden link was not cleared");
    keep[1] = NULL;
    free(hidden_slot);
}

/* A link in a GC object that dies before the linked object: the entry must
 * go with its container, never writing into the container's slot once
 * other objects reuse it. The container's death is watched through a
 * second link, in watch (a check such as GC_base(p) == p would leave p in
 * registers that the next collection scans). */
static NOINLINE void container_linking(void *target, void **watch)
{
    void **c = GC_MALLOC_ATOMIC(2 * sizeof(void *));
    CHECK(c != NULL, "GC_MALLOC_ATOMIC");
    c[0] = target;
    CHECK(GC_general_register_disappearing_link(&c[0], target) == GC_SUCCESS,
          "register");
    *watch = c;
    CHECK(GC_general_register_disappearing_link(watch, c) == GC_SUCCESS,
          "register the watch");
}

static void test_link_container_dies_first(void **state)
{
    (void)state;
    enum { REUSE = 2000 };
    pin_new(0, 32);
    void **watch = new_slot();
    container_linking(keep[0], watch);
    CHECK(cleared_within_tries(watch), "the container never died");
    free(watch);
    /* Fill the freed slots of that size class with a pattern. */
    uintptr_t *fill = malloc(REUSE * sizeof *fill);
    CHECK(fill != NULL, "malloc");
    for (int i = 0; i < REUSE; i++) {
        void **p = GC_MALLOC_ATOMIC(2 * sizeof(void *));
        CHECK(p != NULL, "GC_MALLOC_ATOMIC");
        p[0] = p[1] = (void *)(uintptr_t)0xAB5EED00u;
        fill[i] = (uintptr_t)p;
    }
    GC_add_roots(fill, fill + REUSE); /* keep the fillers */
    keep[0] = NULL;                   /* the linked object dies now */
    for (int i = 0; i < 3; i++)
        collect_clean();
    int broken = 0;
    for (int i = 0; i < REUSE; i++) {
        void **p = (void **)fill[i];
        broken += p[0] != (void *)(uintptr_t)0xAB5EED00u ||
                  p[1] != (void *)(uintptr_t)0xAB5EED00u;
    }
    GC_remove_roots(fill, fill + REUSE);
    free(fill);
    CHECK(broken == 0, "%d reused objects were written by a stale link",
          broken);
}

/* ---- short and long links across a resurrecting finalizer --------------
 */

static void **short_slot, **long_slot;
static int finalized;
static bool short_clear_in_finalizer, long_set_in_finalizer;

static void resurrect(void *obj, void *cd)
{
    (void)cd;
    finalized++;
    short_clear_in_finalizer = *short_slot == NULL;
    long_set_in_finalizer = *long_slot == obj;
    keep[2] = obj; /* back from the dead */
}

static NOINLINE void finalizable_linked(void)
{
    void *p = GC_MALLOC(64);
    CHECK(p != NULL, "GC_MALLOC");
    *short_slot = *long_slot = p;
    CHECK(GC_general_register_disappearing_link(short_slot, p) == GC_SUCCESS,
          "short link");
    CHECK(GC_register_long_link(long_slot, p) == GC_SUCCESS, "long link");
    GC_register_finalizer(p, resurrect, NULL, NULL, NULL);
}

static void test_short_and_long_links(void **state)
{
    (void)state;
    short_slot = new_slot();
    long_slot = new_slot();
    finalized = 0;
    finalizable_linked();
    uintptr_t h = slot_hidden(long_slot);
    for (int i = 0; i < TRIES && !finalized; i++)
        collect_and_finalize();
    CHECK(finalized == 1, "the finalizer ran %d times", finalized);
    CHECK(short_clear_in_finalizer, "the disappearing link was still set "
                                    "when the finalizer ran");
    CHECK(long_set_in_finalizer, "the long link was cleared before the "
                                 "finalizer ran");
    CHECK(*short_slot == NULL, "the disappearing link is set again");
    /* Resurrected: the long link stays. */
    for (int i = 0; i < 3; i++) {
        collect_clean();
        CHECK(slot_hidden(long_slot) == h, "the long link of a resurrected "
                                           "object was cleared");
    }
    keep[2] = NULL; /* now it dies for good (no finalizer any more) */
    CHECK(cleared_within_tries(long_slot), "the long link was not cleared "
                                           "after the object died");
    CHECK(finalized == 1, "the finalizer ran again");
    free(short_slot);
    free(long_slot);
}

/* A long link to an object whose finalizer does not resurrect it: set
 * while the finalizer is pending and running, cleared afterwards. */
static void **plain_long_slot;
static bool plain_long_set_in_finalizer;
static void plain_finalizer(void *obj, void *cd)
{
    (void)cd;
    finalized++;
    plain_long_set_in_finalizer = *plain_long_slot == obj;
}

static NOINLINE void finalizable_long_linked(void)
{
    linked_object(plain_long_slot, 40, true);
    GC_register_finalizer(*plain_long_slot, plain_finalizer, NULL, NULL, NULL);
}

static void test_long_link_after_finalizer(void **state)
{
    (void)state;
    plain_long_slot = new_slot();
    finalized = 0;
    finalizable_long_linked();
    for (int i = 0; i < TRIES && !finalized; i++)
        collect_and_finalize();
    CHECK(finalized == 1, "the finalizer ran %d times", finalized);
    CHECK(plain_long_set_in_finalizer, "the long link was cleared before "
                                       "the finalizer ran");
    CHECK(cleared_within_tries(plain_long_slot),
          "the long link was not cleared after finalization");
    free(plain_long_slot);
}

/* ---- return codes ---------------------------------------------------------
 */

/* Register, move, unregister; leaves c registered for keep[0], b holding
 * it unregistered and a holding a non-pointer. */
static NOINLINE void register_codes(void **a, void **b, void **c)
{
    void *obj = keep[0];
    CHECK(GC_general_register_disappearing_link(a, obj) == GC_SUCCESS, "a");
    CHECK(GC_general_register_disappearing_link(a, obj) == GC_DUPLICATE,
          "registering a twice");
    CHECK(GC_register_long_link(a, obj) == GC_SUCCESS,
          "a long link beside a short one");
    CHECK(GC_register_long_link(a, obj) == GC_DUPLICATE, "long twice");
    CHECK(GC_unregister_long_link(a) == 1, "unregister the long link");
    CHECK(GC_unregister_long_link(a) == 0, "unregister it again");

    CHECK(GC_move_disappearing_link(c, b) == GC_NOT_FOUND,
          "moving an unregistered link");
    CHECK(GC_general_register_disappearing_link(b, obj) == GC_SUCCESS, "b");
    CHECK(GC_move_disappearing_link(a, b) == GC_DUPLICATE,
          "moving onto a registered link");
    CHECK(GC_move_disappearing_link(a, c) == GC_SUCCESS, "moving a to c");
    CHECK(GC_move_disappearing_link(a, c) == GC_NOT_FOUND,
          "a is no longer registered");
    CHECK(GC_move_long_link(a, c) == GC_NOT_FOUND, "no long link at a");
    CHECK(GC_unregister_disappearing_link(b) == 1, "unregister b");
    CHECK(GC_unregister_disappearing_link(b) == 0, "unregister b again");

    /* The moved registration is c's: c is cleared, a is left alone. */
    *a = (void *)(uintptr_t)0x5EED;
    *b = obj; /* unregistered: must stay */
    *c = obj;
}

static void test_return_codes(void **state)
{
    (void)state;
    void **a = new_slot(), **b = new_slot(), **c = new_slot();
    pin_new(0, 16);
    register_codes(a, b, c);
    keep[0] = NULL;
    CHECK(cleared_within_tries(c), "the moved link was not cleared");
    CHECK(*a == (void *)(uintptr_t)0x5EED, "the old link location was "
                                           "written");
    CHECK(*b != NULL, "an unregistered link was cleared");
    CHECK(GC_unregister_disappearing_link(c) == 0, "c fired: gone");

    /* GC_register_disappearing_link: the link's own object. */
    pin_new(3, 2 * sizeof(void *));
    void **inner = keep[3];
    CHECK(GC_register_disappearing_link(&inner[1]) == GC_SUCCESS, "inner");
    CHECK(GC_register_disappearing_link(&inner[1]) == GC_DUPLICATE,
          "inner twice");
    CHECK(GC_unregister_disappearing_link(&inner[1]) == 1, "inner unregister");
    keep[3] = NULL;
    free(a);
    free(b);
    free(c);
}
/* ---- typed allocation -----------------------------------------------------
 */

struct node {
    void *ptr;       /* a pointer */
    GC_word number;  /* not a pointer, though it may look like one */
    void *other;     /* a pointer */
    GC_word number2; /* not a pointer */
};

static GC_descr node_descr(void)
{
    GC_word bitmap[GC_BITMAP_SIZE(struct node)] = {0};
    GC_set_bit(bitmap, GC_WORD_OFFSET(struct node, ptr));
    GC_set_bit(bitmap, GC_WORD_OFFSET(struct node, other));
    return GC_make_descriptor(bitmap, GC_WORD_LEN(struct node));
}

/* Link fresh objects from pointer_slot and number_slot and store them in
 * n->ptr (a pointer field) and in *number_field (not a pointer). */
static NOINLINE void store_targets(struct node *n, GC_word *number_field,
                                   void **pointer_slot, void **number_slot)
{
    linked_object(pointer_slot, 24, false);
    linked_object(number_slot, 24, false);
    n->ptr = *pointer_slot;
    *number_field = (GC_word)*number_slot;
}

static void check_precise(void **pointer_slot, void **number_slot,
                          const char *what)
{
    CHECK(cleared_within_tries(number_slot),
          "%s: an object named only by a non-pointer field was kept", what);
    CHECK(*pointer_slot != NULL,
          "%s: an object named by a pointer field was freed", what);
    CHECK(GC_unregister_disappearing_link(pointer_slot) == 1, "%s", what);
}

static void test_typed_malloc(void **state)
{
    (void)state;
    GC_descr d = node_descr();
    CHECK(d == node_descr(), "the same bitmap gave another descriptor");
    GC_word other_bitmap[1] = {1};
    CHECK(GC_make_descriptor(other_bitmap, 4) != d,
          "a different bitmap gave the same descriptor");

    void **ps = new_slot(), **ns = new_slot();
    keep[0] = GC_malloc_explicitly_typed(sizeof(struct node), d);
    struct node *n = keep[0];
    CHECK(n && first_nonzero(n, sizeof *n) == sizeof *n, "zeroed object");
    store_targets(n, &n->number, ps, ns);
    check_precise(ps, ns, "GC_malloc_explicitly_typed, word 1");

    /* A word past the descriptor's length holds no pointer either. */
    keep[1] = GC_malloc_explicitly_typed_ignore_off_page(
        sizeof(struct node) + 3 * sizeof(GC_word), d);
    struct node *big = keep[1];
    store_targets(big, (GC_word *)(big + 1) + 1, ps, ns);
    check_precise(ps, ns, "a word past the descriptor");

    /* No pointer bit: atomic. */
    GC_word none[1] = {0};
    keep[2] = GC_malloc_explicitly_typed(sizeof(struct node),
                                         GC_make_descriptor(none, 4));
    void **atomic = keep[2];
    linked_object(ns, 24, false);
    atomic[0] = *ns;
    CHECK(cleared_within_tries(ns), "an atomic typed object kept an object");

    keep[0] = keep[1] = keep[2] = NULL;
    free(ps);
    free(ns);
}

static void test_typed_calloc(void **state)
{
    (void)state;
    GC_descr d = node_descr();
    void **ps = new_slot(), **ns = new_slot();
    keep[0] = GC_calloc_explicitly_typed(5, sizeof(struct node), d);
    struct node *a = keep[0];
    CHECK(a && first_nonzero(a, 5 * sizeof *a) == 5 * sizeof *a, "zeroed");
    store_targets(&a[3], &a[3].number2, ps, ns);
    check_precise(ps, ns, "GC_calloc_explicitly_typed, element 3");

    /* An element size cgc cannot express: conservative, so both live. */
    keep[1] = GC_calloc_explicitly_typed(3, 3 * sizeof(GC_word) + 4, d);
    CHECK(keep[1] != NULL, "odd element size");
    keep[0] = keep[1] = NULL;
    free(ps);
    free(ns);
}

int main(void)
{
    GC_INIT();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_follows_reachability),
        cmocka_unit_test(test_link_in_gc_object),
        cmocka_unit_test(test_link_container_dies_first),
        cmocka_unit_test(test_short_and_long_links),
        cmocka_unit_test(test_long_link_after_finalizer),
        cmocka_unit_test(test_return_codes),
        cmocka_unit_test(test_typed_malloc),
        cmocka_unit_test(test_typed_calloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
