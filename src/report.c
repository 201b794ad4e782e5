/*
 * report.c — one-line messages on stderr. A message is formatted into one
 * buffer and written with a single write(2), so that lines from different
 * threads never interleave, and so that it works from inside the collector
 * (no stdio locks taken while the world is stopped).
 */
#include "report.h"

#include "internal.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <stdatomic.h>

static CGC_STATE void (*_Atomic warning_handler)(const char *line);

void report_set_warning_handler(void (*fn)(const char *line))
{
    atomic_store_explicit(&warning_handler, fn, memory_order_release);
}

static void report_write(const char *fmt, va_list ap, bool fatal)
{
    char line[512];
    int n = snprintf(line, sizeof line, "cgc: ");
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    void (*handler)(const char *) =
        atomic_load_explicit(&warning_handler, memory_order_acquire);
    if (handler && !fatal) {
        line[len] = 0;
        handler(line);
        return;
    }
    line[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
}

void report_warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_write(fmt, ap, false);
    va_end(ap);
}

void report_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_write(fmt, ap, true);
    va_end(ap);
    abort();
}
