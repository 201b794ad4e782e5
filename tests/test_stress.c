/*
 * test_stress.c — many threads mutate a random graph while the collector
 * runs cycle after cycle (a low CGC_PERCENT), in the mode named on the
 * command line: `test_stress concurrent|stoptheworld [checkmark]`. CTest
 * runs all four combinations, so that no marking mode ships that no
 * multi-threaded stress test runs.
 *
 * Each thread owns a graph hanging off its row of root slots, a malloc'd
 * array registered with gc_root_add. It allocates nodes (conservative and
 * typed) and pointer-free leaves of 16-512 bytes (gc_alloc_noscan), links
 * them from slots or from reachable nodes, unlinks edges, moves pointers
 * between reachable nodes (sometimes holding one only in a local across an
 * allocation), copies edge arrays with gc_memmove, drops whole subtrees,
 * and sleeps inside blocking regions holding a node only on its stack —
 * every store through GC_WRITE. Every node and leaf carries a checksum of
 * its identity and a payload derived from it; threads periodically walk
 * everything reachable and verify each one; with `checkmark`, the
 * collector re-marks after every cycle and aborts if marking missed a
 * reachable object. The test asserts that nothing reachable was damaged or
 * freed and that the run went through many cycles.
 *
 * The stop-the-world mode once lost objects here: a thread leaving a
 * safepoint read "no stop requested" and then stored RUNNING, and a stop
 * that began in between counted it stopped while it went on mutating
 * (threads.c, park). It lost them again, about once in 150 runs of
 * stoptheworld+checkmark on a loaded 2-CPU machine, when the count of
 * unswept spans came out one low and a cycle marked over a span that
 * was never swept (central.c, central_count_unswept); gccheckmark now
 * also checks before each mark that sweeping finished.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <pthread.h>
#include <stdbool.h>

#define THREADS              4
#define SLOTS                64
#define EDGES                4
#define MAX_NODES_PER_THREAD 20000
/* Leaves: pointer-free objects of 16..LEAF_MAX_BYTES bytes. */
#define LEAF_MAX_BYTES 512
#define LEAF_BIT       ((uint64_t)1 << 47)

struct node {
    uint64_t id;
    uint64_t check;
    struct node *edge[EDGES];
    uint64_t payload[3];
};

/* A leaf is a struct node prefix: id (with LEAF_BIT), check, then bytes
 * derived from the id up to its size, which the id encodes. */
struct leaf {
    uint64_t id;
    uint64_t check;
    unsigned char bytes[];
};

static struct node **slots[THREADS]; /* malloc'd rows, each a root */
static const gc_type *node_type;
static atomic_int failures;
static atomic_int stop;
static atomic_ulong total_ops, total_walks;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

struct worker {
    pthread_t th;
    int index;
    uint64_t rng;
    uint64_t next_id;
    char error[256];
};

static uint64_t next_random(struct worker *w)
{
    w->rng = w->rng * 6364136223846793005ull + 1442695040888963407ull;
    return w->rng >> 17;
}

static void record_failure(struct worker *w, const char *what,
                           const struct node *n)
{
    if (atomic_fetch_add(&failures, 1) == 0)
        snprintf(w->error, sizeof w->error, "thread %d: %s (node %p)", w->index,
                 what, (const void *)n);
}

static size_t leaf_size(uint64_t id)
{
    return 16 + (size_t)(mix(id) % (LEAF_MAX_BYTES - 15));
}

static unsigned char leaf_byte(uint64_t id, size_t i)
{
    return (unsigned char)(mix(id) >> (8 * (i % 8))) ^ (unsigned char)i;
}

static struct node *new_leaf(struct worker *w)
{
    uint64_t id = ((uint64_t)w->index << 48) | LEAF_BIT | w->next_id++;
    size_t size = leaf_size(id);
    struct leaf *l = gc_alloc_noscan(size);
    if (!l) {
        record_failure(w, "allocation failed", NULL);
        return NULL;
    }
    l->id = id;
    l->check = mix(id);
    for (size_t i = 0; i < size - sizeof *l; i++)
        l->bytes[i] = leaf_byte(id, i);
    return (struct node *)l;
}

static bool is_leaf(const struct node *n)
{
    return (n->id & LEAF_BIT) != 0;
}

static struct node *new_node(struct worker *w)
{
    struct node *n = (next_random(w) & 1)
                         ? gc_alloc(sizeof *n)
                         : gc_alloc_typed(sizeof *n, node_type);
    if (!n) {
        record_failure(w, "allocation failed", NULL);
        return NULL;
    }
    n->id = ((uint64_t)w->index << 48) | w->next_id++;
    n->check = mix(n->id);
    for (int i = 0; i < 3; i++)
        n->payload[i] = mix(n->id + (uint64_t)i + 1);
    return n;
}

static bool node_ok(const struct node *n, int owner)
{
    if (gc_base(n) != n || (int)(n->id >> 48) != owner ||
        n->check != mix(n->id))
        return false;
    if (is_leaf(n)) {
        const struct leaf *l = (const struct leaf *)n;
        size_t size = leaf_size(l->id);
        if (gc_size(l) < size)
            return false;
        for (size_t i = 0; i < size - sizeof *l; i++)
            if (l->bytes[i] != leaf_byte(l->id, i))
                return false;
        return true;
    }
    for (int i = 0; i < 3; i++)
        if (n->payload[i] != mix(n->id + (uint64_t)i + 1))
            return false;
    return true;
}

/* A random reachable node (never a leaf): a short random walk from a
 * random slot. */
static struct node *random_node(struct worker *w)
{
    struct node *n = slots[w->index][next_random(w) % SLOTS];
    for (int steps = (int)(next_random(w) % 6); n && steps > 0; steps--) {
        if (is_leaf(n))
            break;
        struct node *next = n->edge[next_random(w) % EDGES];
        if (!next)
            break;
        n = next;
    }
    return n && !is_leaf(n) ? n : NULL;
}

/* ---- verification walk: DFS with a visited set ------------------------- */

struct visited {
    const struct node **items;
    size_t capacity, count;
};

static bool visit_once(struct visited *v, const struct node *n)
{
    if ((v->count + 1) * 2 > v->capacity) {
        size_t cap = v->capacity ? v->capacity * 2 : 4096;
        const struct node **items = calloc(cap, sizeof *items);
        if (!items)
            abort();
        for (size_t i = 0; i < v->capacity; i++) {
            const struct node *x = v->items[i];
            if (!x)
                continue;
            size_t j = mix((uintptr_t)x) & (cap - 1);
            while (items[j])
                j = (j + 1) & (cap - 1);
            items[j] = x;
        }
        free(v->items);
        v->items = items;
        v->capacity = cap;
    }
    size_t j = mix((uintptr_t)n) & (v->capacity - 1);
    while (v->items[j]) {
        if (v->items[j] == n)
            return false;
        j = (j + 1) & (v->capacity - 1);
    }
    v->items[j] = n;
    v->count++;
    return true;
}

/* Walk and verify the thread's graph; returns the number of nodes. */
static size_t walk(struct worker *w)
{
    struct visited v = {0};
    size_t depth = 0, capacity = 1024;
    const struct node **stack = malloc(capacity * sizeof *stack);
    if (!stack)
        abort();
    for (int s = 0; s < SLOTS; s++)
        if (slots[w->index][s])
            stack[depth++] = slots[w->index][s];
    while (depth) {
        const struct node *n = stack[--depth];
        if (!visit_once(&v, n))
            continue;
        if (!node_ok(n, w->index)) {
            record_failure(w, "a reachable node was damaged or freed", n);
            break;
        }
        if (is_leaf(n))
            continue;
        for (int e = 0; e < EDGES; e++) {
            if (!n->edge[e])
                continue;
            if (depth == capacity) {
                capacity *= 2;
                stack = realloc(stack, capacity * sizeof *stack);
                if (!stack)
                    abort();
            }
            stack[depth++] = n->edge[e];
        }
    }
    free(stack);
    free(v.items);
    atomic_fetch_add(&total_walks, 1);
    return v.count;
}

/* ---- mutations ------------------------------------------------------------
 */

static NOINLINE void hold_across_blocking(struct worker *w)
{
    /* The only reference is on this stack while we block: the collector
     * scans the blocked stack (and gc_blocking_end waits for that scan). */
    struct node *n = new_node(w);
    if (!n)
        return;
    gc_blocking_begin();
    usleep(200);
    gc_blocking_end();
    if (!node_ok(n, w->index))
        record_failure(w, "a node held only on a blocked stack was lost", n);
    GC_WRITE(slots[w->index][next_random(w) % SLOTS], n);
}

static void mutate(struct worker *w)
{
    unsigned op = (unsigned)(next_random(w) % 100);
    struct node **row = slots[w->index];
    if (op < 40) { /* allocate and link */
        struct node *n = (op % 4 == 0) ? new_leaf(w) : new_node(w);
        if (!n)
            return;
        struct node *at = random_node(w);
        if (at && (op & 1))
            GC_WRITE(at->edge[next_random(w) % EDGES], n);
        else
            GC_WRITE(row[next_random(w) % SLOTS], n);
    } else if (op < 55) { /* unlink */
        struct node *x = random_node(w);
        if (x)
            GC_WRITE(x->edge[next_random(w) % EDGES], NULL);
    } else if (op < 70) { /* move a pointer between reachable nodes */
        struct node *x = random_node(w), *y = random_node(w);
        if (x && y) {
            unsigned j = (unsigned)(next_random(w) % EDGES);
            GC_WRITE(x->edge[next_random(w) % EDGES], y->edge[j]);
            GC_WRITE(y->edge[j], NULL);
        }
    } else if (op < 75) { /* ...holding it only in a local meanwhile */
        struct node *y = random_node(w);
        if (y) {
            unsigned j = (unsigned)(next_random(w) % EDGES);
            struct node *held = y->edge[j];
            GC_WRITE(y->edge[j], NULL);
            struct node *fresh = new_node(w); /* may run a whole cycle */
            struct node *x = random_node(w);
            if (fresh && x) {
                GC_WRITE(fresh->edge[0], held);
                GC_WRITE(x->edge[next_random(w) % EDGES], fresh);
            } else if (held && !node_ok(held, w->index)) {
                record_failure(w, "a node held in a local was lost", held);
            }
        }
    } else if (op < 85) { /* cross link (cycles, shared subgraphs) */
        struct node *x = random_node(w), *y = random_node(w);
        if (x && y)
            GC_WRITE(x->edge[next_random(w) % EDGES], y);
    } else if (op < 90) { /* bulk copy of an edge array */
        struct node *x = random_node(w), *y = random_node(w);
        if (x && y && x != y)
            gc_memmove(x->edge, y->edge, sizeof x->edge);
    } else if (op < 97) { /* drop a subtree */
        GC_WRITE(row[next_random(w) % SLOTS], NULL);
    } else if (op == 97 && next_random(w) % 64 == 0) {
        hold_across_blocking(w);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    unsigned long ops = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed) &&
           atomic_load(&failures) == 0) {
        mutate(w);
        if (++ops % 20000 == 0 && walk(w) > MAX_NODES_PER_THREAD)
            for (int s = 0; s < SLOTS / 2; s++) /* keep the heap bounded */
                GC_WRITE(slots[w->index][next_random(w) % SLOTS], NULL);
    }
    walk(w);
    atomic_fetch_add(&total_ops, ops);
    return NULL;
}

static void test_graph_stress(void **state)
{
    (void)state;
    const size_t offsets[] = {
        offsetof(struct node, edge[0]), offsetof(struct node, edge[1]),
        offsetof(struct node, edge[2]), offsetof(struct node, edge[3])};
    node_type = gc_type_new(sizeof(struct node), offsets, EDGES);
    CHECK(node_type != NULL, "gc_type_new");
    for (int i = 0; i < THREADS; i++) {
        slots[i] = calloc(SLOTS, sizeof *slots[i]);
        CHECK(slots[i] != NULL, "calloc");
        CHECK(gc_root_add(slots[i], SLOTS * sizeof *slots[i]) == 0,
              "gc_root_add");
    }

    struct worker workers[THREADS];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < THREADS; i++) {
        workers[i].index = i;
        workers[i].rng = mix((uint64_t)i + 1);
        CHECK(pthread_create(&workers[i].th, NULL, worker_main, &workers[i]) ==
                  0,
              "pthread_create");
    }
    /* Run until enough cycles went by, within a time bound. */
    gc_stats s;
    gc_read_stats(&s);
    uint32_t first = s.num_gc;
    uint32_t want = (uint32_t)scaled(300, 40);
    uint64_t start = mono_ns(), limit = 60ull * 1000000000ull;
    while (mono_ns() - start < limit && atomic_load(&failures) == 0) {
        gc_blocking_begin();
        usleep(20000);
        gc_blocking_end();
        gc_read_stats(&s);
        if (s.num_gc - first >= want && mono_ns() - start > 2000000000ull)
            break;
    }
    atomic_store(&stop, 1);
    gc_blocking_begin();
    for (int i = 0; i < THREADS; i++)
        pthread_join(workers[i].th, NULL);
    gc_blocking_end();
    gc_read_stats(&s);
    for (int i = 0; i < THREADS; i++)
        CHECK(workers[i].error[0] == 0, "%s", workers[i].error);
    CHECK(atomic_load(&failures) == 0, "%d failures", atomic_load(&failures));
    CHECK(s.num_gc - first >= want,
          "only %u cycles in %.1f s (wanted %u): the test proves less than "
          "it should",
          s.num_gc - first, (double)(mono_ns() - start) / 1e9, want);
    print_message("%u cycles, %lu mutations, %lu verification walks, "
                  "longest pause %.3f ms\n",
                  s.num_gc - first, (unsigned long)atomic_load(&total_ops),
                  (unsigned long)atomic_load(&total_walks),
                  (double)s.pause_max_ns / 1e6);
    for (int i = 0; i < THREADS; i++) {
        CHECK(gc_root_remove(slots[i]) == 0, "gc_root_remove");
        free(slots[i]);
    }
}

int main(int argc, char **argv)
{
    bool stop_the_world = argc > 1 && strcmp(argv[1], "stoptheworld") == 0;
    bool checkmark = argc > 2 && strcmp(argv[2], "checkmark") == 0;
    if (argc < 2 || (!stop_the_world && strcmp(argv[1], "concurrent")) ||
        (argc > 2 && !checkmark)) {
        fprintf(stderr, "usage: %s concurrent|stoptheworld [checkmark]\n",
                argv[0]);
        return 2;
    }
    /* Before the collector starts: the mode, and cycle often. */
    char debug[64];
    snprintf(debug, sizeof debug, "gcstoptheworld=%d,gccheckmark=%d",
             stop_the_world, checkmark);
    setenv("CGC_DEBUG", debug, 1);
    setenv("CGC_PERCENT", "5", 1);
    print_message("mode: CGC_DEBUG=%s\n", debug);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
