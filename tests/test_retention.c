/*
 * test_retention — nothing reachable is ever freed.
 *
 * Objects reachable only through stack locals, through interior pointers
 * on the stack, through a registered root, and through object fields
 * (linked lists of 100 000 nodes built with GC_WRITE, conservative and
 * typed, appended at the tail, mutated while collections run, a binary
 * tree, arrays filled by gc_memmove) survive several gc_collect calls with
 * garbage churn in between, and are verified node by node.
 */
#define _GNU_SOURCE
#include "test_util.h"

#define LIST_LEN 100000
#define MAGIC    0x5eedf00dcafe1234ull

struct node {
    struct node *next;
    uint64_t value;
    uint64_t check;
};

static const gc_type *node_type;
static struct node *g_list_head; /* registered as a root in one test */

static unsigned seed_of(const void *p)
{
    return (unsigned)((uintptr_t)p >> 4);
}

/* Garbage of mixed sizes and kinds; some of it points at other garbage. */
static NOINLINE void churn(size_t n)
{
    void *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t sz = 16 + (i * 37) % 400;
        void **p = (i % 3 == 0) ? gc_alloc_noscan(sz) : gc_alloc(sz);
        if (i % 3 != 0)
            GC_WRITE(p[0], prev);
        else
            memset(p, 0xdd, sz);
        prev = (i % 64 == 0) ? NULL : p;
    }
}

static void churn_and_collect(int rounds)
{
    for (int r = 0; r < rounds; r++) {
        churn(scaled(30000, 3000));
        clear_stack();
        gc_collect();
    }
}

/* ---- stack locals ----------------------------------------------------------
 */

static NOINLINE void fill_locals(void **locals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t sz = 8 + (i * 13) % 2000;
        void *p = (i & 1) ? gc_alloc(sz) : gc_alloc_noscan(sz);
        fill_pattern(p, sz, seed_of(p));
        locals[i] = p;
    }
}

static void test_stack_locals(void **state)
{
    (void)state;
    enum { N = 1000 };
    void *locals[N];
    fill_locals(locals, N);
    churn_and_collect(3);
    for (size_t i = 0; i < N; i++) {
        size_t sz = 8 + (i * 13) % 2000;
        CHECK(gc_base(locals[i]) == locals[i],
              "object %zu (%p) held by a stack local was reclaimed", i,
              locals[i]);
        size_t bad = check_pattern(locals[i], sz, seed_of(locals[i]));
        CHECK(bad == sz,
              "object %zu (%p, %zu bytes) held by a stack local: "
              "byte %zu changed",
              i, locals[i], sz, bad);
    }
}

/* ---- interior pointers
 * ------------------------------------------------------- */

static NOINLINE void fill_interior(char **interior, uintptr_t *hidden, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t sz = (i % 7 == 0) ? 40000 + i : 16 + (i * 29) % 3000;
        char *p = gc_alloc(sz);
        fill_pattern(p, sz, seed_of(p));
        hidden[i] = hide(p);
        size_t u = gc_size(p);
        size_t off = (i % 3 == 0) ? u - 1 : 1 + (i * 101) % (u - 1);
        interior[i] = p + off;
    }
}

static void test_interior_pointers(void **state)
{
    (void)state;
    enum { N = 500 };
    char *interior[N];
    uintptr_t hidden[N];
    fill_interior(interior, hidden, N);
    churn_and_collect(3);
    for (size_t i = 0; i < N; i++) {
        char *p = unhide(hidden[i]);
        size_t sz = (i % 7 == 0) ? 40000 + i : 16 + (i * 29) % 3000;
        CHECK(gc_base(interior[i]) == p,
              "object %zu (%p) held only by an interior pointer (+%zu) was "
              "reclaimed: gc_base = %p",
              i, (void *)p, (size_t)(interior[i] - p), gc_base(interior[i]));
        CHECK(check_pattern(p, sz, seed_of(p)) == sz,
              "object %zu held by an interior pointer lost its contents", i);
    }
}

/* ---- linked lists
 * -------------------------------------------------------------- */

/* Prepend LIST_LEN nodes, with garbage between them so that automatic
 * collections run while the list is built. */
static NOINLINE struct node *build_list(size_t n, int typed)
{
    struct node *head = NULL;
    for (size_t i = 0; i < n; i++) {
        struct node *nd = typed ? gc_alloc_typed(sizeof *nd, node_type)
                                : gc_alloc(sizeof *nd);
        if (!nd)
            return NULL;
        nd->value = i;
        nd->check = i ^ MAGIC;
        GC_WRITE(nd->next, head);
        head = nd;
        if (i % 4 == 0)
            memset(gc_alloc_noscan(64), 0xab, 64);
        if (i % 16 == 0)
            (void)gc_alloc(24);
    }
    return head;
}

/* Walk the list; expects values n-1 .. 0. Returns a description of the
 * first problem, or NULL. */
static const char *verify_list(const struct node *head, size_t n, size_t *where)
{
    size_t i = 0;
    for (const struct node *nd = head; nd; nd = nd->next, i++) {
        *where = i;
        if (i >= n)
            return "list is longer than built";
        if (gc_base(nd) != nd)
            return "node is not a live object";
        if (nd->value != n - 1 - i)
            return "node value is wrong";
        if (nd->check != (nd->value ^ MAGIC))
            return "node check word is wrong";
    }
    *where = i;
    return i == n ? NULL : "list is shorter than built";
}

static void run_list_test(int typed)
{
    int prev = gc_set_percent(25); /* many cycles while building */
    struct node *head = build_list(LIST_LEN, typed);
    gc_set_percent(prev);
    CHECK(head != NULL, "allocation failed while building the list");
    for (int round = 0; round < 3; round++) {
        churn_and_collect(1);
        size_t where = 0;
        const char *err = verify_list(head, LIST_LEN, &where);
        CHECK(err == NULL, "%s list, round %d: at node %zu: %s",
              typed ? "typed" : "conservative", round, where, err);
    }
}

static void test_list_conservative(void **state)
{
    (void)state;
    run_list_test(0);
}

static void test_list_typed(void **state)
{
    (void)state;
    run_list_test(1);
}

static NOINLINE void build_list_in_root(size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct node *nd = gc_alloc_typed(sizeof *nd, node_type);
        nd->value = i;
        nd->check = i ^ MAGIC;
        GC_WRITE(nd->next, g_list_head);
        GC_WRITE(g_list_head, nd);
        if (i % 8 == 0)
            memset(gc_alloc_noscan(48), 0xab, 48);
    }
}

static void test_list_through_root(void **state)
{
    (void)state;
    CHECK(GC_ROOT(g_list_head) == 0, "GC_ROOT(g_list_head) failed");
    build_list_in_root(LIST_LEN);
    for (int round = 0; round < 3; round++) {
        churn_and_collect(1);
        size_t where = 0;
        const char *err = verify_list(g_list_head, LIST_LEN, &where);
        CHECK(err == NULL, "list held by a root, round %d: at node %zu: %s",
              round, where, err);
    }
    CHECK(gc_root_remove(&g_list_head) == 0, "gc_root_remove");
    g_list_head = NULL;
}

/* Append at the tail: every store goes into an older object. */
static NOINLINE struct node *build_queue(size_t n)
{
    struct node *head = gc_alloc(sizeof *head);
    struct node *tail = head;
    head->value = 0;
    head->check = MAGIC;
    for (size_t i = 1; i < n; i++) {
        struct node *nd = gc_alloc(sizeof *nd);
        nd->value = i;
        nd->check = i ^ MAGIC;
        GC_WRITE(tail->next, nd);
        tail = nd;
        if (i % 4 == 0)
            memset(gc_alloc_noscan(64), 0xab, 64);
    }
    return head;
}

static void test_list_appended_at_tail(void **state)
{
    (void)state;
    int prev = gc_set_percent(25);
    struct node *head = build_queue(LIST_LEN);
    gc_set_percent(prev);
    for (int round = 0; round < 3; round++) {
        churn_and_collect(1);
        size_t i = 0;
        for (struct node *nd = head; nd; nd = nd->next, i++) {
            CHECK(i < LIST_LEN, "queue longer than built");
            CHECK(nd->value == i && nd->check == (i ^ MAGIC),
                  "queue, round %d: node %zu holds value %llu", round, i,
                  (unsigned long long)nd->value);
        }
        CHECK(i == LIST_LEN, "queue, round %d: %zu nodes, expected %d", round,
              i, LIST_LEN);
    }
}

/* Unlink every node whose value % 3 == 2 and insert a new node (value
 * N + v) after every node whose value % 5 == 0, while collections run. */
static NOINLINE void mutate_queue(struct node *head, size_t n)
{
    for (struct node *nd = head; nd; nd = nd->next) {
        while (nd->next && nd->next->value < n && nd->next->value % 3 == 2)
            GC_WRITE(nd->next, nd->next->next);
        if (nd->value < n && nd->value % 5 == 0) {
            struct node *ins = gc_alloc(sizeof *ins);
            ins->value = n + nd->value;
            ins->check = ins->value ^ MAGIC;
            GC_WRITE(ins->next, nd->next);
            GC_WRITE(nd->next, ins);
            nd = ins;
        }
        memset(gc_alloc_noscan(32), 0xab, 32);
    }
}

static void test_list_mutated_during_collections(void **state)
{
    (void)state;
    int prev = gc_set_percent(10);
    struct node *head = build_queue(LIST_LEN);
    mutate_queue(head, LIST_LEN);
    gc_set_percent(prev);
    for (int round = 0; round < 2; round++) {
        churn_and_collect(1);
        struct node *nd = head;
        size_t pos = 0;
        for (uint64_t v = 0; v < LIST_LEN; v++) {
            if (v % 3 == 2)
                continue;
            CHECK(nd != NULL, "mutated list ends early at position %zu", pos);
            CHECK(nd->value == v && nd->check == (v ^ MAGIC),
                  "mutated list, round %d, position %zu: value %llu, expected "
                  "%llu",
                  round, pos, (unsigned long long)nd->value,
                  (unsigned long long)v);
            nd = nd->next;
            pos++;
            if (v % 5 == 0) {
                CHECK(nd != NULL && nd->value == LIST_LEN + v &&
                          nd->check == ((LIST_LEN + v) ^ MAGIC),
                      "mutated list, round %d, position %zu: inserted node "
                      "for %llu missing or wrong",
                      round, pos, (unsigned long long)v);
                nd = nd->next;
                pos++;
            }
        }
        CHECK(nd == NULL, "mutated list is longer than expected");
    }
}

/* ---- a binary tree ----------------------------------------------------------
 */

struct tree {
    struct tree *left, *right;
    uint64_t value;
};

static struct tree *build_tree(int depth, uint64_t *counter)
{
    if (depth == 0)
        return NULL;
    struct tree *t = gc_alloc(sizeof *t);
    t->value = (*counter)++;
    struct tree *l = build_tree(depth - 1, counter);
    GC_WRITE(t->left, l);
    struct tree *r = build_tree(depth - 1, counter);
    GC_WRITE(t->right, r);
    return t;
}

/* Preorder numbering: 1 if the subtree is intact, 0 otherwise. */
static uint64_t check_tree(const struct tree *t, int depth, uint64_t *counter)
{
    if (depth == 0)
        return t == NULL ? 1 : 0;
    if (!t || gc_base(t) != t || t->value != (*counter)++)
        return 0;
    uint64_t l = check_tree(t->left, depth - 1, counter);
    uint64_t r = check_tree(t->right, depth - 1, counter);
    return (l && r) ? 1 : 0;
}

static void test_binary_tree(void **state)
{
    (void)state;
    const int depth = 17; /* 131071 nodes */
    uint64_t counter = 0;
    int prev = gc_set_percent(25);
    struct tree *root = build_tree(depth, &counter);
    gc_set_percent(prev);
    CHECK(counter == (1u << depth) - 1, "built %llu nodes",
          (unsigned long long)counter);
    for (int round = 0; round < 3; round++) {
        churn_and_collect(1);
        uint64_t c = 0;
        CHECK(check_tree(root, depth, &c) == 1,
              "binary tree of depth %d damaged in round %d (after %llu nodes "
              "in preorder)",
              depth, round, (unsigned long long)c);
    }
}

/* ---- gc_memmove -------------------------------------------------------------
 */

static NOINLINE void **fill_by_memmove(size_t n, uintptr_t *hidden)
{
    void **src = malloc(n * sizeof *src); /* not scanned */
    void **dst = gc_alloc(n * sizeof *dst);
    if (!src || !dst)
        return NULL;
    /* The objects are held by the stack array while src is filled. */
    void *hold[256];
    for (size_t i = 0; i < n; i++) {
        void *p = gc_alloc_noscan(32);
        fill_pattern(p, 32, seed_of(p));
        hidden[i] = hide(p);
        src[i] = p;
        hold[i % 256] = p;
        if (i % 256 == 255) {
            gc_memmove(dst + i - 255, src + i - 255, 256 * sizeof *dst);
        }
    }
    size_t done = n - n % 256;
    if (done < n)
        gc_memmove(dst + done, src + done, (n - done) * sizeof *dst);
    __asm__ volatile("" : : "r"(hold) : "memory");
    free(src);
    return dst;
}

static void test_gc_memmove(void **state)
{
    (void)state;
    const size_t n = 4096;
    uintptr_t *hidden = malloc(n * sizeof *hidden);
    CHECK(hidden != NULL, "malloc");
    int prev = gc_set_percent(10);
    void **dst = fill_by_memmove(n, hidden);
    gc_set_percent(prev);
    CHECK(dst != NULL, "allocation failed");
    churn_and_collect(2);
    for (size_t i = 0; i < n; i++) {
        void *p = unhide(hidden[i]);
        CHECK(dst[i] == p, "gc_memmove copied word %zu wrong", i);
        CHECK(gc_base(p) == p && check_pattern(p, 32, seed_of(p)) == 32,
              "object %zu held only through a gc_memmove'd array was lost", i);
    }
    /* Overlapping moves inside one object, both directions. */
    gc_memmove(dst + 1, dst, (n - 1) * sizeof *dst);
    CHECK(dst[0] == unhide(hidden[0]) && dst[1] == unhide(hidden[0]) &&
              dst[n - 1] == unhide(hidden[n - 2]),
          "overlapping gc_memmove (forward) wrong");
    gc_memmove(dst, dst + 1, (n - 1) * sizeof *dst);
    for (size_t i = 0; i + 1 < n; i++)
        CHECK(dst[i] == unhide(hidden[i]),
              "overlapping gc_memmove (backward) wrong at %zu", i);
    /* An unaligned byte copy is plain memmove. */
    char *bytes = gc_alloc(100);
    memcpy(bytes, "0123456789abcdefghij", 20);
    gc_memmove(bytes + 3, bytes + 1, 10);
    CHECK(memcmp(bytes, "012123456789adefghij", 20) == 0,
          "unaligned gc_memmove wrong: %.20s", bytes);
    churn_and_collect(1);
    for (size_t i = 0; i + 1 < n; i++) {
        void *p = unhide(hidden[i]);
        CHECK(gc_base(p) == p, "object %zu lost after overlapping moves", i);
    }
    /* dst must stay live across the collection above. */
    CHECK(dst[0] == unhide(hidden[0]) && gc_base(dst) == dst,
          "the gc_memmove'd array itself was lost");
    free(hidden);
}

int main(void)
{
    static const size_t offs[] = {offsetof(struct node, next)};
    node_type = gc_type_new(sizeof(struct node), offs, 1);
    if (!node_type) {
        fprintf(stderr, "gc_type_new failed (errno %d)\n", errno);
        return 1;
    }
    remember_percent();
    const struct CMUnitTest tests[] = {
        PERCENT_TEST(test_stack_locals),
        PERCENT_TEST(test_interior_pointers),
        PERCENT_TEST(test_list_conservative),
        PERCENT_TEST(test_list_typed),
        PERCENT_TEST(test_list_through_root),
        PERCENT_TEST(test_list_appended_at_tail),
        PERCENT_TEST(test_list_mutated_during_collections),
        PERCENT_TEST(test_binary_tree),
        PERCENT_TEST(test_gc_memmove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
