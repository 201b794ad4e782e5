/*
 * warn.c — GC_set_warn_proc and the out-of-memory function.
 *
 * cgc's warnings (report.c) go through the program's warn proc once the
 * layer is initialised. bdwgc passes warn procs a printf format with one
 * argument; cgc's text is passed with every '%' doubled, so a proc that
 * formats it prints it as it is, and arg 0.
 */
#include "bdwgc.h"

#include "report.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void default_warn_proc(char *msg, GC_word arg)
{
    char line[600];
    int n = snprintf(line, sizeof line, "GC Warning: ");
    /* The format is the collector's, never the program's data. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(line + n, sizeof line - (size_t)n, msg, arg);
#pragma GCC diagnostic pop
    ssize_t ignored = write(STDERR_FILENO, line, strlen(line));
    (void)ignored;
}

/* bdwgc's default: the allocation returns NULL. */
static void *default_oom_fn(size_t bytes)
{
    (void)bytes;
    return NULL;
}

static GC_warn_proc _Atomic warn_proc = default_warn_proc;
static GC_oom_func _Atomic oom_fn = default_oom_fn;

void GC_ignore_warn_proc(char *msg, GC_word arg)
{
    (void)msg, (void)arg;
}

void GC_set_warn_proc(GC_warn_proc fn)
{
    atomic_store_explicit(&warn_proc, fn ? fn : default_warn_proc,
                          memory_order_relaxed);
}

GC_warn_proc GC_get_warn_proc(void)
{
    return atomic_load_explicit(&warn_proc, memory_order_relaxed);
}

/* cgc's line, "cgc: ...", to the warn proc as a format with no directive. */
static void forward_warning(const char *line)
{
    char format[1100];
    size_t n = 0;
    for (const char *p = line; *p && n + 3 < sizeof format; p++) {
        if (*p == '%')
            format[n++] = '%';
        format[n++] = *p;
    }
    format[n++] = '\n';
    format[n] = 0;
    atomic_load_explicit(&warn_proc, memory_order_relaxed)(format, 0);
}

void bdwgc_warn_init(void)
{
    report_set_warning_handler(forward_warning);
}

void GC_set_oom_fn(GC_oom_func fn)
{
    atomic_store_explicit(&oom_fn, fn ? fn : default_oom_fn,
                          memory_order_relaxed);
}

GC_oom_func GC_get_oom_fn(void)
{
    return atomic_load_explicit(&oom_fn, memory_order_relaxed);
}

void *bdwgc_out_of_memory(size_t bytes)
{
    return atomic_load_explicit(&oom_fn, memory_order_relaxed)(bytes);
}
