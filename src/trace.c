/*
 * trace.c — routing trace lines and phase events (see trace.h).
 *
 * The handlers are set by the program at any time and read by the
 * collector thread, so each is a pair published together: a mutex guards
 * them, taken once per line or event (a few per cycle).
 */
#include "trace.h"
#include "fork.h"

#include "internal.h"
#include "os.h"
#include "pacer.h"
#include "threads.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static CGC_STATE struct {
    pthread_mutex_t lock;
    gc_trace_fn line_fn;
    void *line_data;
    gc_event_fn event_fn;
    void *event_data;
} handlers = {.lock = PTHREAD_MUTEX_INITIALIZER};

void gc_set_trace_handler(gc_trace_fn fn, void *data)
{
    struct gc_thread *self = threads_enter_library();
    pthread_mutex_lock(&handlers.lock);
    handlers.line_fn = fn;
    handlers.line_data = data;
    pthread_mutex_unlock(&handlers.lock);
    threads_leave_library(self);
}

void gc_set_event_handler(gc_event_fn fn, void *data)
{
    struct gc_thread *self = threads_enter_library();
    pthread_mutex_lock(&handlers.lock);
    handlers.event_fn = fn;
    handlers.event_data = data;
    pthread_mutex_unlock(&handlers.lock);
    threads_leave_library(self);
}

void trace_line(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line - 2 ? (size_t)n : sizeof line - 2;
    pthread_mutex_lock(&handlers.lock);
    gc_trace_fn fn = handlers.line_fn;
    void *data = handlers.line_data;
    pthread_mutex_unlock(&handlers.lock);
    if (fn) {
        line[len] = 0;
        fn(line, data);
        return;
    }
    line[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
}

void trace_event(enum gc_event_kind kind, uint32_t cycle)
{
    pthread_mutex_lock(&handlers.lock);
    gc_event_fn fn = handlers.event_fn;
    void *data = handlers.event_data;
    pthread_mutex_unlock(&handlers.lock);
    if (!fn)
        return;
    gc_event ev = {
        .kind = kind,
        .cycle = cycle,
        .time_ns = os_monotonic_ns(),
        .heap_live = pacer_heap_live(),
        .heap_goal = pacer_heap_goal(),
    };
    fn(&ev, data);
}

void trace_format_float(char *buf, size_t size, double v)
{
    /* Go prints a sign, six decimals and a signed three-digit exponent. */
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%+.6e", v);
    char *e = strchr(tmp, 'e');
    if (!e) {
        snprintf(buf, size, "%s", tmp);
        return;
    }
    int exponent = 0;
    sscanf(e + 1, "%d", &exponent);
    *e = 0;
    snprintf(buf, size, "%se%c%03d", tmp, exponent < 0 ? '-' : '+',
             exponent < 0 ? -exponent : exponent);
}

void trace_fork(enum fork_phase phase)
{
    fork_mutex(&handlers.lock, phase);
}
