/*
 * links.c — bdwgc's disappearing links and long links.
 *
 * A link is a word of the program's (*link) that the collector sets to NULL
 * when an object dies. The program reads it with a plain load, with no read
 * barrier, so cgc's weak handles (cleared by the sweeper, and correct only
 * because gc_weak_get looks at mark bits) cannot be used: the word must be
 * NULL before any thread can load the dead object's address from it. So the
 * links are cleared by a hook (weak_set_mark_done_hook) that the collector
 * thread calls with the world stopped, once marking is complete and before
 * the sweep generation flips, as bdwgc clears its links with the world
 * stopped after marking. A thread that loaded the address before the stop
 * holds it in a register or on its stack, which the mark scanned, so the
 * object was marked and the link is kept; one that loads after the restart
 * reads NULL. (This holds for the default stop-the-world marking; with
 * CGC_DEBUG=gcstoptheworld=0 a load during concurrent marking is not
 * shaded, see gc.h.)
 *
 * At the hook, with o the link's object:
 *   - a disappearing (short) link is cleared if o is unmarked, even if o
 *     has a finalizer that this cycle's sweep will queue (and may
 *     resurrect it);
 *   - a long link is cleared only if o is unmarked and has no finalizer:
 *     its memory is then freed by this cycle's sweep. An object with a
 *     finalizer is unmarked at the first such hook, queued and kept by the
 *     sweep, marked as a root until its finalizer has run, and cleared at
 *     the first hook after that which finds it unmarked again.
 * Either way the entry is then dropped: a link fires once.
 *
 * Where the link word lives: static data or malloc memory (written
 * whenever it fires), or a GC object, its container. A container that
 * dies in the same cycle (unmarked, no finalizer) is not written and its
 * entry is dropped, so no word of freed memory is ever written; a
 * container unmarked but with a finalizer is kept and written. As in
 * bdwgc, a link must not be on a stack, and a container or an object freed
 * with GC_free must be unregistered first (its memory is reused at once).
 *
 * The tables: two open-addressed hash tables (short, long) keyed by the
 * link's address, in malloc memory that is not a root, holding the object
 * hidden (GC_HIDE_POINTER), so they keep nothing alive. Every field is
 * under `lock`. Mutators take it only inside cgc's library region
 * (threads_enter_library), where the world is never stopped, so the hook,
 * which runs with the world stopped, never waits for a stopped thread
 * (unattached threads are never stopped). The hook neither allocates nor
 * frees (a stopped thread may hold malloc's lock): it leaves tombstones,
 * which registration purges when it rehashes. For the same reason a fork
 * finds the lock free (cgc's fork waits for threads inside the library),
 * except if an unattached thread held it at that instant.
 */
#include "bdwgc.h"

#include "finalize.h"
#include "threads.h"
#include "weak.h"

#include <cgc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define EMPTY     ((uintptr_t)0)
#define TOMBSTONE ((uintptr_t)1) /* links are word-aligned: never 1 */

struct entry {
    uintptr_t link; /* EMPTY, TOMBSTONE or the link's address */
    GC_word hidden; /* GC_HIDE_POINTER(obj) */
};

struct table {
    struct entry *slots; /* malloc'd, cap entries; NULL while cap is 0 */
    size_t cap;          /* 0 or a power of two */
    size_t live;         /* entries holding a link */
    size_t used;         /* live plus tombstones */
    bool is_long;        /* long links: finalization must be over */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct table short_links, long_links = {.is_long = true};

static size_t hash(uintptr_t link, size_t cap)
{
    uint64_t h = (uint64_t)(link >> 3) * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & (cap - 1);
}

/* The slot holding link, or NULL. */
static struct entry *find_locked(struct table *t, uintptr_t link)
{
    if (!t->cap)
        return NULL;
    for (size_t i = hash(link, t->cap);; i = (i + 1) & (t->cap - 1)) {
        struct entry *e = &t->slots[i];
        if (e->link == link)
            return e;
        if (e->link == EMPTY)
            return NULL;
    }
}

static void put_locked(struct table *t, uintptr_t link, GC_word hidden)
{
    size_t i = hash(link, t->cap);
    while (t->slots[i].link != EMPTY && t->slots[i].link != TOMBSTONE)
        i = (i + 1) & (t->cap - 1);
    if (t->slots[i].link == EMPTY)
        t->used++;
    t->slots[i] = (struct entry){link, hidden};
    t->live++;
}

/* Room for one more entry (at most 3/4 used), rehashing without the
 * tombstones. false if memory ran out. */
static bool reserve_locked(struct table *t)
{
    if (t->cap && (t->used + 1) * 4 <= t->cap * 3)
        return true;
    size_t cap = t->cap ? t->cap : 16;
    while ((t->live + 1) * 2 > cap)
        cap *= 2;
    struct entry *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    struct table old = *t;
    t->slots = slots;
    t->cap = cap;
    t->live = t->used = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].link != EMPTY && old.slots[i].link != TOMBSTONE)
            put_locked(t, old.slots[i].link, old.slots[i].hidden);
    free(old.slots);
    return true;
}

static void drop_locked(struct table *t, struct entry *e)
{
    e->link = TOMBSTONE;
    e->hidden = 0;
    t->live--;
}

/* ---- the hook: world stopped, marking complete ---------------------------
 */

/* Whether marking found the object at (or containing) p dead for good:
 * this cycle's sweep frees it (finalizer_keeps: unless a finalizer makes
 * the sweep keep it). */
static bool dies(uintptr_t p, bool finalizer_keeps)
{
    uintptr_t base = 0;
    switch (weak_liveness_stopped(p, &base)) {
    case WEAK_MARKED:
        return false;
    case WEAK_UNMARKED:
        return !(finalizer_keeps && finalize_has_finalizer(base));
    case WEAK_FREE:
        return true;
    case WEAK_NOT_HEAP:
        break;
    }
    return false; /* not a GC object: never dies (for a container) */
}

static void sweep_table_stopped(struct table *t)
{
    for (size_t i = 0; i < t->cap && t->live; i++) {
        struct entry *e = &t->slots[i];
        if (e->link == EMPTY || e->link == TOMBSTONE)
            continue;
        uintptr_t obj = (uintptr_t)GC_REVEAL_POINTER(e->hidden);
        uintptr_t base = 0;
        bool in_heap = weak_liveness_stopped(e->link, &base) != WEAK_NOT_HEAP;
        /* The container: does its memory go back this cycle? A container
         * with a finalizer is kept by the sweep, so it may be written. */
        bool container_dies = in_heap && dies(e->link, true);
        bool obj_dies = weak_liveness_stopped(obj, &base) == WEAK_NOT_HEAP ||
                        dies(obj, t->is_long);
        if (obj_dies && !container_dies) {
            /* World stopped: every thread sees NULL once it restarts (the
             * restart orders this store before their loads). */
            *(void **)e->link = NULL;
        }
        if (obj_dies || container_dies)
            drop_locked(t, e);
    }
}

static void links_mark_done(void)
{
    pthread_mutex_lock(&lock);
    sweep_table_stopped(&short_links);
    sweep_table_stopped(&long_links);
    pthread_mutex_unlock(&lock);
}

/* ---- the API --------------------------------------------------------------
 */

static void check_link(void **link, const char *fn)
{
    if (!link || ((uintptr_t)link & (sizeof(void *) - 1))) {
        fprintf(stderr, "cgc-bdwgc: bad link %p passed to %s\n", (void *)link,
                fn);
        abort();
    }
}

static int register_link(struct table *t, void **link, const void *obj)
{
    bdwgc_ensure_init();
    weak_set_mark_done_hook(links_mark_done);
    struct gc_thread *self = threads_enter_library();
    pthread_mutex_lock(&lock);
    int result = GC_SUCCESS;
    if (find_locked(t, (uintptr_t)link))
        result = GC_DUPLICATE;
    else if (!reserve_locked(t))
        result = GC_NO_MEMORY;
    else
        put_locked(t, (uintptr_t)link, GC_HIDE_POINTER(obj));
    pthread_mutex_unlock(&lock);
    threads_leave_library(self);
    return result;
}

static int unregister_link(struct table *t, void **link)
{
    if (!link || ((uintptr_t)link & (sizeof(void *) - 1)))
        return 0;
    struct gc_thread *self = threads_enter_library();
    pthread_mutex_lock(&lock);
    struct entry *e = find_locked(t, (uintptr_t)link);
    if (e)
        drop_locked(t, e);
    pthread_mutex_unlock(&lock);
    threads_leave_library(self);
    return e != NULL;
}

static int move_link(struct table *t, void **link, void **new_link,
                     const char *fn)
{
    check_link(new_link, fn);
    if (!link || ((uintptr_t)link & (sizeof(void *) - 1)))
        return GC_NOT_FOUND;
    struct gc_thread *self = threads_enter_library();
    pthread_mutex_lock(&lock);
    int result = GC_SUCCESS;
    struct entry *e = find_locked(t, (uintptr_t)link);
    if (!e)
        result = GC_NOT_FOUND;
    else if (new_link == link)
        result = GC_SUCCESS;
    else if (find_locked(t, (uintptr_t)new_link))
        result = GC_DUPLICATE;
    else {
        /* Same table size: dropping one entry makes room for the other. */
        GC_word hidden = e->hidden;
        drop_locked(t, e);
        put_locked(t, (uintptr_t)new_link, hidden);
    }
    pthread_mutex_unlock(&lock);
    threads_leave_library(self);
    return result;
}

int GC_general_register_disappearing_link(void **link, const void *obj)
{
    check_link(link, "GC_general_register_disappearing_link");
    return register_link(&short_links, link, obj);
}

int GC_register_disappearing_link(void **link)
{
    /* As bdwgc: the link is in its object and goes when that does. */
    void *base = GC_base(link);
    if (!base) {
        fprintf(stderr,
                "cgc-bdwgc: GC_register_disappearing_link: %p is "
                "not in a GC object\n",
                (void *)link);
        abort();
    }
    return GC_general_register_disappearing_link(link, base);
}

int GC_unregister_disappearing_link(void **link)
{
    return unregister_link(&short_links, link);
}

int GC_move_disappearing_link(void **link, void **new_link)
{
    return move_link(&short_links, link, new_link, "GC_move_disappearing_link");
}

int GC_register_long_link(void **link, const void *obj)
{
    check_link(link, "GC_register_long_link");
    return register_link(&long_links, link, obj);
}

int GC_unregister_long_link(void **link)
{
    return unregister_link(&long_links, link);
}

int GC_move_long_link(void **link, void **new_link)
{
    return move_link(&long_links, link, new_link, "GC_move_long_link");
}
