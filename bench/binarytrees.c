/*
 * binarytrees.c — the Computer Language Benchmarks Game "binary-trees"
 * program, for comparing allocators on a pure allocate-and-drop workload.
 *
 * Builds a "stretch" tree of depth max+1, keeps a long-lived tree of depth
 * max for the whole run, and for every depth d = 4, 6, ..., max builds and
 * checks 2^(max - d + 4) trees of depth d. Nodes are two pointers (16
 * bytes), the smallest interesting object. Each depth level's trees are
 * split across --threads threads (the main thread takes the first share),
 * so with 2 threads the allocator is exercised concurrently.
 *
 * The check values are known in closed form, so a collector that frees a
 * live node shows up as a FAILED line and a non-zero exit, not just as a
 * fast time. With the malloc backend every tree is freed once checked.
 *
 * Usage: binarytrees [--depth N | N] [--threads T]   (defaults 21, 1)
 */
#include "backend.h"
#include "benchutil.h"

#include <stdio.h>

typedef struct node node;
struct node {
    node *left;
    node *right;
};

static node *bottom_up(int depth)
{
    node *n = bk_alloc(sizeof *n);
    if (!n)
        bu_die("binarytrees: out of memory");
    if (depth > 0) {
        /* Children are built before being stored, as in the original; the
         * parent is already allocated, so these are barriered stores. */
        node *l = bottom_up(depth - 1);
        node *r = bottom_up(depth - 1);
        BK_STORE(n->left, l);
        BK_STORE(n->right, r);
    } else {
        BK_STORE(n->left, NULL);
        BK_STORE(n->right, NULL);
    }
    return n;
}

static long item_check(const node *n)
{
    if (!n->left)
        return 1;
    return 1 + item_check(n->left) + item_check(n->right);
}

static void free_tree(node *n)
{
#if BK_IS_GC
    (void)n; /* dropped; the collector reclaims it */
#else
    if (n->left) {
        free_tree(n->left);
        free_tree(n->right);
    }
    bk_free(n);
#endif
}

static long expected_check(int depth)
{
    return (1L << (depth + 1)) - 1;
}

struct job {
    int depth;
    long iters;
    long check;
    pthread_t tid;
};

static void *run_job(void *arg)
{
    struct job *j = arg;
    long check = 0;
    for (long i = 0; i < j->iters; i++) {
        node *t = bottom_up(j->depth);
        check += item_check(t);
        free_tree(t);
    }
    j->check = check;
    return NULL;
}

#define MAX_THREADS 64

int main(int argc, char **argv)
{
    uint64_t start = bu_now_ns();
    long depth_arg = 21, nthreads = 1;
    int failed = 0;

    for (int i = 1; i < argc; i++) {
        if (bu_opt_long(argc, argv, &i, "--depth", &depth_arg) ||
            bu_opt_long(argc, argv, &i, "--threads", &nthreads))
            continue;
        char *end;
        long v = strtol(argv[i], &end, 10);
        if (end != argv[i] && *end == '\0') {
            depth_arg = v; /* the benchmarks-game positional form */
            continue;
        }
        bu_die("usage: binarytrees [--depth N | N] [--threads T]");
    }
    if (depth_arg < 0 || depth_arg > 30 || nthreads < 1 ||
        nthreads > MAX_THREADS)
        bu_die("binarytrees: depth must be 0..30, threads 1..%d", MAX_THREADS);

    bk_init();

    const int min_depth = 4;
    const int max_depth =
        (int)(depth_arg < min_depth + 2 ? min_depth + 2 : depth_arg);

    {
        int d = max_depth + 1;
        node *stretch = bottom_up(d);
        long c = item_check(stretch);
        printf("stretch tree of depth %d\t check: %ld\n", d, c);
        if (c != expected_check(d))
            failed = 1;
        free_tree(stretch);
    }

    node *long_lived = bottom_up(max_depth);

    for (int d = min_depth; d <= max_depth; d += 2) {
        long iters = 1L << (max_depth - d + min_depth);
        struct job jobs[MAX_THREADS];
        for (long t = 0; t < nthreads; t++) {
            jobs[t].depth = d;
            jobs[t].iters = iters * (t + 1) / nthreads - iters * t / nthreads;
            jobs[t].check = 0;
        }
        for (long t = 1; t < nthreads; t++)
            if (bk_thread_create(&jobs[t].tid, run_job, &jobs[t]) != 0)
                bu_die("binarytrees: cannot create a thread");
        run_job(&jobs[0]);
        long check = jobs[0].check;
        for (long t = 1; t < nthreads; t++) {
            bk_thread_join(jobs[t].tid, NULL);
            check += jobs[t].check;
        }
        printf("%ld\t trees of depth %d\t check: %ld\n", iters, d, check);
        if (check != iters * expected_check(d))
            failed = 1;
    }

    long c = item_check(long_lived);
    printf("long lived tree of depth %d\t check: %ld\n", max_depth, c);
    if (c != expected_check(max_depth))
        failed = 1;
    if (failed) {
        fprintf(stderr, "binarytrees: FAILED: a check value is wrong\n");
        return 1;
    }

    uint64_t end = bu_now_ns();
    struct bk_gc_info gi;
    bk_gc_since(0, &gi);

    bu_result_begin("binarytrees", BK_NAME);
    bu_result_long("threads", nthreads);
    bu_result_long("depth", max_depth);
    bu_result_double("wall_s", (end - start) / 1e9, 3);
    bu_result_long("maxrss_kb", bu_maxrss_kb());
    bk_result_gc(&gi);
    bu_result_end();
    return 0;
}
