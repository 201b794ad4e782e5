/*
 * uncollectable.c — objects that are never collected and are roots
 * (GC_malloc_uncollectable), until GC_free.
 *
 * Each is an ordinary cgc object kept reachable from one table: an open
 * addressing hash set of their addresses in malloc'd memory, registered as
 * a root (gc_root_add), so every mark reaches them and, through them if
 * they are scanned, what they point to. Growing the table registers the
 * new one before dropping the old, so an object is always reachable from a
 * registered root. A freshly allocated object is held by the allocating
 * thread's registers until it is inserted. Stores into the table go
 * through GC_WRITE, for the concurrent marking a program may choose.
 * Everything under table.lock.
 */
#include "bdwgc.h"

#include "heap.h"

#include <cgc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Slot values besides object addresses. */
#define EMPTY     ((uintptr_t)0)
#define TOMBSTONE ((uintptr_t)1)
#define MIN_SLOTS 64

static struct {
    pthread_mutex_t lock;
    uintptr_t *slots;
    size_t capacity, used; /* used counts tombstones too */
    size_t count;
} table = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t slot_of(uintptr_t p, size_t capacity)
{
    return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ull) & (capacity - 1);
}

/* Where p is, or where it would go (the first free slot of its probe). */
static size_t probe(const uintptr_t *slots, size_t capacity, uintptr_t p,
                    bool *found)
{
    size_t i = slot_of(p, capacity), free_slot = SIZE_MAX;
    for (;; i = (i + 1) & (capacity - 1)) {
        if (slots[i] == p) {
            *found = true;
            return i;
        }
        if (slots[i] == TOMBSTONE && free_slot == SIZE_MAX)
            free_slot = i;
        if (slots[i] == EMPTY) {
            *found = false;
            return free_slot != SIZE_MAX ? free_slot : i;
        }
    }
}

/* Rehash into a table big enough for twice the objects; false if memory
 * ran out (the old table stays). */
static bool grow_locked(void)
{
    size_t capacity = MIN_SLOTS;
    while (capacity < 4 * (table.count + 1))
        capacity *= 2;
    uintptr_t *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < table.capacity; i++) {
        uintptr_t p = table.slots[i];
        if (p == EMPTY || p == TOMBSTONE)
            continue;
        bool found;
        slots[probe(slots, capacity, p, &found)] = p;
    }
    if (gc_root_add(slots, capacity * sizeof *slots)) {
        free(slots);
        return false;
    }
    if (table.slots) {
        gc_root_remove(table.slots);
        free(table.slots);
    }
    table.slots = slots;
    table.capacity = capacity;
    table.used = table.count;
    return true;
}

static bool insert(uintptr_t p)
{
    pthread_mutex_lock(&table.lock);
    bool ok = (table.used + 1) * 2 <= table.capacity || grow_locked();
    if (ok) {
        bool found;
        size_t i = probe(table.slots, table.capacity, p, &found);
        if (!found) {
            if (table.slots[i] == EMPTY)
                table.used++;
            GC_WRITE(table.slots[i], p); /* a root: concurrent marking */
            table.count++;
        }
    }
    pthread_mutex_unlock(&table.lock);
    return ok;
}

void *bdwgc_uncollectable_alloc(size_t bytes, bool atomic)
{
    size_t total = bytes + bdwgc_extra_bytes;
    if (total < bytes)
        return NULL;
    void *p = atomic ? gc_alloc_noscan(total) : gc_alloc(total);
    if (p && !insert((uintptr_t)p))
        return NULL; /* p is garbage now: the collector takes it back */
    return p;
}

bool bdwgc_is_uncollectable(void *p)
{
    if (!p)
        return false;
    pthread_mutex_lock(&table.lock);
    bool found = false;
    if (table.slots)
        probe(table.slots, table.capacity, (uintptr_t)p, &found);
    pthread_mutex_unlock(&table.lock);
    return found;
}

bool bdwgc_uncollectable_remove(void *p)
{
    if (!p)
        return false;
    pthread_mutex_lock(&table.lock);
    bool found = false;
    if (table.slots) {
        size_t i = probe(table.slots, table.capacity, (uintptr_t)p, &found);
        if (found) {
            GC_WRITE(table.slots[i], TOMBSTONE);
            table.count--;
        }
    }
    pthread_mutex_unlock(&table.lock);
    return found;
}

void *bdwgc_uncollectable_realloc(void *p, size_t bytes)
{
    uint32_t idx;
    struct span *s = object_lookup((uintptr_t)p, &idx);
    bool atomic = s && s->kind == KIND_NOSCAN;
    void *q = bdwgc_uncollectable_alloc(bytes, atomic);
    if (!q)
        return NULL;
    size_t old = gc_size(p);
    memcpy(q, p, old < bytes ? old : bytes);
    GC_free(p);
    return q;
}
