/*
 * linkedlist.c — a linked structure on the GC heap: a list whose nodes are
 * linked with GC_WRITE, a root that holds its head, and garbage made by
 * dropping half of the list. Shows that what is reachable survives any
 * number of collections and what is dropped is reclaimed.
 */
#include <cgc.h>
#include <stdio.h>

struct node {
    struct node *next;
    long value;
};

/* Globals are scanned; main registers it as well, which keeps the example
 * correct with CGC_SCAN_GLOBALS=0. */
static struct node *list_head;

static void push(long value)
{
    struct node *n = gc_alloc(sizeof *n);
    if (!n) {
        perror("gc_alloc");
        return;
    }
    n->value = value;
    GC_WRITE(n->next, list_head);
    GC_WRITE(list_head, n);
}

/* Unlink every node with an odd value. */
static void drop_odd(void)
{
    while (list_head && list_head->value % 2)
        GC_WRITE(list_head, list_head->next);
    for (struct node *n = list_head; n && n->next;) {
        if (n->next->value % 2)
            GC_WRITE(n->next, n->next->next);
        else
            n = n->next;
    }
}

static long sum(void)
{
    long total = 0;
    for (struct node *n = list_head; n; n = n->next)
        total += n->value;
    return total;
}

int main(void)
{
    GC_ROOT(list_head);
    for (long i = 1; i <= 1000000; i++)
        push(i);
    gc_stats before, after;
    gc_read_stats(&before);
    drop_odd();
    gc_collect();
    gc_read_stats(&after);
    printf("sum of the even values: %ld (expected %ld)\n", sum(),
           500001L * 500000L);
    printf("objects before/after dropping the odd half: %llu / %llu\n",
           (unsigned long long)before.heap_objects,
           (unsigned long long)after.heap_objects);
    printf("collections: %u\n", after.num_gc);
    return sum() == 500001L * 500000L ? 0 : 1;
}
