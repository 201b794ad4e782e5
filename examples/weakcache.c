/*
 * weakcache.c — a weak-keyed table (a JavaScript-style WeakMap) built on
 * ephemerons: data attached to objects the table does not own, which goes
 * away with them.
 *
 * The table maps a key object to a value through an ephemeron per entry:
 * the value lives as long as its key does, even though the value points
 * back at the key, and an entry whose key died reads NULL and is pruned.
 * The program attaches a "description" to 10 000 shapes, drops half of the
 * shapes, collects, and shows that exactly their entries disappeared.
 */
#include <cgc.h>

#include <stdio.h>
#include <string.h>

struct shape {
    int id;
    double area;
};

struct description { /* points back at its key: still collectable */
    struct shape *shape;
    char text[32];
};

#define BUCKETS 1024

/* A chained hash table of ephemerons; the table itself is a GC object
 * reachable from a global root. */
struct entry {
    struct entry *next;
    gc_ephemeron *eph; /* key: a shape, value: its description */
};

static struct entry **table;

static size_t bucket_of(const void *key)
{
    return ((uintptr_t)key >> 4) % BUCKETS;
}

static void weakmap_set(struct shape *key, struct description *value)
{
    struct entry *e = gc_alloc(sizeof *e);
    gc_ephemeron *eph = gc_ephemeron_new(key, value);
    if (!e || !eph) {
        perror("weakmap_set");
        return;
    }
    GC_WRITE(e->eph, eph);
    size_t b = bucket_of(key);
    GC_WRITE(e->next, table[b]);
    GC_WRITE(table[b], e);
}

static struct description *weakmap_get(const struct shape *key)
{
    for (struct entry *e = table[bucket_of(key)]; e; e = e->next)
        if (gc_ephemeron_key(e->eph) == key)
            return gc_ephemeron_value(e->eph);
    return NULL;
}

/* Unlink the entries whose key died; returns how many are left. */
static size_t weakmap_prune(void)
{
    size_t live = 0;
    for (size_t b = 0; b < BUCKETS; b++) {
        struct entry **at = &table[b];
        while (*at) {
            if (gc_ephemeron_key((*at)->eph)) {
                live++;
                at = &(*at)->next;
            } else {
                GC_WRITE(*at, (*at)->next);
            }
        }
    }
    return live;
}

int main(void)
{
    enum { SHAPES = 10000 };
    table = gc_alloc(BUCKETS * sizeof *table);
    struct shape **shapes = gc_alloc(SHAPES * sizeof *shapes);
    if (!table || !shapes)
        return 1;
    GC_ROOT(table); /* globals are scanned anyway; registering is harmless */
    for (int i = 0; i < SHAPES; i++) {
        struct shape *s = gc_alloc(sizeof *s);
        struct description *d = gc_alloc(sizeof *d);
        s->id = i;
        s->area = i * 0.5;
        GC_WRITE(d->shape, s);
        snprintf(d->text, sizeof d->text, "shape %d", i);
        GC_WRITE(shapes[i], s);
        weakmap_set(s, d);
    }
    printf("entries: %zu\n", weakmap_prune());
    struct description *d = weakmap_get(shapes[42]);
    printf("shapes[42] -> \"%s\"\n", d ? d->text : "(none)");

    /* The program forgets the odd shapes: their descriptions go too. */
    for (int i = 1; i < SHAPES; i += 2)
        GC_WRITE(shapes[i], NULL);
    gc_collect();
    gc_collect();
    size_t left = weakmap_prune();
    printf("after dropping %d shapes: %zu entries\n", SHAPES / 2, left);
    d = weakmap_get(shapes[42]);
    printf("shapes[42] -> \"%s\"\n", d ? d->text : "(none)");
    gc_keep_alive(shapes);
    /* Conservative stack scanning may keep an odd shape or two. */
    return left >= SHAPES / 2 && left <= SHAPES / 2 + 8 ? 0 : 1;
}
