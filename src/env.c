/*
 * env.c — parsing CGC_PERCENT, CGC_MEMLIMIT, CGC_WORKERS, CGC_SIGNAL,
 * CGC_SCAN_GLOBALS and CGC_DEBUG (like Go's GOGC, GOMEMLIMIT and GODEBUG).
 * Parsing is strict: a value with trailing junk, out of range or empty is
 * malformed, reported once with the variable's name, and the default is
 * used instead. CGC_DEBUG is a list read item by item: a bad item is
 * reported (naming it) and skipped, the others apply.
 */
#include "env.h"

#include "internal.h"
#include "os.h"
#include "report.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 64
#define MAX_PERCENT 1000000

CGC_STATE struct gc_config gc_config;
/* Written before gc_init, read by it (under its lock). */
static CGC_STATE bool default_stoptheworld;

void env_default_stop_the_world(bool on)
{
    default_stoptheworld = on;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    if (!*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static void read_percent(struct gc_config *c)
{
    const char *s = getenv("CGC_PERCENT");
    c->percent = 100;
    if (!s)
        return;
    long v;
    if (strcmp(s, "off") == 0)
        c->percent = -1;
    else if (parse_long(s, 0, MAX_PERCENT, &v))
        c->percent = (int)v;
    else
        report_warning("CGC_PERCENT=\"%s\" is not a percentage from 0 to %d "
                       "or \"off\"; using 100",
                       s, MAX_PERCENT);
}

/* A byte count with an optional unit: B, KiB, MiB, GiB, TiB (as
 * GOMEMLIMIT). */
static bool parse_bytes(const char *s, int64_t *out)
{
    static const struct {
        const char *suffix;
        int shift;
    } units[] = {{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}};
    if (!*s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return false;
    int shift = -1;
    if (!*end)
        shift = 0;
    for (size_t i = 0; shift < 0 && i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].suffix) == 0)
            shift = units[i].shift;
    if (shift < 0 || v > (unsigned long long)(INT64_MAX >> shift))
        return false;
    *out = (int64_t)(v << shift);
    return true;
}

static void read_memory_limit(struct gc_config *c)
{
    const char *s = getenv("CGC_MEMLIMIT");
    c->memory_limit = -1;
    if (!s || strcmp(s, "off") == 0)
        return;
    if (!parse_bytes(s, &c->memory_limit)) {
        c->memory_limit = -1;
        report_warning("CGC_MEMLIMIT=\"%s\" is not a byte count (a number with "
                       "an optional B, KiB, MiB, GiB or TiB suffix) or "
                       "\"off\"; using no limit",
                       s);
    }
}

static void read_workers(struct gc_config *c)
{
    const char *s = getenv("CGC_WORKERS");
    unsigned fallback = (unsigned)os_cpu_count() / 4;
    if (fallback < 1)
        fallback = 1;
    c->workers = fallback;
    if (!s)
        return;
    long v;
    if (parse_long(s, 1, MAX_WORKERS, &v))
        c->workers = (unsigned)v;
    else
        report_warning("CGC_WORKERS=\"%s\" is not a number of workers from 1 "
                       "to %d; using %u",
                       s, MAX_WORKERS, fallback);
}

static void read_scan_globals(struct gc_config *c)
{
    const char *s = getenv("CGC_SCAN_GLOBALS");
    c->scan_globals = true;
    if (!s || strcmp(s, "1") == 0)
        return;
    if (strcmp(s, "0") == 0)
        c->scan_globals = false;
    else
        report_warning("CGC_SCAN_GLOBALS=\"%s\" is not 0 or 1; using 1 (scan "
                       "the data, bss and thread-local storage of every "
                       "module)",
                       s);
}

/* The preemption signal's default: a real-time signal that the Boehm
 * collector (SIGPWR, SIGXCPU), Go (SIGURG), the JVM (SIGUSR2, SIGQUIT),
 * .NET (SIGRTMIN), glibc (the two below SIGRTMIN) and Valgrind (SIGRTMAX)
 * leave alone. Real-time signals are never merged, so none is lost. */
#define DEFAULT_SIGNAL_OFFSET 7

/* Signals CGC_SIGNAL may not name: they cannot be caught, or report faults
 * the program must see. */
static bool signal_allowed(long sig)
{
    switch (sig) {
    case SIGKILL:
    case SIGSTOP:
    case SIGSEGV:
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
    case SIGABRT:
    case SIGTRAP:
    case SIGCHLD:
        return false;
    default:
        return sig >= 1 && sig <= SIGRTMAX;
    }
}

static bool parse_signal(const char *s, long *out)
{
    static const struct {
        const char *name;
        int number;
    } names[] = {{"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2},
                 {"SIGPWR", SIGPWR},   {"SIGXCPU", SIGXCPU},
                 {"SIGURG", SIGURG},   {"SIGWINCH", SIGWINCH},
                 {"SIGPROF", SIGPROF}, {"SIGVTALRM", SIGVTALRM}};
    long n;
    if (strncmp(s, "SIGRTMIN+", 9) == 0 && parse_long(s + 9, 0, 64, &n))
        n += SIGRTMIN;
    else if (strncmp(s, "SIGRTMAX-", 9) == 0 && parse_long(s + 9, 0, 64, &n))
        n = SIGRTMAX - n;
    else if (!parse_long(s, 1, SIGRTMAX, &n)) {
        n = -1;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcmp(s, names[i].name) == 0)
                n = names[i].number;
    }
    if (!signal_allowed(n))
        return false;
    *out = n;
    return true;
}

static void read_signal(struct gc_config *c)
{
    const char *s = getenv("CGC_SIGNAL");
    c->signal = SIGRTMIN + DEFAULT_SIGNAL_OFFSET;
    long v;
    if (!s)
        return;
    if (parse_signal(s, &v))
        c->signal = (int)v;
    else
        report_warning("CGC_SIGNAL=\"%s\" is not a signal cgc can use (a "
                       "number, SIGRTMIN+N, SIGRTMAX-N, SIGUSR1, SIGUSR2, "
                       "SIGPWR, ...; not SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, "
                       "SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGCHLD); using "
                       "SIGRTMIN+%d (%d)",
                       s, DEFAULT_SIGNAL_OFFSET, c->signal);
}

/* One "name=value" item of CGC_DEBUG: applied to *c if it is valid,
 * otherwise reported (unless `quiet`) with the names it may take. */
static void debug_item(struct gc_config *c, const char *item, size_t len,
                       bool quiet)
{
    static const struct {
        const char *name;
        size_t offset;
    } flags[] = {
        {"gctrace", offsetof(struct gc_config, gctrace)},
        {"gcstoptheworld", offsetof(struct gc_config, stoptheworld)},
        {"gccheckmark", offsetof(struct gc_config, checkmark)},
        {"clobberfree", offsetof(struct gc_config, clobberfree)},
        {"gcpacertrace", offsetof(struct gc_config, pacertrace)},
        {"scavtrace", offsetof(struct gc_config, scavtrace)},
        {"asyncpreemptoff", offsetof(struct gc_config, asyncpreemptoff)},
    };
    const char *eq = memchr(item, '=', len);
    if (eq && len - (size_t)(eq - item) == 2 &&
        (eq[1] == '0' || eq[1] == '1')) {
        size_t name_len = (size_t)(eq - item);
        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
            if (strlen(flags[i].name) == name_len &&
                memcmp(flags[i].name, item, name_len) == 0) {
                *(bool *)((char *)c + flags[i].offset) = eq[1] == '1';
                return;
            }
        }
    }
    if (quiet)
        return;
    char names[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        int n = snprintf(names + used, sizeof names - used, "%s%s",
                         i ? ", " : "", flags[i].name);
        if (n < 0 || (size_t)n >= sizeof names - used)
            break;
        used += (size_t)n;
    }
    report_warning("CGC_DEBUG item \"%.*s\" is not name=0 or name=1 with "
                   "a name among %s; ignoring it",
                   (int)len, item, names);
}

/* Whether the item [item, item+len) of s already occurred before it. */
static bool seen_before(const char *s, const char *item, size_t len)
{
    for (const char *p = s; p < item;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && memcmp(p, item, len) == 0)
            return true;
        p += n + 1;
    }
    return false;
}

/* As GODEBUG: every valid item applies (a later one wins), a malformed or
 * unknown one is reported once and ignored, empty items are skipped. */
static void read_debug(struct gc_config *c)
{
    c->gctrace = false;
    c->stoptheworld = default_stoptheworld;
    c->checkmark = false;
    c->clobberfree = false;
    c->pacertrace = false;
    c->scavtrace = false;
    c->asyncpreemptoff = false;
    const char *s = getenv("CGC_DEBUG");
    if (!s)
        return;
    for (const char *item = s; *item;) {
        const char *comma = strchr(item, ',');
        size_t len = comma ? (size_t)(comma - item) : strlen(item);
        if (len)
            debug_item(c, item, len, seen_before(s, item, len));
        item += len + (comma ? 1 : 0);
    }
}

void env_read_config(struct gc_config *out)
{
    read_percent(out);
    read_memory_limit(out);
    read_workers(out);
    read_signal(out);
    read_scan_globals(out);
    read_debug(out);
}
