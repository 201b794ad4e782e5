/* consumer.c — links against an installed cgc and checks that it works:
 * a list survives a collection, its garbage is reclaimed. Exit 0 on success. */
#include <cgc.h>
#include <stdio.h>

struct node {
    struct node *next;
};

static struct node *head;

int main(void)
{
    GC_ROOT(head);
    for (int i = 0; i < 100000; i++) {
        struct node *n = gc_alloc(sizeof *n);
        if (!n)
            return 1;
        GC_WRITE(n->next, head);
        GC_WRITE(head, n);
    }
    gc_collect();
    int count = 0;
    for (struct node *n = head; n; n = n->next)
        count++;
    gc_stats s;
    gc_read_stats(&s);
    printf("consumer: %d nodes, %u collections\n", count, s.num_gc);
    return count == 100000 && s.num_gc > 0 ? 0 : 1;
}
