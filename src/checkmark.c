/*
 * checkmark.c — verify a finished mark (see checkmark.h).
 *
 * A single-threaded traversal from the roots records every object it
 * reaches in a side set (a hash set of object addresses, so the mark bits
 * are not touched). An object reached from a registered root or from a
 * marked object that is not marked itself is the symptom of a pointer
 * stored without the write barrier: it would be freed while reachable.
 * Stacks are scanned conservatively and may hold stale words naming dead
 * objects, so an unmarked object referenced only from a stack is not
 * reported (and not followed). Module data and TLS are roots like
 * registered ones. The report names the holder; a global is named through
 * the loader (globals_describe), which must not be called while the module
 * data is being walked (the loader's list is locked then), so a miss found
 * from a root is remembered and reported once the walk is over. Its
 * tables are mapped directly, not malloc'd: it runs with threads stopped,
 * perhaps inside malloc.
 */
#include "checkmark.h"

#include "central.h"
#include "finalize.h"
#include "globals.h"
#include "heap.h"
#include "os.h"
#include "report.h"
#include "roots.h"
#include "sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pending {
    uintptr_t obj;
    struct span *span;
};

static CGC_STATE struct {
    uintptr_t *set; /* open addressing, 0 = empty */
    size_t capacity, count;
    struct pending *stack;
    size_t depth, stack_capacity;
    bool reach_only; /* a side traversal (reaches): misses are not misses */
    /* The first missed object, its size, the word that references it and
     * the object holding that word (0: a root). */
    uintptr_t miss, miss_size, miss_where, miss_referrer;
} check;

static size_t slot_of(uintptr_t obj, size_t capacity)
{
    return (size_t)((obj >> 3) * 0x9E3779B97F4A7C15ull) & (capacity - 1);
}

static void set_grow(void)
{
    size_t capacity = check.capacity ? check.capacity * 2 : 1 << 16;
    uintptr_t *set = os_map(capacity * sizeof *set);
    if (!set)
        report_fatal("gccheckmark: out of memory for the side set");
    for (size_t i = 0; i < check.capacity; i++) {
        uintptr_t obj = check.set[i];
        if (!obj)
            continue;
        size_t j = slot_of(obj, capacity);
        while (set[j])
            j = (j + 1) & (capacity - 1);
        set[j] = obj;
    }
    if (check.set)
        os_unmap(check.set, check.capacity * sizeof *set);
    check.set = set;
    check.capacity = capacity;
}

/* Add obj; false if it was there already. */
static bool set_add(uintptr_t obj)
{
    if ((check.count + 1) * 2 > check.capacity)
        set_grow();
    size_t j = slot_of(obj, check.capacity);
    while (check.set[j]) {
        if (check.set[j] == obj)
            return false;
        j = (j + 1) & (check.capacity - 1);
    }
    check.set[j] = obj;
    check.count++;
    return true;
}

static void stack_push(uintptr_t obj, struct span *s)
{
    if (check.depth == check.stack_capacity) {
        size_t capacity =
            check.stack_capacity ? check.stack_capacity * 2 : 1 << 12;
        struct pending *stack = os_map(capacity * sizeof *stack);
        if (!stack)
            report_fatal("gccheckmark: out of memory for the traversal");
        if (check.stack) {
            memcpy(stack, check.stack, check.depth * sizeof *stack);
            os_unmap(check.stack, check.stack_capacity * sizeof *stack);
        }
        check.stack = stack;
        check.stack_capacity = capacity;
    }
    check.stack[check.depth++] = (struct pending){obj, s};
}

/* A word found at `where` inside `referrer` (0: a root range). */
static void visit(uintptr_t word, uintptr_t where, uintptr_t referrer,
                  bool from_stack)
{
    uint32_t idx;
    struct span *s = object_lookup(word, &idx);
    if (!s)
        return;
    uintptr_t obj = s->base + (uintptr_t)idx * s->elem_size;
    bool marked = bitmap_test(s->mark_bits, idx);
    if (!marked && from_stack)
        return;
    if (!set_add(obj))
        return;
    if (!marked && !check.miss && !check.reach_only) {
        check.miss = obj;
        check.miss_size = s->elem_size;
        check.miss_where = where;
        check.miss_referrer = referrer;
    }
    if (s->kind != KIND_NOSCAN)
        stack_push(obj, s);
}

__attribute__((no_sanitize("address", "thread"))) static void
visit_range(uintptr_t lo, uintptr_t hi, uintptr_t referrer, bool from_stack)
{
    for (uintptr_t a = round_up(lo, 8); a + 8 <= hi; a += 8)
        visit(*(const uintptr_t *)a, a, referrer, from_stack);
}

/* Abort naming the first missed object, if there is one. */
static void report_miss(void)
{
    if (!check.miss)
        return;
    char holder[512];
    if (check.miss_referrer)
        snprintf(holder, sizeof holder, "the object %p",
                 (void *)check.miss_referrer);
    else if (!globals_describe(check.miss_where, holder, sizeof holder))
        snprintf(holder, sizeof holder,
                 "a registered root or thread-local variable");
    report_fatal(
        "gccheckmark: object %p (%zu bytes) is reachable through the "
        "word at %p (%s), but marking did not find it: a pointer was "
        "stored into the heap or a root without GC_WRITE (or copied "
        "without gc_memmove), so the collector would have freed a live "
        "object. Store GC pointers with GC_WRITE(lvalue, value).",
        (void *)check.miss, (size_t)check.miss_size, (void *)check.miss_where,
        holder);
}

static void visit_root(uintptr_t lo, uintptr_t hi, bool is_stack, void *ctx)
{
    (void)ctx;
    visit_range(lo, hi, 0, is_stack);
}

static void scan_object(struct pending p)
{
    struct span *s = p.span;
    if (s->kind == KIND_SCAN) {
        visit_range(p.obj, p.obj + s->elem_size, p.obj, false);
        return;
    }
    uint32_t idx = s->nelems == 1 ? 0 : span_object_index(s, p.obj - s->base);
    const struct gc_type *t = s->types[idx];
    for (uintptr_t e = p.obj; t && e + t->size <= p.obj + s->elem_size;
         e += t->size)
        for (size_t i = 0; i < t->n_ptrs; i++) {
            uintptr_t at = e + t->ptr_offsets[i];
            visit(*(const uintptr_t *)at, at, p.obj, false);
        }
}

/* Whether the object `target` is reachable from the word `from`, through
 * scanned objects (a side traversal with the same tables). */
static bool reaches(uintptr_t from, uintptr_t target)
{
    check.count = 0;
    if (check.set)
        memset(check.set, 0, check.capacity * sizeof *check.set);
    check.depth = 0;
    check.reach_only = true;
    bool found = false;
    visit(from, 0, 0, false);
    uint32_t idx;
    if (object_lookup(from, &idx) && gc_base((void *)from) == (void *)target)
        found = true;
    while (check.depth && !found) {
        struct pending p = check.stack[--check.depth];
        if (p.obj == target)
            found = true;
        else
            scan_object(p);
    }
    check.reach_only = false;
    return found;
}

void checkmark_verify(void)
{
    check.count = 0;
    if (check.set)
        memset(check.set, 0, check.capacity * sizeof *check.set);
    check.depth = 0;
    check.miss = 0;
    roots_for_each_range(visit_root, NULL);
    report_miss();
    while (check.depth) {
        scan_object(check.stack[--check.depth]);
        report_miss();
    }
    /* A cleanup whose arg reaches its object keeps it alive for ever. */
    finalize_check_cleanups(reaches);
    if (check.set)
        os_unmap(check.set, check.capacity * sizeof *check.set);
    if (check.stack)
        os_unmap(check.stack, check.stack_capacity * sizeof *check.stack);
    memset(&check, 0, sizeof check);
}

void checkmark_verify_swept(void)
{
    if (sweep_in_progress() || !central_all_swept())
        report_fatal("gccheckmark: a cycle's marking starts while spans of "
                     "the last cycle are still unswept or being swept: "
                     "marking would skip their objects as already marked, "
                     "or the sweep would erase the new marks (a bug in "
                     "cgc's sweep accounting; please report it)");
}
