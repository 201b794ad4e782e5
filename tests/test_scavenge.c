/*
 * test_scavenge.c — returning memory to the OS and watching the collector.
 *
 *  - after a spike of small and large objects is dropped, gc_free_os_memory
 *    brings the resident set down to about the live heap, and the
 *    background scavenger alone (no call) brings it down too, paced;
 *  - released pages are reused correctly (gc_alloc memory reads zero) and
 *    heap_released moves as it should;
 *  - CGC_DEBUG=gcpacertrace=1 and scavtrace=1 print Go's pacer and scav
 *    lines (checked against Go's grammar), with " (forced)" for
 *    gc_free_os_memory;
 *  - gc_set_trace_handler routes those lines, gc_set_event_handler reports
 *    each cycle's four phases in order, and a handler may read the stats.
 * Each scenario runs in a fresh child process with its own environment.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <regex.h>
#include <stdbool.h>

#define MiB ((uint64_t)1 << 20)

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ---- the spike ---------------------------------------------------------- */

#define LIVE_OBJECTS 4096
static void *live[LIVE_OBJECTS]; /* about 16 MiB kept throughout */
static void **spike_small;       /* malloc'd table, registered as a root */
static void **spike_large;

struct spike_result {
    uint64_t baseline, live_bytes, peak, after_free, after_wait;
    uint64_t released_after_free;
    double waited_s, free_s;
    int zero_ok;
};

static NOINLINE void make_spike(size_t small_n, size_t large_n)
{
    for (size_t i = 0; i < small_n; i++) {
        unsigned char *p = gc_alloc(64);
        if (!p)
            _exit(50);
        p[0] = 1;
        spike_small[i] = p;
    }
    for (size_t i = 0; i < large_n; i++) {
        unsigned char *p = gc_alloc_noscan(MiB);
        if (!p)
            _exit(51);
        memset(p, 0x5c, MiB); /* resident */
        spike_large[i] = p;
    }
}

static void drop_spike(size_t small_n, size_t large_n)
{
    memset(spike_small, 0, small_n * sizeof *spike_small);
    memset(spike_large, 0, large_n * sizeof *spike_large);
}

static void spike(int result_fd, void *arg)
{
    bool call_free_os_memory = arg != NULL;
    gc_init();
    struct spike_result out = {0};
    GC_ROOT(live);
    for (size_t i = 0; i < LIVE_OBJECTS; i++) {
        unsigned char *p = gc_alloc(4096);
        p[0] = 7;
        live[i] = p;
    }
    out.live_bytes = LIVE_OBJECTS * 4096;
    out.baseline = rss_bytes();
    /* About 2 GiB (scaled down under sanitizers): half in 64-byte objects,
     * half in 1 MiB objects. */
    uint64_t half = (uint64_t)(1024 * test_scale()) * MiB;
    size_t small_n = (size_t)(half / 64), large_n = (size_t)(half / MiB);
    spike_small = calloc(small_n, sizeof *spike_small);
    spike_large = calloc(large_n, sizeof *spike_large);
    if (!spike_small || !spike_large)
        _exit(52);
    gc_root_add(spike_small, small_n * sizeof *spike_small);
    gc_root_add(spike_large, large_n * sizeof *spike_large);
    make_spike(small_n, large_n);
    out.peak = rss_bytes();
    drop_spike(small_n, large_n);
    /* The tables are the test's own memory, not the heap's: give them
     * back so that the resident set measures the collector. */
    gc_root_remove(spike_small);
    gc_root_remove(spike_large);
    free(spike_small);
    free(spike_large);
    clear_stack();

    if (call_free_os_memory) {
        uint64_t t0 = mono_ns();
        gc_free_os_memory();
        out.free_s = (double)(mono_ns() - t0) / 1e9;
        out.after_free = rss_bytes();
        gc_stats s;
        gc_read_stats(&s);
        out.released_after_free = s.heap_released;
        /* Reuse of released pages: fresh objects read zero. */
        out.zero_ok = 1;
        for (int i = 0; i < 2000 && out.zero_ok; i++) {
            unsigned char *p = gc_alloc(MiB / 4);
            out.zero_ok = p && first_nonzero(p, MiB / 4) == MiB / 4;
        }
    } else {
        /* Two collections reclaim the spike; then only the scavenger. */
        gc_collect();
        gc_collect();
        uint64_t target = out.live_bytes + out.peak / 4;
        uint64_t start = mono_ns();
        while ((out.after_wait = rss_bytes()) > target &&
               mono_ns() - start < 60ull * 1000000000ull) {
            gc_blocking_begin();
            usleep(100000);
            gc_blocking_end();
        }
        out.waited_s = (double)(mono_ns() - start) / 1e9;
    }
    for (size_t i = 0; i < LIVE_OBJECTS; i++)
        if (((unsigned char *)live[i])[0] != 7)
            _exit(53);
    write_all(result_fd, &out, sizeof out);
}

static const struct spike_result *run_spike(bool call_free_os_memory)
{
    struct child_result r;
    run_child(spike, call_free_os_memory ? (void *)1 : NULL, 180, &r);
    char how[64];
    describe_status(r.status, how, sizeof how);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 &&
              r.data_len == sizeof(struct spike_result),
          "the spike child %s. stderr:\n%s", how, r.err);
    return r.data;
}

static void test_free_os_memory_after_spike(void **state)
{
    (void)state;
    const struct spike_result *o = run_spike(true);
    print_message("spike: baseline %.0f MiB, peak %.0f MiB, after "
                  "gc_free_os_memory (%.2f s) %.0f MiB (live %.0f MiB), "
                  "%.0f MiB released\n",
                  (double)o->baseline / MiB, (double)o->peak / MiB, o->free_s,
                  (double)o->after_free / MiB, (double)o->live_bytes / MiB,
                  (double)o->released_after_free / MiB);
    CHECK(o->peak > o->baseline + 256 * MiB * test_scale(),
          "the spike did not raise RSS (%llu -> %llu): the test proves "
          "nothing",
          (unsigned long long)o->baseline, (unsigned long long)o->peak);
    CHECK(o->after_free <= o->baseline + 64 * MiB,
          "RSS after gc_free_os_memory is %.0f MiB, more than the %.0f MiB "
          "before the spike (live heap included) + 64 MiB",
          (double)o->after_free / MiB, (double)o->baseline / MiB);
    CHECK(o->released_after_free > 0, "heap_released is 0 after release");
    CHECK(o->zero_ok, "objects allocated on released pages are not zero");
}

static void test_background_scavenger_after_spike(void **state)
{
    (void)state;
    const struct spike_result *o = run_spike(false);
    print_message("spike: baseline %.0f MiB, peak %.0f MiB; the background "
                  "scavenger brought RSS to %.0f MiB in %.1f s\n",
                  (double)o->baseline / MiB, (double)o->peak / MiB,
                  (double)o->after_wait / MiB, o->waited_s);
    CHECK(o->after_wait <= o->live_bytes + o->peak / 4,
          "after %.1f s the background scavenger left RSS at %.0f MiB, "
          "above the live heap + 25%% of the peak",
          o->waited_s, (double)o->after_wait / MiB);
}

/* ---- traces ----------------------------------------------------------------
 */

static void traces(int result_fd, void *arg)
{
    (void)arg;
    (void)result_fd;
    setenv("CGC_DEBUG", "gcpacertrace=1,scavtrace=1", 1);
    gc_init();
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < 20000; i++)
            (void)gc_alloc(256);
    gc_collect();
    gc_free_os_memory();
}

static size_t count_matching(const char *text, const char *pattern)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE))
        abort();
    size_t n = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);
        if (regexec(&re, copy, 0, NULL, 0) == 0)
            n++;
        free(copy);
        line += len + (end ? 1 : 0);
    }
    regfree(&re);
    return n;
}

#define FLOAT_RE "[+-][0-9]\\.[0-9]{6}e[+-][0-9]{3}"
#define PACER_START_RE                                                         \
    "^pacer: assist ratio=" FLOAT_RE " \\(scan [0-9]+ MB in [0-9]+->[0-9]+ "   \
    "MB\\) workers=[0-9]+\\+" FLOAT_RE "$"
#define PACER_END_RE                                                           \
    "^pacer: [0-9]+% CPU \\([0-9]+ exp\\.\\) for [0-9]+\\+[0-9]+\\+[0-9]+ B "  \
    "work \\([0-9]+ B exp\\.\\) in [0-9]+ B -> [0-9]+ B \\(\xe2\x88\x86goal "  \
    "-?[0-9]+, cons/mark " FLOAT_RE "\\)$"
#define SCAV_RE                                                                \
    "^scav [0-9]+ KiB work \\(bg\\), [0-9]+ KiB work \\(eager\\), [0-9]+ KiB " \
    "now, [0-9]+% util( \\(forced\\))?$"

static void test_pacer_and_scav_traces(void **state)
{
    (void)state;
    struct child_result r;
    run_child(traces, NULL, 60, &r);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
          "the trace child failed. stderr:\n%s", r.err);
    size_t starts = count_matching(r.err, PACER_START_RE);
    size_t ends = count_matching(r.err, PACER_END_RE);
    size_t scavs = count_matching(r.err, SCAV_RE);
    CHECK(starts >= 2 && ends >= 2,
          "pacer lines in Go's format: %zu start, %zu end. stderr:\n%s", starts,
          ends, r.err);
    CHECK(scavs >= 2, "scav lines in Go's format: %zu. stderr:\n%s", scavs,
          r.err);
    CHECK(count_matching(r.err, "^scav .* \\(forced\\)$") == 1,
          "exactly one scav line marked (forced) for gc_free_os_memory:\n%s",
          r.err);
    CHECK(count_matching(r.err, "^(pacer:|scav) ") == starts + ends + scavs,
          "a pacer or scav line is not in Go's format:\n%s", r.err);
}

/* ---- handlers ---------------------------------------------------------------
 */

struct seen {
    int lines, gc_lines;
    int events[4];
    uint32_t last_cycle;
    int order_errors;
    int stats_reads;
    enum gc_event_kind next;
};

static void on_line(const char *line, void *data)
{
    struct seen *s = data;
    s->lines++;
    if (strncmp(line, "gc ", 3) == 0 && !strchr(line, '\n'))
        s->gc_lines++;
}

static void on_event(const gc_event *ev, void *data)
{
    struct seen *s = data;
    s->events[ev->kind]++;
    /* Phases come in order; a stop-the-world cycle has no MARK_START. */
    if (ev->kind == GC_EVENT_CYCLE_START) {
        if (ev->cycle != s->last_cycle + 1)
            s->order_errors++;
        s->last_cycle = ev->cycle;
    } else if (ev->cycle != s->last_cycle) {
        s->order_errors++;
    }
    if (ev->kind == GC_EVENT_CYCLE_END) {
        gc_stats st;
        gc_read_stats(&st); /* allowed from a handler */
        if (st.num_gc == ev->cycle)
            s->stats_reads++;
    }
}

static void handlers(int result_fd, void *arg)
{
    (void)arg;
    setenv("CGC_DEBUG", "gctrace=1", 1);
    static struct seen seen;
    gc_set_trace_handler(on_line, &seen);
    gc_set_event_handler(on_event, &seen);
    gc_init();
    for (int i = 0; i < 5; i++)
        gc_collect();
    gc_set_event_handler(NULL, NULL);
    gc_set_trace_handler(NULL, NULL);
    gc_collect(); /* this line goes to stderr again */
    write_all(result_fd, &seen, sizeof seen);
}

static void test_trace_and_event_handlers(void **state)
{
    (void)state;
    struct child_result r;
    run_child(handlers, NULL, 60, &r);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 &&
              r.data_len == sizeof(struct seen),
          "the handler child failed. stderr:\n%s", r.err);
    const struct seen *s = r.data;
    CHECK(s->gc_lines >= 5, "the trace handler got %d gctrace lines, not 5",
          s->gc_lines);
    CHECK(count_matching(r.err, "^gc [0-9]+ @") == 1,
          "with a handler, gctrace lines must not reach stderr (one line "
          "after removing it):\n%s",
          r.err);
    CHECK(
        s->events[GC_EVENT_CYCLE_START] >= 5 &&
            s->events[GC_EVENT_MARK_START] == s->events[GC_EVENT_CYCLE_START] &&
            s->events[GC_EVENT_MARK_DONE] == s->events[GC_EVENT_CYCLE_START] &&
            s->events[GC_EVENT_CYCLE_END] == s->events[GC_EVENT_CYCLE_START],
        "events per kind: start %d, mark start %d, mark done %d, end %d",
        s->events[0], s->events[1], s->events[2], s->events[3]);
    CHECK(s->order_errors == 0, "%d events out of order", s->order_errors);
    CHECK(s->stats_reads == s->events[GC_EVENT_CYCLE_END],
          "gc_read_stats from the CYCLE_END handler saw num_gc == cycle %d "
          "of %d times",
          s->stats_reads, s->events[GC_EVENT_CYCLE_END]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_os_memory_after_spike),
        cmocka_unit_test(test_background_scavenger_after_spike),
        cmocka_unit_test(test_pacer_and_scav_traces),
        cmocka_unit_test(test_trace_and_event_handlers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
