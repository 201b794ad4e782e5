/*
 * trace.h — where the collector's trace lines and events go: by default
 * trace lines to stderr, events nowhere; gc_set_trace_handler and
 * gc_set_event_handler route them to the program's logger or metrics.
 */
#ifndef CGC_TRACE_H
#define CGC_TRACE_H

#include <cgc.h>
#include <stdint.h>

/* Emit one trace line (printf format, no trailing newline). */
__attribute__((format(printf, 1, 2))) void trace_line(const char *fmt, ...);
/* Tell the event handler, if any. */
void trace_event(enum gc_event_kind kind, uint32_t cycle);
/* Go's print() of a float64: +1.234560e+002. */
void trace_format_float(char *buf, size_t size, double v);

#endif
