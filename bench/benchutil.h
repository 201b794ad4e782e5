/*
 * benchutil.h — helpers shared by the benchmarks and independent of the
 * allocator: clocks, peak RSS, a latency histogram, a small PRNG, argument
 * parsing and the RESULT line.
 *
 * Everything is static so each benchmark stays one translation unit.
 */
#ifndef BENCH_BENCHUTIL_H
#define BENCH_BENCHUTIL_H

/* clock_gettime, pthread barriers and nanosleep are POSIX, not ISO C: ask
 * for them explicitly so a strict -std=c11 build works too. Must come
 * before the first system header, hence in every bench header. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#if defined(__GNUC__) || defined(__clang__)
#define BU_UNUSED __attribute__((unused))
#else
#define BU_UNUSED
#endif

static BU_UNUSED uint64_t bu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Peak resident set of the whole process, in KiB (Linux reports KiB). */
static BU_UNUSED long bu_maxrss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss;
}

/* xorshift64*: fast, deterministic, and good enough to scatter sizes and
 * slots; the benchmarks must not spend their time in the PRNG. */
static BU_UNUSED uint64_t bu_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ------------------------------------------------------------------------
 * Latency histogram. Keeping every sample of a multi-second run would take
 * gigabytes and distort the peak RSS being measured, so values are binned
 * log-linearly: exact below 128 ns, then 64 bins per power of two (under
 * 1.6% relative error), which is finer than the run-to-run noise. The
 * maximum is kept exactly.
 * ------------------------------------------------------------------------ */
#define BU_HIST_LINEAR 128
#define BU_HIST_SUB    64
#define BU_HIST_BINS   (BU_HIST_LINEAR + (64 - 7) * BU_HIST_SUB)

struct bu_hist {
    uint64_t count;
    uint64_t sum;
    uint64_t max;
    uint64_t bin[BU_HIST_BINS];
};

static inline unsigned bu_hist_index(uint64_t v)
{
    if (v < BU_HIST_LINEAR)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 7 */
    unsigned sub = (unsigned)(v >> (e - 6)) & (BU_HIST_SUB - 1);
    return BU_HIST_LINEAR + (e - 7) * BU_HIST_SUB + sub;
}

/* Lower bound of bin i, the value reported for a percentile in it. */
static BU_UNUSED uint64_t bu_hist_value(unsigned i)
{
    if (i < BU_HIST_LINEAR)
        return i;
    unsigned e = (i - BU_HIST_LINEAR) / BU_HIST_SUB + 7;
    uint64_t sub = (i - BU_HIST_LINEAR) % BU_HIST_SUB;
    return ((uint64_t)BU_HIST_SUB + sub) << (e - 6);
}

static inline void bu_hist_add(struct bu_hist *h, uint64_t v)
{
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
    h->bin[bu_hist_index(v)]++;
}

/* Nearest-rank percentile, p in [0, 100]. */
static BU_UNUSED uint64_t bu_hist_pct(const struct bu_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)((double)h->count * p / 100.0 + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BU_HIST_BINS; i++) {
        seen += h->bin[i];
        if (seen >= rank) {
            uint64_t v = bu_hist_value(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

/* ------------------------------------------------------------------------
 * Arguments: "--name value" or "--name=value"; anything unknown is an
 * error so a typo in the driver script cannot silently run defaults.
 * ------------------------------------------------------------------------ */
static BU_UNUSED void bu_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* If argv[*i] is option `name` (as "--name V" or "--name=V"), return its
 * value and advance *i past it; otherwise NULL. */
static BU_UNUSED const char *bu_opt_value(int argc, char **argv, int *i,
                                          const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strcmp(a, name) == 0) {
        if (*i + 1 >= argc)
            bu_die("%s: missing value", name);
        return argv[++*i];
    }
    if (strncmp(a, name, n) == 0 && a[n] == '=')
        return a + n + 1;
    return NULL;
}

/* If argv[*i] is option `name`, store its value in *out, advance *i past
 * it and return 1; otherwise return 0. */
static BU_UNUSED int bu_opt_long(int argc, char **argv, int *i,
                                 const char *name, long *out)
{
    const char *val = bu_opt_value(argc, argv, i, name);
    if (!val)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end)
        bu_die("%s: not an integer: '%s'", name, val);
    *out = v;
    return 1;
}

static BU_UNUSED int bu_opt_double(int argc, char **argv, int *i,
                                   const char *name, double *out)
{
    const char *val = bu_opt_value(argc, argv, i, name);
    if (!val)
        return 0;
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end)
        bu_die("%s: not a number: '%s'", name, val);
    *out = v;
    return 1;
}

/* A run asked for something this build lacks (a feature of a newer cgc,
 * say): not a failure, the configuration does not apply. scripts/bench
 * recognises the line and the exit status 3 and skips the run. */
static BU_UNUSED void bu_unsupported(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("UNSUPPORTED ");
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    exit(3);
}

/* Overwrite the stack below the caller with zeros: a conservative scan
 * must not find a stale pointer to a dropped object left there by earlier
 * calls or by the allocator, in a benchmark that checks that dropped
 * objects were collected. */
static BU_UNUSED __attribute__((noinline)) void bu_clear_stack(void)
{
    char pad[16384];
    memset(pad, 0, sizeof pad);
    __asm__ volatile("" : : "r"(pad) : "memory"); /* keep the memset */
}

/* ------------------------------------------------------------------------
 * The RESULT line: "RESULT key=value ...", one line, parsed by
 * scripts/bench. A value the backend cannot provide is "-".
 * ------------------------------------------------------------------------ */
static BU_UNUSED void bu_result_begin(const char *bench, const char *backend)
{
    printf("RESULT bench=%s backend=%s", bench, backend);
}

static BU_UNUSED void bu_result_str(const char *key, const char *v)
{
    printf(" %s=%s", key, v);
}

static BU_UNUSED void bu_result_long(const char *key, long v)
{
    if (v < 0)
        printf(" %s=-", key);
    else
        printf(" %s=%ld", key, v);
}

static BU_UNUSED void bu_result_u64(const char *key, uint64_t v)
{
    printf(" %s=%" PRIu64, key, v);
}

/* Negative means "not available". */
static BU_UNUSED void bu_result_double(const char *key, double v, int prec)
{
    if (v < 0)
        printf(" %s=-", key);
    else
        printf(" %s=%.*f", key, prec, v);
}

static BU_UNUSED void bu_result_end(void)
{
    printf("\n");
    fflush(stdout);
}

#endif /* BENCH_BENCHUTIL_H */
