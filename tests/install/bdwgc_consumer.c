/*
 * bdwgc_consumer.c — a program written for the Boehm collector, built
 * against the installed cgc-bdwgc package (pkg-config cgc-bdwgc): it
 * compiles, links (the library's rpath comes from the .pc file) and runs.
 */
#include <gc.h>

#include <stdio.h>
#include <string.h>

struct cell {
    struct cell *next;
    int value;
};

int main(void)
{
    GC_INIT();
    struct cell *list = NULL;
    for (int i = 0; i < 100000; i++) {
        struct cell *c = GC_NEW(struct cell);
        if (!c)
            return 1;
        c->value = i;
        c->next = i % 1000 == 0 ? NULL : list; /* drop the list now and then */
        list = c;
    }
    GC_gcollect();
    int n = 0;
    for (struct cell *c = list; c; c = c->next)
        n++;
    char *s = GC_STRDUP("bdwgc consumer");
    if (n != 1000 || !s || strcmp(s, "bdwgc consumer") != 0 ||
        GC_get_gc_no() == 0) {
        fprintf(stderr, "bdwgc consumer: list of %d cells, %lu collections\n",
                n, GC_get_gc_no());
        return 1;
    }
    printf("bdwgc consumer ok: %lu collections\n", GC_get_gc_no());
    return 0;
}
