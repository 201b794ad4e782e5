/*
 * test_memlimit.c — the soft memory limit (CGC_MEMLIMIT,
 * gc_set_memory_limit): with about 100 MiB live and heavy churn, the
 * memory the heap retains from the OS (sys - heap_released) stays within
 * 10 % of a 256 MiB limit; with CGC_PERCENT=off the limit alone drives
 * collection. Each scenario runs in a fresh child so the environment
 * variables are read by a fresh collector.
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
        /* Last: it initialises the collector in this process. */
        cmocka_unit_test(test_set_memory_limit_returns_previous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
