/*
 * workers.c — several threads building and dropping trees on the GC heap at
 * once. Threads attach automatically on their first allocation and detach
 * when they exit; the main thread waits for them inside a blocking region so
 * that collections never wait for it.
 */
#include <cgc.h>
#include <pthread.h>
#include <stdio.h>

#define THREADS 4

struct tree {
    struct tree *left, *right;
};

static struct tree *build(int depth)
{
    struct tree *t = gc_alloc(sizeof *t);
    if (!t)
        return NULL;
    if (depth > 0) {
        GC_WRITE(t->left, build(depth - 1));
        GC_WRITE(t->right, build(depth - 1));
    }
    return t;
}

static long count(const struct tree *t)
{
    return t ? 1 + count(t->left) + count(t->right) : 0;
}

static void *worker(void *arg)
{
    long *checked = arg;
    struct tree *keep = build(14); /* lives across the whole run */
    for (int round = 0; round < 40; round++)
        build(12); /* garbage at once */
    *checked = count(keep);
    return NULL;
}

int main(void)
{
    pthread_t threads[THREADS];
    long counts[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, worker, &counts[i]);
    gc_blocking_begin();
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    gc_blocking_end();
    int ok = 1;
    for (int i = 0; i < THREADS; i++) {
        printf("thread %d: %ld nodes survived (expected %ld)\n", i, counts[i],
               (1L << 15) - 1);
        ok &= counts[i] == (1L << 15) - 1;
    }
    gc_stats s;
    gc_read_stats(&s);
    printf("collections: %u, longest pause: %.3f ms\n", s.num_gc,
           (double)s.pause_max_ns / 1e6);
    return ok ? 0 : 1;
}
