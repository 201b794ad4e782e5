/*
 * test_env — the CGC_* environment variables.
 *
 * Each case runs in a forked child (this process never initialises the
 * collector itself): the child sets the variables, calls gc_init,
 * allocates, collects several times and sends two gc_stats snapshots back
 * through a pipe; its stderr goes to a temporary file. Checked:
 *   - malformed CGC_PERCENT ("abc", "-5x", "", ...), CGC_WORKERS ("0",
 *     "many", "100000", ...) and CGC_DEBUG items ("gctrace=banana",
 *     "gctrace=2", "nonsense") are reported exactly once, on a line starting
 *     with "cgc: " that names the variable (and the bad CGC_DEBUG item), and
 *     the default is used; the valid items of CGC_DEBUG next to a bad one
 *     still apply (as GODEBUG);
 *   - valid values are honoured (gc_percent, mark_workers) and not
 *     reported; CGC_PERCENT=off disables automatic collection (num_gc
 *     stays 0 over 100 MB of garbage);
 *   - CGC_DEBUG=gctrace=1 prints one line per cycle in Go's gctrace
 *     grammar, numbered from 1, with " (forced)" after gc_collect's cycles.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <regex.h>
#include <sched.h>

#define MiB ((size_t)1 << 20)

enum mode { M_BASIC, M_OFF, M_TRACE };

struct spec {
    const char *percent; /* NULL: unset */
    const char *workers;
    const char *debug;
    enum mode mode;
};

struct outcome {
    int ok;        /* the child exited 0 and sent both snapshots */
    char how[128]; /* how the child ended */
    char *err;     /* its stderr (valid until the next run) */
    gc_stats a, b; /* after the workload; at the end */
};

static NOINLINE void garbage(size_t bytes)
{
    size_t done = 0;
    for (size_t i = 0; done < bytes; i++) {
        size_t sz = 64 + (i * 131) % 4000;
        unsigned char *p = gc_alloc(sz);
        if (!p)
            _exit(90);
        p[0] = 1;
        done += sz;
    }
}

static void child(int fd, void *arg)
{
    const struct spec *s = arg;
    unsetenv("CGC_PERCENT");
    unsetenv("CGC_WORKERS");
    unsetenv("CGC_DEBUG");
    unsetenv("CGC_MEMLIMIT");
    if (s->percent)
        setenv("CGC_PERCENT", s->percent, 1);
    if (s->workers)
        setenv("CGC_WORKERS", s->workers, 1);
    if (s->debug)
        setenv("CGC_DEBUG", s->debug, 1);
    if (gc_init() != 0)
        _exit(91);
    gc_stats *st = malloc(2 * sizeof *st);
    if (!st)
        _exit(92);
    switch (s->mode) {
    case M_BASIC:
        garbage(2 * MiB);
        gc_collect();
        garbage(2 * MiB);
        gc_collect();
        gc_init();
        gc_collect();
        gc_read_stats(&st[0]);
        gc_read_stats(&st[1]);
        break;
    case M_OFF:
        garbage(100 * MiB);
        gc_read_stats(&st[0]);
        gc_collect();
        gc_read_stats(&st[1]);
        break;
    case M_TRACE:
        garbage(48 * MiB);
        gc_read_stats(&st[0]);
        gc_collect();
        gc_collect();
        gc_read_stats(&st[1]);
        break;
    }
    write_all(fd, st, 2 * sizeof *st);
    free(st);
}

static void run(const struct spec *s, struct outcome *o)
{
    struct child_result r;
    run_child(child, (void *)s, 60, &r);
    describe_status(r.status, o->how, sizeof o->how);
    o->ok = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 &&
            r.data_len == 2 * sizeof(gc_stats);
    if (o->ok) {
        memcpy(&o->a, r.data, sizeof o->a);
        memcpy(&o->b, (char *)r.data + sizeof o->a, sizeof o->b);
    }
    o->err = r.err; /* valid until the next run */
}

static const char *describe_spec(const struct spec *s, char *buf, size_t n)
{
    snprintf(buf, n, "CGC_PERCENT=%s%s%s CGC_WORKERS=%s%s%s CGC_DEBUG=%s%s%s",
             s->percent ? "\"" : "", s->percent ? s->percent : "(unset)",
             s->percent ? "\"" : "", s->workers ? "\"" : "",
             s->workers ? s->workers : "(unset)", s->workers ? "\"" : "",
             s->debug ? "\"" : "", s->debug ? s->debug : "(unset)",
             s->debug ? "\"" : "");
    return buf;
}

#define CHECK_CHILD_OK(o, s)                                                   \
    do {                                                                       \
        char d_[256];                                                          \
        CHECK((o).ok, "[%s] child %s or sent no stats; its stderr:\n%s",       \
              describe_spec((s), d_, sizeof d_), (o).how, (o).err);            \
    } while (0)

/* The default mark worker count for n CPUs. */
static unsigned default_workers_for(long n)
{
    long w = n / 4;
    if (w < 1)
        w = 1;
    if (w > 64)
        w = 64;
    return (unsigned)w;
}

static int plausible_default_workers(uint32_t got)
{
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    long conf = sysconf(_SC_NPROCESSORS_CONF);
    long aff = online;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        aff = CPU_COUNT(&set);
    return got == default_workers_for(online) ||
           got == default_workers_for(conf) || got == default_workers_for(aff);
}

/* ---- defaults and valid values --------------------------------------------
 */

static void test_defaults(void **state)
{
    (void)state;
    struct spec s = {NULL, NULL, NULL, M_BASIC};
    struct outcome o;
    run(&s, &o);
    CHECK_CHILD_OK(o, &s);
    CHECK(count_lines(o.err, "cgc: ", NULL, NULL) == 0,
          "no variable set, yet stderr has cgc: lines:\n%s", o.err);
    CHECK(o.b.gc_percent == 100, "default gc_percent is %d, expected 100",
          o.b.gc_percent);
    CHECK(plausible_default_workers(o.b.mark_workers),
          "default mark_workers is %u; expected a quarter of the CPUs, at "
          "least 1 (%u for %ld online CPUs)",
          o.b.mark_workers, default_workers_for(sysconf(_SC_NPROCESSORS_ONLN)),
          sysconf(_SC_NPROCESSORS_ONLN));
    CHECK(o.b.num_forced_gc == 3, "3 gc_collect calls, num_forced_gc %u",
          o.b.num_forced_gc);
}

static void test_valid_values(void **state)
{
    (void)state;
    struct {
        struct spec s;
        int percent;
        unsigned workers; /* 0: the default */
    } cases[] = {
        {{"50", NULL, NULL, M_BASIC}, 50, 0},
        {{"100", NULL, NULL, M_BASIC}, 100, 0},
        {{"1000", NULL, NULL, M_BASIC}, 1000, 0},
        {{NULL, "3", NULL, M_BASIC}, 100, 3},
        {{NULL, "1", NULL, M_BASIC}, 100, 1},
        {{NULL, "64", NULL, M_BASIC}, 100, 64},
        {{"200", "2", "gcstoptheworld=1", M_BASIC}, 200, 2},
        {{NULL, NULL, "gctrace=0", M_BASIC}, 100, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct outcome o;
        char d[256];
        describe_spec(&cases[i].s, d, sizeof d);
        run(&cases[i].s, &o);
        CHECK_CHILD_OK(o, &cases[i].s);
        CHECK(count_lines(o.err, "cgc: ", NULL, NULL) == 0,
              "[%s] valid values were reported:\n%s", d, o.err);
        CHECK(o.b.gc_percent == cases[i].percent,
              "[%s] gc_percent is %d, expected %d", d, o.b.gc_percent,
              cases[i].percent);
        if (cases[i].workers)
            CHECK(o.b.mark_workers == cases[i].workers,
                  "[%s] mark_workers is %u, expected %u", d, o.b.mark_workers,
                  cases[i].workers);
        else
            CHECK(plausible_default_workers(o.b.mark_workers),
                  "[%s] mark_workers is %u, not the default", d,
                  o.b.mark_workers);
        CHECK(count_lines(o.err, "gc ", NULL, NULL) == 0,
              "[%s] gctrace lines printed without gctrace=1:\n%s", d, o.err);
    }
}

/* ---- malformed values -----------------------------------------------------
 */

static void expect_reported(const struct spec *s, const char *var,
                            struct outcome *o)
{
    char d[256];
    describe_spec(s, d, sizeof d);
    run(s, o);
    CHECK_CHILD_OK(*o, s);
    size_t naming = count_lines(o->err, "cgc: ", var, NULL);
    CHECK(naming == 1,
          "[%s] %zu lines start with \"cgc: \" and name %s; expected exactly "
          "one (reported once, even after several gc calls). stderr:\n%s",
          d, naming, var, o->err);
}

static void test_percent_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "abc", "-5x", "", "12abc", "5.5", "99999999999999999999", "of"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct spec s = {bad[i], NULL, NULL, M_BASIC};
        struct outcome o;
        expect_reported(&s, "CGC_PERCENT", &o);
        CHECK(count_lines(o.err, "cgc: ", NULL, NULL) == 1,
              "[CGC_PERCENT=\"%s\"] more than one cgc: line:\n%s", bad[i],
              o.err);
        CHECK(o.b.gc_percent == 100,
              "[CGC_PERCENT=\"%s\"] gc_percent is %d; the default 100 should "
              "be used",
              bad[i], o.b.gc_percent);
    }
}

static void test_workers_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {"0", "many", "100000", "-2", "", "3x", "65"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct spec s = {NULL, bad[i], NULL, M_BASIC};
        struct outcome o;
        expect_reported(&s, "CGC_WORKERS", &o);
        CHECK(count_lines(o.err, "cgc: ", NULL, NULL) == 1,
              "[CGC_WORKERS=\"%s\"] more than one cgc: line:\n%s", bad[i],
              o.err);
        CHECK(plausible_default_workers(o.b.mark_workers),
              "[CGC_WORKERS=\"%s\"] mark_workers is %u; the default should "
              "be used",
              bad[i], o.b.mark_workers);
    }
}

static void test_debug_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {"gctrace=banana", "nonsense",  "gctrace=", "=1",
                                "gctrace=1x",     "gctrace=2", "bogus=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct spec s = {NULL, NULL, bad[i], M_BASIC};
        struct outcome o;
        expect_reported(&s, "CGC_DEBUG", &o);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
        CHECK(count_lines(o.err, "cgc: ", NULL, NULL) == 1,
              "[CGC_DEBUG=\"%s\"] more than one cgc: line:\n%s", bad[i], o.err);
        CHECK(count_lines(o.err, "cgc: ", quoted, NULL) == 1,
              "[CGC_DEBUG=\"%s\"] the message does not name the item %s:\n%s",
              bad[i], quoted, o.err);
        CHECK(count_lines(o.err, "cgc: ", "gctrace, gcstoptheworld",
                          "scavtrace") == 1,
              "[CGC_DEBUG=\"%s\"] the message does not list the known "
              "names:\n%s",
              bad[i], o.err);
        CHECK(count_lines(o.err, "gc ", NULL, NULL) == 0,
              "[CGC_DEBUG=\"%s\"] the default (no trace) was not used:\n%s",
              bad[i], o.err);
    }
}

/* As GODEBUG: the valid items apply, each bad one is reported once
 * (naming it) and ignored. */
static void test_debug_bad_item_among_good(void **state)
{
    (void)state;
    static const struct {
        const char *debug;
        const char *bad_items[2]; /* each reported exactly once */
    } cases[] = {
        {"gctrace=1,bogus=1", {"\"bogus=1\""}},
        {"bogus=1,gctrace=1", {"\"bogus=1\""}},
        {"gcstoptheworld=1,nonsense,gctrace=1", {"\"nonsense\""}},
        {"gctrace=1,bogus=1,gctrace=2,bogus=1",
         {"\"bogus=1\"", "\"gctrace=2\""}},
        {"gctrace=1,,", {NULL}}, /* empty items are skipped, as by Go */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct spec s = {NULL, NULL, cases[i].debug, M_BASIC};
        struct outcome o;
        run(&s, &o);
        CHECK_CHILD_OK(o, &s);
        size_t expected = 0;
        for (size_t j = 0; j < 2 && cases[i].bad_items[j]; j++, expected++)
            CHECK(count_lines(o.err, "cgc: ", "CGC_DEBUG",
                              cases[i].bad_items[j]) == 1,
                  "[CGC_DEBUG=\"%s\"] %s not reported exactly once:\n%s",
                  cases[i].debug, cases[i].bad_items[j], o.err);
        CHECK(count_lines(o.err, "cgc: ", NULL, NULL) == expected,
              "[CGC_DEBUG=\"%s\"] expected %zu cgc: lines:\n%s", cases[i].debug,
              expected, o.err);
        size_t traced = count_lines(o.err, "gc ", NULL, NULL);
        CHECK(traced == o.b.num_gc && traced >= 3,
              "[CGC_DEBUG=\"%s\"] gctrace=1 was not applied: %zu gctrace "
              "lines for %u cycles:\n%s",
              cases[i].debug, traced, o.b.num_gc, o.err);
    }
}

static void test_all_malformed_at_once(void **state)
{
    (void)state;
    struct spec s = {"abc", "many", "nonsense", M_BASIC};
    struct outcome o;
    expect_reported(&s, "CGC_PERCENT", &o);
    CHECK(count_lines(o.err, "cgc: ", "CGC_WORKERS", NULL) == 1,
          "CGC_WORKERS not reported exactly once:\n%s", o.err);
    CHECK(count_lines(o.err, "cgc: ", "CGC_DEBUG", NULL) == 1,
          "CGC_DEBUG not reported exactly once:\n%s", o.err);
    CHECK(count_lines(o.err, "cgc: ", NULL, NULL) == 3,
          "expected exactly 3 cgc: lines:\n%s", o.err);
    CHECK(o.b.gc_percent == 100 && plausible_default_workers(o.b.mark_workers),
          "defaults not used: gc_percent %d, mark_workers %u", o.b.gc_percent,
          o.b.mark_workers);
}

/* ---- CGC_PERCENT=off ------------------------------------------------------
 */

static void test_percent_off(void **state)
{
    (void)state;
    struct spec s = {"off", NULL, NULL, M_OFF};
    struct outcome o;
    run(&s, &o);
    CHECK_CHILD_OK(o, &s);
    CHECK(count_lines(o.err, "cgc: ", NULL, NULL) == 0,
          "CGC_PERCENT=off was reported:\n%s", o.err);
    CHECK(o.a.gc_percent == -1, "CGC_PERCENT=off: gc_percent %d, expected -1",
          o.a.gc_percent);
    CHECK(o.a.num_gc == 0,
          "CGC_PERCENT=off: %u automatic cycles over 100 MB of garbage",
          o.a.num_gc);
    CHECK(o.a.heap_alloc >= 90 * MiB,
          "CGC_PERCENT=off: heap_alloc only %llu bytes after 100 MB of "
          "garbage",
          (unsigned long long)o.a.heap_alloc);
    CHECK(o.b.num_gc == 1 && o.b.num_forced_gc == 1,
          "CGC_PERCENT=off then gc_collect: num_gc %u, num_forced_gc %u "
          "(expected 1 and 1)",
          o.b.num_gc, o.b.num_forced_gc);
    CHECK(o.b.heap_alloc < 16 * MiB,
          "CGC_PERCENT=off then gc_collect: heap_alloc still %llu bytes",
          (unsigned long long)o.b.heap_alloc);
}

/* ---- gctrace
 * ------------------------------------------------------------------ */

#define NUM "[0-9]+(\\.[0-9]+)?"
static const char *gctrace_re =
    "^gc ([0-9]+) @[0-9]+\\.[0-9]{3}s [0-9]+%: " NUM "\\+" NUM "\\+" NUM
    " ms clock, " NUM "\\+" NUM "/" NUM "/" NUM "\\+" NUM
    " ms cpu, [0-9]+->[0-9]+->[0-9]+ MB, [0-9]+ MB goal, [0-9]+ MB stacks, "
    "[0-9]+ MB globals, [0-9]+ P( \\(forced\\))?$";

static void check_trace(const char *debug)
{
    struct spec s = {NULL, NULL, debug, M_TRACE};
    struct outcome o;
    run(&s, &o);
    CHECK_CHILD_OK(o, &s);
    CHECK(count_lines(o.err, "cgc: ", NULL, NULL) == 0,
          "CGC_DEBUG=%s was reported:\n%s", debug, o.err);
    regex_t re;
    int rc = regcomp(&re, gctrace_re, REG_EXTENDED);
    CHECK(rc == 0, "regcomp failed (%d)", rc);
    /* Scan without failing midway (nothing to leak), then check. */
    static char bad_line[1024], misnumbered[1024];
    bad_line[0] = misnumbered[0] = '\0';
    size_t lines = 0, forced = 0;
    unsigned long expect_n = 1, got_n = 0;
    char *text = strdup(o.err);
    CHECK(text != NULL, "strdup");
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "gc ", 3) != 0)
            continue;
        regmatch_t m[2];
        if (regexec(&re, line, 2, m, 0) != 0) {
            if (!bad_line[0])
                snprintf(bad_line, sizeof bad_line, "%s", line);
            continue;
        }
        unsigned long n = strtoul(line + m[1].rm_so, NULL, 10);
        if (n != expect_n && !misnumbered[0]) {
            snprintf(misnumbered, sizeof misnumbered, "%s", line);
            got_n = n;
        }
        expect_n = n + 1;
        lines++;
        if (strstr(line, " (forced)"))
            forced++;
    }
    free(text);
    regfree(&re);
    CHECK(!bad_line[0],
          "CGC_DEBUG=%s: gctrace line does not match Go's format:\n  %s\n"
          "format:\n  %s",
          debug, bad_line, gctrace_re);
    CHECK(!misnumbered[0],
          "CGC_DEBUG=%s: gctrace line numbered %lu out of sequence:\n  %s",
          debug, got_n, misnumbered);
    CHECK(o.a.num_gc >= 1,
          "48 MB of garbage ran no automatic cycle (num_gc %u)", o.a.num_gc);
    CHECK(lines == o.b.num_gc,
          "CGC_DEBUG=%s: %zu gctrace lines for num_gc = %u cycles; "
          "stderr:\n%s",
          debug, lines, o.b.num_gc, o.err);
    CHECK(forced == o.b.num_forced_gc && forced == 2,
          "CGC_DEBUG=%s: %zu lines end in \" (forced)\", num_forced_gc = %u "
          "(expected 2)",
          debug, forced, o.b.num_forced_gc);
}

static void test_gctrace(void **state)
{
    (void)state;
    check_trace("gctrace=1");
}

static void test_gctrace_with_other_options(void **state)
{
    (void)state;
    check_trace("gctrace=1,gcstoptheworld=1");
    check_trace("gcstoptheworld=1,gctrace=1");
}

static void test_gctrace_format_sample(void **state)
{
    (void)state;
    /* The regex itself accepts Go's own lines (from the design brief and
     * from Go 1.22) and rejects near misses. */
    /* Parenthesised: clang warns about concatenation inside arrays. */
    static const char *good[] = {
        ("gc 4 @0.025s 1%: 0.002+0.065+0.018 ms clock, "
         "0.021+0.040/0.057/0.003+0.14 ms cpu, 47->47->0 MB, 48 MB goal, 0 "
         "MB stacks, 0 MB globals, 2 P"),
        ("gc 12 @3.104s 0%: 0.031+1.2+0.004 ms clock, "
         "0.12+0.10/2.1/0.30+0.016 ms cpu, 4->4->1 MB, 5 MB goal, 0 MB "
         "stacks, 0 MB globals, 4 P (forced)"),
        ("gc 100 @12.000s 5%: 12+130+3 ms clock, 24+1/2/3+6 ms cpu, "
         "100->120->50 MB, 200 MB goal, 1 MB stacks, 2 MB globals, 8 P"),
    };
    static const char *bad[] = {
        "gc 4 @0.025s 1%: 0.002+0.065+0.018 ms clock, 47->47->0 MB",
        ("gc 4 @0.02s 1%: 0.002+0.065+0.018 ms clock, "
         "0.021+0.040/0.057/0.003+0.14 ms cpu, 47->47->0 MB, 48 MB goal, 0 "
         "MB stacks, 0 MB globals, 2 P"),
        ("gc 4 @0.025s 1%: 0.002+0.065+0.018 ms clock, "
         "0.021+0.040/0.057/0.003+0.14 ms cpu, 47->47->0 MB, 48 MB goal, 0 "
         "MB stacks, 0 MB globals, 2 P (forced) "),
    };
    regex_t re;
    CHECK(regcomp(&re, gctrace_re, REG_EXTENDED) == 0, "regcomp");
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(regexec(&re, good[i], 0, NULL, 0) == 0,
              "regex rejects a good line: %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(regexec(&re, bad[i], 0, NULL, 0) != 0,
              "regex accepts a bad line: %s", bad[i]);
    regfree(&re);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gctrace_format_sample),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_valid_values),
        cmocka_unit_test(test_percent_malformed),
        cmocka_unit_test(test_workers_malformed),
        cmocka_unit_test(test_debug_malformed),
        cmocka_unit_test(test_debug_bad_item_among_good),
        cmocka_unit_test(test_all_malformed_at_once),
        cmocka_unit_test(test_percent_off),
        cmocka_unit_test(test_gctrace),
        cmocka_unit_test(test_gctrace_with_other_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
