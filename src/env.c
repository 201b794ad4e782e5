/*
 * env.c — parsing CGC_PERCENT, CGC_MEMLIMIT, CGC_WORKERS, CGC_SCAN_GLOBALS
 * and CGC_DEBUG (like Go's GOGC, GOMEMLIMIT and GODEBUG). Parsing is strict:
 * a value with trailing junk, out of range or empty is malformed, reported
 * once with the variable's name, and the default is used instead.
 */
#include "env.h"

#include "internal.h"
#include "os.h"
#include "report.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 64
#define MAX_PERCENT 1000000

CGC_STATE struct gc_config gc_config;

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

/* One "name=value" item of CGC_DEBUG; false if malformed. */
static bool debug_item(struct gc_config *c, const char *item, size_t len)
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
    };
    const char *eq = memchr(item, '=', len);
    if (!eq)
        return false;
    size_t name_len = (size_t)(eq - item);
    size_t value_len = len - name_len - 1;
    if (value_len != 1 || (eq[1] != '0' && eq[1] != '1'))
        return false;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (strlen(flags[i].name) == name_len &&
            memcmp(flags[i].name, item, name_len) == 0) {
            *(bool *)((char *)c + flags[i].offset) = eq[1] == '1';
            return true;
        }
    }
    return false;
}

static void read_debug(struct gc_config *c)
{
    c->gctrace = false;
    c->stoptheworld = false;
    c->checkmark = false;
    c->clobberfree = false;
    c->pacertrace = false;
    c->scavtrace = false;
    const char *s = getenv("CGC_DEBUG");
    if (!s || !*s)
        return;
    struct gc_config parsed = *c;
    bool ok = true;
    for (const char *item = s; ok && *item;) {
        const char *comma = strchr(item, ',');
        size_t len = comma ? (size_t)(comma - item) : strlen(item);
        ok = debug_item(&parsed, item, len);
        item += len + (comma ? 1 : 0);
    }
    if (ok)
        *c = parsed;
    else
        report_warning("CGC_DEBUG=\"%s\" is not a comma-separated list of "
                       "gctrace, gcstoptheworld, gccheckmark, clobberfree, "
                       "gcpacertrace, scavtrace, each =0 or =1; ignoring it",
                       s);
}

void env_read_config(struct gc_config *out)
{
    read_percent(out);
    read_memory_limit(out);
    read_workers(out);
    read_scan_globals(out);
    read_debug(out);
}
