/*
 * gcbench.c — the Ellis/Kovac/Boehm "GCBench" allocation benchmark.
 *
 * Keeps a long-lived binary tree and a large array of doubles alive while
 * building many short-lived complete binary trees of growing depth, both
 * top-down (allocate a node, then fill in its children) and bottom-up
 * (children first). The top-down case stores pointers into older objects
 * and so exercises the write barrier; the bottom-up case mostly does not.
 *
 * The classic sizes finish in a fraction of a second on current hardware,
 * too short to see more than a few collections, so --scale N multiplies the
 * number of temporary trees built at every depth while keeping the live
 * heap of the original (tree depth 16, 500000 doubles).
 *
 * With the malloc backend every temporary tree is freed explicitly once it
 * is dropped, as a C program without a collector would.
 */
#include "backend.h"
#include "benchutil.h"

#include <stdio.h>

typedef struct node node;
struct node {
    node *left;
    node *right;
    int i, j;
};

static node *new_node(node *l, node *r)
{
    node *n = bk_alloc(sizeof *n);
    if (!n)
        bu_die("gcbench: out of memory");
    BK_STORE(n->left, l);
    BK_STORE(n->right, r);
    n->i = 0;
    n->j = 0;
    return n;
}

/* Nodes in a complete tree of depth d. */
static long tree_size(int d)
{
    return (1L << (d + 1)) - 1;
}

/* Top-down: the node exists before its children, so each child pointer is
 * a store into an older object. */
static void populate(int depth, node *n)
{
    if (depth <= 0)
        return;
    depth--;
    BK_STORE(n->left, new_node(NULL, NULL));
    BK_STORE(n->right, new_node(NULL, NULL));
    populate(depth, n->left);
    populate(depth, n->right);
}

/* Bottom-up: children first, the parent is created pointing at them. */
static node *make_tree(int depth)
{
    if (depth <= 0)
        return new_node(NULL, NULL);
    node *l = make_tree(depth - 1);
    node *r = make_tree(depth - 1);
    return new_node(l, r);
}

/* Only the malloc build frees; for the collectors bk_free is a no-op, but
 * walking the tree would still cost time, so skip the walk entirely. */
static void free_tree(node *n)
{
#if BK_IS_GC
    (void)n;
#else
    if (!n)
        return;
    free_tree(n->left);
    free_tree(n->right);
    bk_free(n);
#endif
}

static long count_nodes(const node *n)
{
    if (!n)
        return 0;
    return 1 + count_nodes(n->left) + count_nodes(n->right);
}

struct params {
    int stretch_depth;
    int long_depth;
    int min_depth;
    int max_depth;
    long array_size;
    long scale;
};

static void time_construction(const struct params *p, int depth)
{
    long iters = 2 * tree_size(p->stretch_depth) / tree_size(depth) * p->scale;
    uint64_t t0, t1;

    printf("Creating %ld trees of depth %d\n", iters, depth);

    t0 = bu_now_ns();
    for (long i = 0; i < iters; i++) {
        node *tmp = new_node(NULL, NULL);
        populate(depth, tmp);
        free_tree(tmp);
    }
    t1 = bu_now_ns();
    printf("\tTop down construction took %.1f msec\n", (t1 - t0) / 1e6);

    t0 = bu_now_ns();
    for (long i = 0; i < iters; i++) {
        node *tmp = make_tree(depth);
        free_tree(tmp);
    }
    t1 = bu_now_ns();
    printf("\tBottom up construction took %.1f msec\n", (t1 - t0) / 1e6);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: gcbench [--scale N] [--stretch-depth D] [--long-depth D]\n"
            "               [--min-depth D] [--max-depth D] [--array-size N]\n"
            "  --scale N  build N times as many temporary trees as the\n"
            "             classic GCBench (default 10)\n"
            "  classic sizes: stretch 18, long-lived 16, depths 4..16,\n"
            "  500000 doubles (at least 2002)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t start = bu_now_ns();
    struct params p = {18, 16, 4, 16, 500000, 10};

    for (int i = 1; i < argc; i++) {
        long v;
        if (bu_opt_long(argc, argv, &i, "--scale", &v))
            p.scale = v;
        else if (bu_opt_long(argc, argv, &i, "--stretch-depth", &v))
            p.stretch_depth = (int)v;
        else if (bu_opt_long(argc, argv, &i, "--long-depth", &v))
            p.long_depth = (int)v;
        else if (bu_opt_long(argc, argv, &i, "--min-depth", &v))
            p.min_depth = (int)v;
        else if (bu_opt_long(argc, argv, &i, "--max-depth", &v))
            p.max_depth = (int)v;
        else if (bu_opt_long(argc, argv, &i, "--array-size", &v))
            p.array_size = v;
        else
            usage();
    }
    /* The final check reads array[1000], which must lie in the half of the
     * array that is filled, hence the minimum array size. */
    if (p.scale < 1 || p.stretch_depth < 1 || p.stretch_depth > 30 ||
        p.long_depth < 0 || p.long_depth > 30 || p.min_depth < 0 ||
        p.max_depth > 30 || p.min_depth > p.max_depth ||
        p.max_depth > p.stretch_depth || p.array_size < 2002)
        usage();

    bk_init();

    printf("Garbage Collector Test (backend %s, scale %ld)\n", BK_NAME,
           p.scale);
    printf(" Live storage will peak at %ld bytes.\n\n",
           2 * (long)sizeof(node) * tree_size(p.long_depth) +
               (long)sizeof(double) * p.array_size);
    printf(" Stretching memory with a binary tree of depth %d\n",
           p.stretch_depth);

    /* Stretch the heap first so that later phases do not pay for growing
     * it from nothing. */
    node *tmp = make_tree(p.stretch_depth);
    free_tree(tmp);
    tmp = NULL;

    printf(" Creating a long-lived binary tree of depth %d\n", p.long_depth);
    node *long_lived = new_node(NULL, NULL);
    populate(p.long_depth, long_lived);

    printf(" Creating a long-lived array of %ld doubles\n", p.array_size);
    double *array = bk_alloc_noscan(sizeof(double) * (size_t)p.array_size);
    if (!array)
        bu_die("gcbench: out of memory");
    for (long i = 0; i < p.array_size / 2; i++)
        array[i] = 1.0 / (double)i;
    for (long i = p.array_size / 2; i < p.array_size; i++)
        array[i] = 0.0;

    for (int d = p.min_depth; d <= p.max_depth; d += 2)
        time_construction(&p, d);

    /* The long-lived data must have survived every collection intact. */
    long n = count_nodes(long_lived);
    if (n != tree_size(p.long_depth) || array[1000] != 1.0 / 1000) {
        fprintf(stderr,
                "gcbench: FAILED: long-lived tree has %ld nodes (want %ld),"
                " array[1000] = %g\n",
                n, tree_size(p.long_depth), array[1000]);
        return 1;
    }

    uint64_t end = bu_now_ns();
    struct bk_gc_info gi;
    bk_gc_since(0, &gi);
    printf("Completed in %.3f s\n", (end - start) / 1e9);

    bu_result_begin("gcbench", BK_NAME);
    bu_result_long("scale", p.scale);
    bu_result_double("wall_s", (end - start) / 1e9, 3);
    bu_result_long("maxrss_kb", bu_maxrss_kb());
    bk_result_gc(&gi);
    bu_result_end();
    return 0;
}
