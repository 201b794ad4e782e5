/*
 * test_stats — gc_read_stats consistency.
 *
 * At quiescent points (after gc_collect, no other thread allocating):
 * alloc == heap_alloc, mallocs - frees == heap_objects, heap_sys ==
 * heap_inuse + heap_idle, heap_released <= heap_idle, heap_alloc <=
 * heap_inuse, sys >= heap_sys + gc_sys; by_size counts small objects only
 * (as Go's BySize: by_size[0] is the empty size-0 entry, large objects count
 * in mallocs/frees alone), so its sums stay within mallocs/frees, the class
 * of a size counts its allocations and no other; total_alloc and mallocs
 * grow by at least what was allocated; the newest pause sits at
 * pause_ns[(num_gc + 255) % 256], is non-zero, <= pause_total_ns and
 * pause_max_ns, and ends recently; last_gc is within the last seconds of
 * CLOCK_REALTIME; next_gc >= 4 MiB; num_gc / num_forced_gc count
 * gc_collect exactly; freeing a lot moves bytes from in-use to idle.
 */
#define _GNU_SOURCE
#include "test_util.h"

#define MiB    ((uint64_t)1 << 20)
#define ULL(x) ((unsigned long long)(x))

static gc_stats s0, s1, s2;

static void check_invariants(const gc_stats *s, const char *when)
{
    CHECK(s->alloc == s->heap_alloc, "%s: alloc %llu != heap_alloc %llu", when,
          ULL(s->alloc), ULL(s->heap_alloc));
    CHECK(s->mallocs >= s->frees, "%s: mallocs %llu < frees %llu", when,
          ULL(s->mallocs), ULL(s->frees));
    CHECK(s->mallocs - s->frees == s->heap_objects,
          "%s: mallocs %llu - frees %llu = %llu != heap_objects %llu", when,
          ULL(s->mallocs), ULL(s->frees), ULL(s->mallocs - s->frees),
          ULL(s->heap_objects));
    CHECK(s->heap_sys == s->heap_inuse + s->heap_idle,
          "%s: heap_sys %llu != heap_inuse %llu + heap_idle %llu", when,
          ULL(s->heap_sys), ULL(s->heap_inuse), ULL(s->heap_idle));
    CHECK(s->heap_released <= s->heap_idle,
          "%s: heap_released %llu > heap_idle %llu", when,
          ULL(s->heap_released), ULL(s->heap_idle));
    CHECK(s->heap_alloc <= s->heap_inuse,
          "%s: heap_alloc %llu > heap_inuse %llu", when, ULL(s->heap_alloc),
          ULL(s->heap_inuse));
    CHECK(s->total_alloc >= s->heap_alloc,
          "%s: total_alloc %llu < heap_alloc %llu", when, ULL(s->total_alloc),
          ULL(s->heap_alloc));
    CHECK(s->sys >= s->heap_sys + s->gc_sys,
          "%s: sys %llu < heap_sys %llu + gc_sys %llu", when, ULL(s->sys),
          ULL(s->heap_sys), ULL(s->gc_sys));
    CHECK(s->heap_sys == 0 || s->gc_sys > 0,
          "%s: gc_sys is 0 with a heap of %llu bytes (span records, bitmaps "
          "and the arena index are metadata)",
          when, ULL(s->heap_sys));
    uint64_t m = 0, f = 0;
    for (int i = 0; i < GC_NUM_SIZE_CLASSES; i++) {
        m += s->by_size[i].mallocs;
        f += s->by_size[i].frees;
        CHECK(s->by_size[i].mallocs >= s->by_size[i].frees,
              "%s: by_size[%d] (size %u): mallocs %llu < frees %llu", when, i,
              s->by_size[i].size, ULL(s->by_size[i].mallocs),
              ULL(s->by_size[i].frees));
    }
    CHECK(s->by_size[0].size == 0 && s->by_size[0].mallocs == 0 &&
              s->by_size[0].frees == 0,
          "%s: by_size[0] is {%u, %llu, %llu}, not Go's empty size-0 entry",
          when, s->by_size[0].size, ULL(s->by_size[0].mallocs),
          ULL(s->by_size[0].frees));
    /* What by_size leaves out is large objects, of which no more can have
     * been freed than allocated. */
    CHECK(m <= s->mallocs && f <= s->frees && s->mallocs - m >= s->frees - f,
          "%s: by_size sums (mallocs %llu, frees %llu) do not fit mallocs "
          "%llu, frees %llu",
          when, ULL(m), ULL(f), ULL(s->mallocs), ULL(s->frees));
    CHECK(s->gc_cpu_fraction >= 0.0 && s->gc_cpu_fraction <= 1.0,
          "%s: gc_cpu_fraction %f outside [0, 1]", when, s->gc_cpu_fraction);
    CHECK(s->mark_workers >= 1 && s->mark_workers <= 64, "%s: mark_workers %u",
          when, s->mark_workers);
    /* Last, so that a failure here does not hide the checks above. */
    CHECK(s->next_gc >= 4 * MiB, "%s: next_gc %llu < 4 MiB (4194304)", when,
          ULL(s->next_gc));
}

static NOINLINE void garbage(size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++)
        memset(gc_alloc(size), 0x8c, size);
}

static void test_invariants_at_quiescent_points(void **state)
{
    (void)state;
    gc_collect();
    gc_read_stats(&s0);
    check_invariants(&s0, "after the first gc_collect");
    garbage(50000, 100);
    gc_collect();
    gc_read_stats(&s1);
    check_invariants(&s1, "after garbage and gc_collect");
    /* Without a collection in between, with live objects on the stack. */
    int prev = gc_set_percent(-1);
    void *keep[1000];
    for (size_t i = 0; i < 1000; i++)
        keep[i] = gc_alloc(24 + i % 300);
    gc_read_stats(&s2);
    check_invariants(&s2, "after allocating, no collection");
    gc_set_percent(prev);
    __asm__ volatile("" : : "r"(keep) : "memory");
}

static void test_counters_grow_by_allocation(void **state)
{
    (void)state;
    int prev = gc_set_percent(-1);
    gc_collect();
    gc_read_stats(&s0);
    enum { N = 1000, SZ = 100 };
    void *keep[N];
    for (size_t i = 0; i < N; i++)
        keep[i] = gc_alloc(SZ);
    gc_read_stats(&s1);
    size_t usable = gc_size(keep[0]);
    CHECK(s1.mallocs - s0.mallocs >= N && s1.mallocs - s0.mallocs <= N + 16,
          "%d allocations moved mallocs by %llu", N,
          ULL(s1.mallocs - s0.mallocs));
    CHECK(s1.total_alloc - s0.total_alloc >= (uint64_t)N * SZ,
          "%d allocations of %d bytes moved total_alloc by %llu", N, SZ,
          ULL(s1.total_alloc - s0.total_alloc));
    CHECK(s1.heap_alloc - s0.heap_alloc >= (uint64_t)N * SZ,
          "%d live allocations of %d bytes moved heap_alloc by %llu", N, SZ,
          ULL(s1.heap_alloc - s0.heap_alloc));
    CHECK(s1.heap_objects - s0.heap_objects >= N,
          "%d live allocations moved heap_objects by %llu", N,
          ULL(s1.heap_objects - s0.heap_objects));
    int ci = size_class_index(&s1, usable);
    CHECK(ci > 0,
          "no by_size entry has size %zu (the usable size of a "
          "100-byte object)",
          usable);
    CHECK(s1.by_size[ci].mallocs - s0.by_size[ci].mallocs >= N,
          "by_size[%d] (size %u) mallocs moved by %llu for %d allocations of "
          "%d bytes",
          ci, s1.by_size[ci].size,
          ULL(s1.by_size[ci].mallocs - s0.by_size[ci].mallocs), N, SZ);
    for (int i = 0; i < GC_NUM_SIZE_CLASSES; i++)
        CHECK(i == ci || s1.by_size[i].mallocs == s0.by_size[i].mallocs,
              "%d allocations of %d bytes (class of size %u) moved "
              "by_size[%d] (size %u) by %llu",
              N, SZ, s1.by_size[ci].size, i, s1.by_size[i].size,
              ULL(s1.by_size[i].mallocs - s0.by_size[i].mallocs));
    /* Large objects count in mallocs, but in no by_size entry (Go's BySize
     * covers the small size classes only). */
    for (int i = 0; i < 10; i++)
        keep[i] = gc_alloc(100000);
    gc_read_stats(&s2);
    CHECK(s2.mallocs - s1.mallocs == 10,
          "10 large allocations moved mallocs by %llu",
          ULL(s2.mallocs - s1.mallocs));
    for (int i = 0; i < GC_NUM_SIZE_CLASSES; i++)
        CHECK(s2.by_size[i].mallocs == s1.by_size[i].mallocs,
              "10 large allocations moved by_size[%d] (size %u) mallocs by "
              "%llu",
              i, s2.by_size[i].size,
              ULL(s2.by_size[i].mallocs - s1.by_size[i].mallocs));
    CHECK(s2.total_alloc - s1.total_alloc >= 10 * 100000,
          "10 large allocations moved total_alloc by %llu",
          ULL(s2.total_alloc - s1.total_alloc));
    gc_set_percent(prev);
    __asm__ volatile("" : : "r"(keep) : "memory");
}

static NOINLINE void garbage_hidden_class(size_t n, size_t size)
{
    garbage(n, size);
}

static void test_by_size_frees(void **state)
{
    (void)state;
    int prev = gc_set_percent(-1);
    gc_collect();
    void *probe = gc_alloc(200);
    size_t usable = gc_size(probe);
    gc_read_stats(&s0);
    int ci = size_class_index(&s0, usable);
    CHECK(ci > 0, "no by_size entry of size %zu", usable);
    garbage_hidden_class(5000, 200);
    clear_stack();
    gc_collect();
    gc_read_stats(&s1);
    gc_set_percent(prev);
    CHECK(s1.by_size[ci].frees - s0.by_size[ci].frees >= 4750,
          "5000 unreachable %u-byte objects: by_size[%d].frees moved by %llu",
          s1.by_size[ci].size, ci,
          ULL(s1.by_size[ci].frees - s0.by_size[ci].frees));
    CHECK(gc_base(probe) == probe, "probe lost");
}

static void test_by_size_table(void **state)
{
    (void)state;
    gc_read_stats(&s0);
    uint32_t last = 0;
    int classes = 0;
    for (int i = 1; i < GC_NUM_SIZE_CLASSES; i++) {
        uint32_t sz = s0.by_size[i].size;
        if (sz == 0)
            continue; /* unused trailing entries */
        CHECK(sz > last, "by_size[%d].size %u not above the previous %u", i, sz,
              last);
        CHECK(sz >= 16 ? sz % 16 == 0 : sz % 8 == 0,
              "by_size[%d].size %u breaks malloc alignment", i, sz);
        last = sz;
        classes++;
    }
    CHECK(classes >= 30, "only %d size classes reported", classes);
    /* Every small size maps to a listed class. */
    for (size_t s = 1; s <= last; s += (s < 1024 ? 1 : 61)) {
        void *p = gc_alloc(s);
        CHECK(size_class_index(&s0, gc_size(p)) > 0,
              "gc_alloc(%zu) has usable size %zu, which is no listed class", s,
              gc_size(p));
    }
}

static void test_pause_and_time(void **state)
{
    (void)state;
    garbage(10000, 64);
    uint64_t before = real_ns();
    gc_collect();
    uint64_t after = real_ns();
    gc_read_stats(&s0);
    uint32_t idx = (s0.num_gc + 255) % 256;
    CHECK(s0.num_gc >= 1, "num_gc is 0 after gc_collect");
    CHECK(s0.pause_ns[idx] > 0, "newest pause pause_ns[%u] is 0 (num_gc %u)",
          idx, s0.num_gc);
    CHECK(s0.pause_total_ns >= s0.pause_ns[idx],
          "pause_total_ns %llu < newest pause %llu", ULL(s0.pause_total_ns),
          ULL(s0.pause_ns[idx]));
    /* A cycle stops the world at most twice, and pause_ns holds their sum
     * (as Go's PauseNs), so the longest single pause is at least half of
     * it and never more than the total. */
    CHECK(s0.pause_max_ns * 2 >= s0.pause_ns[idx],
          "pause_max_ns %llu < half the newest cycle's pauses %llu",
          ULL(s0.pause_max_ns), ULL(s0.pause_ns[idx]));
    CHECK(s0.pause_max_ns <= s0.pause_total_ns,
          "pause_max_ns %llu > pause_total_ns %llu", ULL(s0.pause_max_ns),
          ULL(s0.pause_total_ns));
    CHECK(s0.pause_ns[idx] < after - before + 1000000,
          "newest pause %llu ns is longer than the gc_collect call (%llu ns)",
          ULL(s0.pause_ns[idx]), ULL(after - before));
    CHECK(s0.last_gc >= before && s0.last_gc <= after,
          "last_gc %llu not within the gc_collect call [%llu, %llu] "
          "(CLOCK_REALTIME ns)",
          ULL(s0.last_gc), ULL(before), ULL(after));
    CHECK(s0.pause_end[idx] >= before && s0.pause_end[idx] <= after,
          "pause_end[%u] %llu not within the gc_collect call [%llu, %llu]", idx,
          ULL(s0.pause_end[idx]), ULL(before), ULL(after));
    CHECK(real_ns() - s0.last_gc < 5000000000ull, "last_gc too old");
    /* A second collection moves the ring. */
    gc_collect();
    gc_read_stats(&s1);
    uint32_t idx1 = (s1.num_gc + 255) % 256;
    CHECK(idx1 != idx, "ring index did not move");
    CHECK(s1.pause_ns[idx1] > 0, "second newest pause is 0");
    CHECK(s1.pause_end[idx1] >= s0.pause_end[idx],
          "pause_end went back in time");
    CHECK(s1.pause_total_ns >= s0.pause_total_ns + s1.pause_ns[idx1],
          "pause_total_ns %llu did not grow by the new pause %llu (was %llu)",
          ULL(s1.pause_total_ns), ULL(s1.pause_ns[idx1]),
          ULL(s0.pause_total_ns));
    CHECK(s1.last_gc >= s0.last_gc, "last_gc went back in time");
}

static void test_forced_counts(void **state)
{
    (void)state;
    gc_collect();
    gc_read_stats(&s0);
    for (int i = 0; i < 3; i++)
        gc_collect();
    gc_read_stats(&s1);
    CHECK(s1.num_gc == s0.num_gc + 3, "3 gc_collect: num_gc %u -> %u",
          s0.num_gc, s1.num_gc);
    CHECK(s1.num_forced_gc == s0.num_forced_gc + 3,
          "3 gc_collect: num_forced_gc %u -> %u", s0.num_forced_gc,
          s1.num_forced_gc);
    CHECK(s1.num_forced_gc <= s1.num_gc, "num_forced_gc %u > num_gc %u",
          s1.num_forced_gc, s1.num_gc);
}

static NOINLINE void alloc_hidden_many(uintptr_t *hidden, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void *p = gc_alloc_noscan(1024);
        memset(p, 0x8c, 1024);
        hidden[i] = hide(p);
    }
}

static void test_inuse_to_idle(void **state)
{
    (void)state;
    const size_t n = 32 * 1024; /* 32 MiB of 1 KiB objects */
    uintptr_t *hidden = malloc(n * sizeof *hidden);
    CHECK(hidden != NULL, "malloc");
    int prev = gc_set_percent(-1);
    gc_collect();
    alloc_hidden_many(hidden, n);
    gc_read_stats(&s0);
    clear_stack();
    gc_collect();
    gc_read_stats(&s1);
    gc_set_percent(prev);
    CHECK(s1.heap_inuse + 16 * MiB <= s0.heap_inuse,
          "heap_inuse only went from %llu to %llu MiB after 32 MiB became "
          "garbage",
          ULL(s0.heap_inuse / MiB), ULL(s1.heap_inuse / MiB));
    CHECK(s1.heap_idle >= s0.heap_idle + 16 * MiB ||
              s1.heap_sys + 16 * MiB <= s0.heap_sys,
          "freed spans are neither idle nor returned: heap_idle %llu -> "
          "%llu, heap_sys %llu -> %llu",
          ULL(s0.heap_idle), ULL(s1.heap_idle), ULL(s0.heap_sys),
          ULL(s1.heap_sys));
    check_invariants(&s0, "with 32 MiB of fresh garbage");
    check_invariants(&s1, "after collecting 32 MiB");
    free(hidden);
}

static void test_read_is_monotonic(void **state)
{
    (void)state;
    gc_read_stats(&s0);
    for (int round = 0; round < 20; round++) {
        garbage(2000, 16 + round * 30);
        if (round % 5 == 0)
            gc_collect();
        gc_read_stats(&s1);
        CHECK(s1.total_alloc >= s0.total_alloc, "total_alloc decreased");
        CHECK(s1.mallocs >= s0.mallocs, "mallocs decreased");
        CHECK(s1.frees >= s0.frees, "frees decreased");
        CHECK(s1.num_gc >= s0.num_gc, "num_gc decreased");
        CHECK(s1.pause_total_ns >= s0.pause_total_ns,
              "pause_total_ns decreased");
        CHECK(s1.sys >= s1.heap_sys, "sys < heap_sys");
        s0 = s1;
    }
}

int main(void)
{
    remember_percent();
    const struct CMUnitTest tests[] = {
        PERCENT_TEST(test_invariants_at_quiescent_points),
        PERCENT_TEST(test_counters_grow_by_allocation),
        PERCENT_TEST(test_by_size_frees),
        PERCENT_TEST(test_by_size_table),
        PERCENT_TEST(test_pause_and_time),
        PERCENT_TEST(test_forced_counts),
        PERCENT_TEST(test_inuse_to_idle),
        PERCENT_TEST(test_read_is_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
