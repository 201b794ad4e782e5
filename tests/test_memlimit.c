/*
 * test_memlimit.c — the soft memory limit (CGC_MEMLIMIT,
 * gc_set_memory_limit): with about 100 MiB live and heavy churn, the
 * memory the heap retains from the OS (sys - heap_released) stays within
 * 10 % of a 256 MiB limit; with CGC_PERCENT=off the limit alone drives
 * collection; a limit below the live heap (a 100 MiB list under 64 MiB)
 * slows the program down by at most about half, not to a halt (Go's GC CPU
 * limiter), compared in the same run with no limit. Each scenario runs in
 * a fresh child so the environment variables are read by a fresh
 * collector.
 */
#define _GNU_SOURCE
#include "test_util.h"

#define MiB          ((uint64_t)1 << 20)
#define LIVE_OBJECTS 25600 /* about 100 MiB of 1-7 KiB objects */

static void *live[LIVE_OBJECTS];

struct outcome {
    uint64_t max_retained;
    uint64_t limit_read;
    uint32_t cycles;
    int lost;
};

static void churn(int result_fd, void *arg)
{
    const char *percent = arg;
    setenv("CGC_MEMLIMIT", "256MiB", 1);
    setenv("CGC_PERCENT", percent, 1);
    gc_init();
    GC_ROOT(live);
    struct outcome out = {0};
    out.limit_read = (uint64_t)gc_set_memory_limit(-1);
    uint64_t rng = 42;
    size_t rounds = scaled(600000, 100000);
    for (size_t i = 0; i < rounds; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t idx = (size_t)(rng >> 33) % LIVE_OBJECTS;
        size_t size = 1024 + (size_t)((rng >> 20) % 6144);
        unsigned char *p = gc_alloc_noscan(size);
        if (!p)
            _exit(40);
        p[0] = (unsigned char)idx;
        p[size - 1] = (unsigned char)(idx >> 8);
        GC_WRITE(live[idx], p);
        if (i % 512 == 0) {
            gc_stats s;
            gc_read_stats(&s);
            uint64_t retained = s.sys - s.heap_released;
            if (retained > out.max_retained)
                out.max_retained = retained;
            out.cycles = s.num_gc;
        }
    }
    for (size_t i = 0; i < LIVE_OBJECTS; i++)
        if (live[i] && (gc_base(live[i]) != live[i] ||
                        ((unsigned char *)live[i])[0] != (unsigned char)i))
            out.lost++;
    write_all(result_fd, &out, sizeof out);
}

static void check_limit_held(const char *percent)
{
    struct child_result r;
    run_child(churn, (void *)percent, 300, &r);
    char how[64];
    describe_status(r.status, how, sizeof how);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 &&
              r.data_len == sizeof(struct outcome),
          "CGC_PERCENT=%s: the child %s. stderr:\n%s", percent, how, r.err);
    const struct outcome *o = r.data;
    print_message("CGC_PERCENT=%s, CGC_MEMLIMIT=256MiB: %u cycles, at most "
                  "%.1f MiB retained (sys - heap_released)\n",
                  percent, o->cycles, (double)o->max_retained / MiB);
    CHECK(o->limit_read == 256 * MiB,
          "gc_set_memory_limit(-1) read %llu, not the 256 MiB of "
          "CGC_MEMLIMIT",
          (unsigned long long)o->limit_read);
    CHECK(o->lost == 0, "%d live objects were lost or damaged", o->lost);
    CHECK(o->cycles > 0, "no collection ran");
    CHECK(o->max_retained <= 256 * MiB + 256 * MiB / 10,
          "retained memory reached %.1f MiB, over the 256 MiB limit + 10%%",
          (double)o->max_retained / MiB);
}

static void test_limit_with_gogc(void **state)
{
    (void)state;
    check_limit_held("100");
}

static void test_limit_alone(void **state)
{
    (void)state;
    check_limit_held("off");
}

/* ---- a limit below the live heap -------------------------------------- */

#define LIST_BYTES  ((uint64_t)100 << 20)
#define NODE_BYTES  64
#define BUILD_RUNS  3 /* per configuration, interleaved; the best counts */
#define SLOWDOWN_OK 3 /* Go runs at about half speed: 2x, with slack */

struct node {
    struct node *next;
    uint64_t value;
    char pad[NODE_BYTES - 16];
};

static struct node *list_head;

struct build_args {
    const char *limit;    /* CGC_MEMLIMIT, or NULL for none */
    uint64_t deadline_ns; /* give up past this (0: never) */
};

struct build_outcome {
    uint64_t ns;
    uint64_t nodes_found;
    uint64_t heap_alloc;
    uint32_t cycles;
    int gave_up;
};

/* Build a LIST_BYTES list of NODE_BYTES nodes from a registered root. */
static void build_list(int result_fd, void *arg)
{
    const struct build_args *a = arg;
    if (a->limit)
        setenv("CGC_MEMLIMIT", a->limit, 1);
    else
        unsetenv("CGC_MEMLIMIT");
    unsetenv("CGC_PERCENT");
    gc_init();
    GC_ROOT(list_head);
    struct build_outcome out = {0};
    uint64_t n = LIST_BYTES / NODE_BYTES;
    uint64_t t0 = mono_ns();
    for (uint64_t i = 0; i < n; i++) {
        struct node *x = gc_alloc(sizeof *x);
        if (!x)
            _exit(40);
        x->value = i;
        GC_WRITE(x->next, list_head);
        GC_WRITE(list_head, x);
        if (a->deadline_ns && i % 256 == 0 && mono_ns() - t0 > a->deadline_ns) {
            out.gave_up = 1;
            break;
        }
    }
    out.ns = mono_ns() - t0;
    uint64_t expect = out.gave_up ? 0 : n;
    for (struct node *x = list_head; x; x = x->next) {
        if (!out.gave_up && x->value != --expect)
            break;
        out.nodes_found++;
    }
    gc_stats s;
    gc_read_stats(&s);
    out.heap_alloc = s.heap_alloc;
    out.cycles = s.num_gc;
    write_all(result_fd, &out, sizeof out);
}

static struct build_outcome run_build(const struct build_args *a)
{
    struct child_result r;
    run_child(build_list, (void *)a, 120, &r);
    char how[64];
    describe_status(r.status, how, sizeof how);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 &&
              r.data_len == sizeof(struct build_outcome),
          "CGC_MEMLIMIT=%s: the child %s. stderr:\n%s",
          a->limit ? a->limit : "off", how, r.err);
    return *(const struct build_outcome *)r.data;
}

static void test_limit_below_live_heap_slows_at_most_half(void **state)
{
    (void)state;
    uint64_t best_free = UINT64_MAX, best_limited = UINT64_MAX;
    for (int run = 0; run < BUILD_RUNS; run++) {
        struct build_args unlimited = {NULL, 0};
        struct build_outcome o = run_build(&unlimited);
        CHECK(o.nodes_found == LIST_BYTES / NODE_BYTES,
              "no limit: found %llu of %llu nodes",
              (unsigned long long)o.nodes_found,
              (unsigned long long)(LIST_BYTES / NODE_BYTES));
        if (o.ns < best_free)
            best_free = o.ns;
        print_message("no limit: %.3f s, %u cycles\n", (double)o.ns / 1e9,
                      o.cycles);

        /* Without the limiter this takes minutes: stop well past the
         * allowed time instead. */
        struct build_args limited = {"64MiB", best_free * SLOWDOWN_OK * 4};
        o = run_build(&limited);
        print_message("CGC_MEMLIMIT=64MiB: %.3f s%s, %u cycles, heap_alloc "
                      "%.1f MiB\n",
                      (double)o.ns / 1e9, o.gave_up ? " (gave up)" : "",
                      o.cycles, (double)o.heap_alloc / MiB);
        CHECK(!o.gave_up,
              "the 100 MiB list under a 64 MiB limit was unfinished after "
              "%.3f s (%u cycles), over %d times the %.3f s without a "
              "limit: allocation waits for cycles",
              (double)o.ns / 1e9, o.cycles, SLOWDOWN_OK * 4,
              (double)best_free / 1e9);
        CHECK(o.nodes_found == LIST_BYTES / NODE_BYTES,
              "64 MiB limit: found %llu of %llu nodes",
              (unsigned long long)o.nodes_found,
              (unsigned long long)(LIST_BYTES / NODE_BYTES));
        CHECK(o.heap_alloc >= LIST_BYTES, "heap_alloc %.1f MiB < the list",
              (double)o.heap_alloc / MiB);
        if (o.ns < best_limited)
            best_limited = o.ns;
    }
    CHECK(best_limited <= best_free * SLOWDOWN_OK,
          "under a 64 MiB limit the 100 MiB list took %.3f s, more than %d "
          "times the %.3f s without a limit",
          (double)best_limited / 1e9, SLOWDOWN_OK, (double)best_free / 1e9);
}

static void test_set_memory_limit_returns_previous(void **state)
{
    (void)state;
    int64_t original = gc_set_memory_limit(-1);
    CHECK(original == INT64_MAX, "no limit should read INT64_MAX, got %lld",
          (long long)original);
    CHECK(gc_set_memory_limit(512 * (int64_t)MiB) == INT64_MAX,
          "setting a limit returns the previous one");
    CHECK(gc_set_memory_limit(-5) == 512 * (int64_t)MiB,
          "a negative value only reads");
    CHECK(gc_set_memory_limit(INT64_MAX) == 512 * (int64_t)MiB,
          "resetting returns the limit set before");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_with_gogc),
        cmocka_unit_test(test_limit_alone),
        cmocka_unit_test(test_limit_below_live_heap_slows_at_most_half),
        /* Last: it initialises the collector in this process. */
        cmocka_unit_test(test_set_memory_limit_returns_previous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
