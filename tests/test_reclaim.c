/*
 * test_reclaim — unreachable objects are reclaimed.
 *
 * Objects are allocated in a noinline function that keeps only hidden
 * (XOR-masked) addresses, the stack is cleared, gc_collect runs; then
 * gc_base(address) is NULL for at least 95% of them (conservative stack
 * scanning may find a stale copy) and gc_read_stats shows heap_objects and
 * heap_alloc down, frees up, num_gc and num_forced_gc counted. Also: large
 * objects and garbage cycles are reclaimed; gc_free'd objects are not
 * resurrected by a stack reference; automatic collection keeps the heap
 * bounded while far more than the goal is allocated; repeated
 * allocate/drop rounds do not grow the heap; gc_set_percent(-1) stops
 * automatic collection and gc_set_percent returns the previous value.
 */
#define _GNU_SOURCE
#include "test_util.h"

#define MiB ((uint64_t)1 << 20)

static gc_stats s0, s1, s2; /* big: keep them off the stack */

static size_t obj_size(size_t i)
{
    return 16 + (i * 53) % 500;
}

static NOINLINE void alloc_hidden(uintptr_t *hidden, size_t n, size_t *bytes)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t sz = obj_size(i);
        unsigned char *p = (i & 1) ? gc_alloc(sz) : gc_alloc_noscan(sz);
        if (!p) {
            hidden[i] = hide(NULL);
            continue;
        }
        memset(p, 0x8c, sz);
        hidden[i] = hide(p);
        total += sz;
    }
    *bytes = total;
}

static void test_unreachable_reclaimed_with_stats(void **state)
{
    (void)state;
    const size_t n = 20000;
    uintptr_t *hidden = malloc(n * sizeof *hidden);
    CHECK(hidden != NULL, "malloc");
    int prev = gc_set_percent(-1); /* exact counters: no automatic cycle */
    gc_collect();
    gc_read_stats(&s0);
    size_t bytes = 0;
    alloc_hidden(hidden, n, &bytes);
    gc_read_stats(&s1);
    CHECK(count_alive(hidden, n) == n, "objects not live right after "
                                       "allocation");
    CHECK(s1.heap_objects >= s0.heap_objects + n,
          "heap_objects went from %llu to %llu after %zu allocations",
          (unsigned long long)s0.heap_objects,
          (unsigned long long)s1.heap_objects, n);
    CHECK(s1.mallocs >= s0.mallocs + n, "mallocs went from %llu to %llu",
          (unsigned long long)s0.mallocs, (unsigned long long)s1.mallocs);
    CHECK(s1.heap_alloc >= s0.heap_alloc + bytes,
          "heap_alloc went from %llu to %llu after allocating %zu bytes",
          (unsigned long long)s0.heap_alloc, (unsigned long long)s1.heap_alloc,
          bytes);

    clear_stack();
    gc_collect();
    gc_read_stats(&s2);
    gc_set_percent(prev);

    size_t alive = count_alive(hidden, n);
    CHECK(alive * 20 <= n,
          "%zu of %zu unreachable objects survived gc_collect (allowed: 5%%)",
          alive, n);
    uint64_t gone = n - n / 20;
    CHECK(s2.heap_objects + gone <= s1.heap_objects,
          "heap_objects only went from %llu to %llu after collecting %zu "
          "unreachable objects",
          (unsigned long long)s1.heap_objects,
          (unsigned long long)s2.heap_objects, n);
    CHECK(s2.frees >= s1.frees + gone, "frees only went from %llu to %llu",
          (unsigned long long)s1.frees, (unsigned long long)s2.frees);
    CHECK(s2.heap_alloc + bytes * 9 / 10 <= s1.heap_alloc,
          "heap_alloc only went from %llu to %llu after collecting %zu bytes",
          (unsigned long long)s1.heap_alloc, (unsigned long long)s2.heap_alloc,
          bytes);
    CHECK(s2.num_gc == s1.num_gc + 1,
          "num_gc went from %u to %u over one "
          "gc_collect",
          s1.num_gc, s2.num_gc);
    CHECK(s2.num_forced_gc == s1.num_forced_gc + 1,
          "num_forced_gc went from %u to %u over one gc_collect",
          s1.num_forced_gc, s2.num_forced_gc);
    CHECK(s2.total_alloc >= s1.total_alloc, "total_alloc decreased");
    free(hidden);
}

static NOINLINE void alloc_large_hidden(uintptr_t *hidden, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t sz = (100 + i * 10) * 1024;
        unsigned char *p = (i & 1) ? gc_alloc(sz) : gc_alloc_noscan(sz);
        memset(p, 0x8c, sz);
        hidden[i] = hide(p);
    }
}

static void test_large_reclaimed(void **state)
{
    (void)state;
    enum { N = 40 };
    uintptr_t hidden[N];
    int prev = gc_set_percent(-1);
    gc_collect();
    alloc_large_hidden(hidden, N);
    gc_read_stats(&s1);
    clear_stack();
    gc_collect();
    gc_read_stats(&s2);
    gc_set_percent(prev);
    size_t alive = count_alive(hidden, N);
    CHECK(alive <= 2, "%zu of %d unreachable large objects survived", alive, N);
    CHECK(s2.heap_alloc + 30 * 100 * 1024 <= s1.heap_alloc,
          "heap_alloc only went from %llu to %llu",
          (unsigned long long)s1.heap_alloc, (unsigned long long)s2.heap_alloc);
    /* Large objects count in frees (by_size holds small classes only). */
    CHECK(s2.frees >= s1.frees + N - 2, "frees only went from %llu to %llu",
          (unsigned long long)s1.frees, (unsigned long long)s2.frees);
}

/* Rings of 4 nodes pointing at each other, unreachable. */
static NOINLINE void alloc_rings(uintptr_t *hidden, size_t rings)
{
    for (size_t r = 0; r < rings; r++) {
        void **a = gc_alloc(32), **b = gc_alloc(32), **c = gc_alloc(32),
             **d = gc_alloc(32);
        GC_WRITE(a[0], b);
        GC_WRITE(b[0], c);
        GC_WRITE(c[0], d);
        GC_WRITE(d[0], a);
        GC_WRITE(a[1], c); /* a chord */
        hidden[4 * r] = hide(a);
        hidden[4 * r + 1] = hide(b);
        hidden[4 * r + 2] = hide(c);
        hidden[4 * r + 3] = hide(d);
    }
}

static void test_cycles_reclaimed(void **state)
{
    (void)state;
    const size_t rings = 2000;
    uintptr_t *hidden = malloc(4 * rings * sizeof *hidden);
    CHECK(hidden != NULL, "malloc");
    alloc_rings(hidden, rings);
    clear_stack();
    gc_collect();
    size_t alive = count_alive(hidden, 4 * rings);
    CHECK(alive * 20 <= 4 * rings,
          "%zu of %zu objects in unreachable cycles survived (allowed: 5%%)",
          alive, 4 * rings);
    free(hidden);
}

static NOINLINE void alloc_and_free(void **locals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        locals[i] = gc_alloc(64);
        memset(locals[i], 0x8c, 64);
    }
    for (size_t i = 0; i < n; i++)
        gc_free(locals[i]);
}

static void test_freed_not_resurrected(void **state)
{
    (void)state;
    /* gc_free'd objects stay freed although the stack still points at
     * them. */
    enum { N = 200 };
    void *locals[N];
    alloc_and_free(locals, N);
    gc_collect();
    size_t live = 0;
    for (size_t i = 0; i < N; i++)
        if (gc_base(locals[i]) == locals[i])
            live++;
    /* After gc_collect nothing was allocated, so no slot was reused. */
    CHECK(live == 0,
          "%zu of %d gc_free'd objects still live after "
          "gc_collect (the stack still references them)",
          live, N);
}

static void test_freed_immediately_not_live(void **state)
{
    (void)state;
    enum { N = 50 };
    void *locals[N];
    alloc_and_free(locals, N);
    size_t live = 0, sized = 0;
    for (size_t i = 0; i < N; i++) {
        if (gc_base(locals[i]) != NULL)
            live++;
        if (gc_size(locals[i]) != 0)
            sized++;
    }
    CHECK(live == 0 && sized == 0,
          "right after gc_free: gc_base non-NULL for %zu and gc_size non-0 "
          "for %zu of %d freed objects",
          live, sized, N);
}

static NOINLINE void alloc_free_hidden(size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++) {
        void *p = (i & 1) ? gc_alloc(size) : gc_alloc_noscan(size);
        memset(p, 0x8c, size);
        gc_free(p);
    }
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a;
    uintptr_t y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static void test_slots_of_freed_objects_reused_safely(void **state)
{
    (void)state;
    /* Objects allocated into the slots of gc_free'd objects are ordinary
     * live objects: distinct, intact across collections. */
    static const size_t sizes[] = {16, 48, 512, 4096, 20000, 100000};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t sz = sizes[si];
        size_t n = sz > 32768 ? 40 : scaled(1000, 200);
        void **live = calloc(n, sizeof *live);
        void **sorted = malloc(n * sizeof *sorted);
        CHECK(live && sorted, "malloc");
        CHECK(gc_root_add(live, n * sizeof *live) == 0, "gc_root_add");
        alloc_free_hidden(n, sz);
        gc_collect();
        for (size_t i = 0; i < n; i++) {
            void *p = gc_alloc(sz);
            fill_pattern(p, sz, (unsigned)i);
            GC_WRITE(live[i], p);
        }
        alloc_free_hidden(n, sz); /* more frees, then two cycles */
        gc_collect();
        memset(gc_alloc(sz), 0, sz);
        gc_collect();
        size_t lost = 0, corrupt = 0;
        for (size_t i = 0; i < n; i++) {
            if (gc_base(live[i]) != live[i])
                lost++;
            else if (check_pattern(live[i], sz, (unsigned)i) != sz)
                corrupt++;
        }
        memcpy(sorted, live, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_ptr);
        size_t dups = 0;
        for (size_t i = 1; i < n; i++)
            if (sorted[i] == sorted[i - 1])
                dups++;
        CHECK(gc_root_remove(live) == 0, "gc_root_remove");
        free(live);
        free(sorted);
        CHECK(lost == 0 && corrupt == 0 && dups == 0,
              "size %zu: of %zu live objects allocated after gc_free + "
              "gc_collect, %zu were freed, %zu corrupted, %zu handed out "
              "twice",
              sz, n, lost, corrupt, dups);
    }
}

static void test_automatic_collection_bounds_heap(void **state)
{
    (void)state;
    gc_collect();
    gc_read_stats(&s0);
    CHECK(s0.gc_percent > 0,
          "automatic collection is off (gc_percent %d); "
          "this test needs it on",
          s0.gc_percent);
    const uint64_t total = scaled(512, 128) * MiB;
    uint64_t allocated = 0, max_heap = 0;
    size_t i = 0;
    while (allocated < total) {
        size_t sz = 64 + (i * 977) % 8000;
        unsigned char *p = (i & 1) ? gc_alloc(sz) : gc_alloc_noscan(sz);
        CHECK(p != NULL, "allocation %zu failed after %llu bytes", i,
              (unsigned long long)allocated);
        p[0] = 1;
        p[sz - 1] = 2;
        allocated += sz;
        if (++i % 512 == 0) {
            gc_read_stats(&s1);
            if (s1.heap_alloc > max_heap)
                max_heap = s1.heap_alloc;
        }
    }
    gc_read_stats(&s1);
    CHECK(s1.num_gc >= s0.num_gc + 4,
          "allocating %llu MiB of garbage ran only %u automatic cycles "
          "(num_gc %u -> %u, next_gc was %llu)",
          (unsigned long long)(total / MiB), s1.num_gc - s0.num_gc, s0.num_gc,
          s1.num_gc, (unsigned long long)s0.next_gc);
    CHECK(s1.num_forced_gc == s0.num_forced_gc,
          "num_forced_gc changed without gc_collect");
    CHECK(max_heap <= 64 * MiB,
          "heap_alloc reached %llu MiB while allocating garbage with a heap "
          "goal of %llu MiB",
          (unsigned long long)(max_heap / MiB),
          (unsigned long long)(s0.next_gc / MiB));
    CHECK(s1.heap_sys <= 128 * MiB,
          "heap_sys grew to %llu MiB for a live heap of almost nothing",
          (unsigned long long)(s1.heap_sys / MiB));
}

static NOINLINE void garbage_round(size_t bytes)
{
    size_t done = 0;
    for (size_t i = 0; done < bytes; i++) {
        size_t sz = 32 + (i * 211) % 3000;
        memset(gc_alloc(sz), 0x8c, sz);
        done += sz;
    }
}

static void test_memory_reused_across_rounds(void **state)
{
    (void)state;
    int prev = gc_set_percent(-1);
    uint64_t sys_after_2 = 0;
    const int rounds = (int)scaled(20, 6);
    for (int r = 0; r < rounds; r++) {
        garbage_round(16 * MiB);
        clear_stack();
        gc_collect();
        gc_read_stats(&s1);
        if (r == 1)
            sys_after_2 = s1.heap_sys;
    }
    gc_set_percent(prev);
    CHECK(s1.heap_sys <= sys_after_2 + 16 * MiB,
          "heap_sys grew from %llu MiB (round 2) to %llu MiB (round %d) "
          "while each round's 16 MiB became garbage",
          (unsigned long long)(sys_after_2 / MiB),
          (unsigned long long)(s1.heap_sys / MiB), rounds);
}

static void test_set_percent_off(void **state)
{
    (void)state;
    gc_collect();
    gc_read_stats(&s0);
    int p0 = gc_set_percent(-1);
    CHECK(p0 == s0.gc_percent,
          "gc_set_percent returned %d but gc_read_stats said %d", p0,
          s0.gc_percent);
    gc_read_stats(&s1);
    CHECK(s1.gc_percent == -1, "gc_percent is %d after gc_set_percent(-1)",
          s1.gc_percent);
    uint64_t goal = s0.next_gc > 4 * MiB ? s0.next_gc : 4 * MiB;
    uint64_t want = 4 * goal > 64 * MiB ? 4 * goal : 64 * MiB;
    garbage_round(want);
    gc_read_stats(&s2);
    CHECK(s2.num_gc == s1.num_gc,
          "with gc_set_percent(-1), allocating %llu MiB ran %u cycles",
          (unsigned long long)(want / MiB), s2.num_gc - s1.num_gc);
    CHECK(s2.heap_alloc >= s1.heap_alloc + want * 9 / 10,
          "with collection off, heap_alloc went only from %llu to %llu",
          (unsigned long long)s1.heap_alloc, (unsigned long long)s2.heap_alloc);

    /* Negative values all mean off and read back as -1. */
    CHECK(gc_set_percent(-7) == -1, "gc_set_percent(-7) did not return -1 "
                                    "(off)");
    CHECK(gc_set_percent(50) == -1, "gc_set_percent(50) did not return -1");
    gc_read_stats(&s1);
    CHECK(s1.gc_percent == 50,
          "gc_percent reads %d after "
          "gc_set_percent(50)",
          s1.gc_percent);
    CHECK(gc_set_percent(p0) == 50, "gc_set_percent did not return 50");

    /* Back on, with the heap far above the goal: allocating triggers. */
    garbage_round(8 * MiB);
    gc_read_stats(&s1);
    CHECK(s1.num_gc > s2.num_gc,
          "after turning collection back on over a %llu MiB heap, "
          "allocating 8 MiB ran no cycle",
          (unsigned long long)(s2.heap_alloc / MiB));
    CHECK(s1.num_forced_gc == s2.num_forced_gc,
          "automatic cycles were counted as forced");
}

int main(void)
{
    remember_percent();
    const struct CMUnitTest tests[] = {
        PERCENT_TEST(test_unreachable_reclaimed_with_stats),
        PERCENT_TEST(test_large_reclaimed),
        PERCENT_TEST(test_cycles_reclaimed),
        PERCENT_TEST(test_freed_not_resurrected),
        PERCENT_TEST(test_freed_immediately_not_live),
        PERCENT_TEST(test_slots_of_freed_objects_reused_safely),
        PERCENT_TEST(test_automatic_collection_bounds_heap),
        PERCENT_TEST(test_memory_reused_across_rounds),
        PERCENT_TEST(test_set_percent_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
