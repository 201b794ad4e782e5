/*
 * report.h — messages on stderr: warnings that leave the heap as it was and
 * fatal errors for misuse that would otherwise corrupt it. Every message
 * starts with "cgc: " and names the call or variable concerned.
 */
#ifndef CGC_REPORT_H
#define CGC_REPORT_H

__attribute__((format(printf, 1, 2))) void report_warning(const char *fmt, ...);
__attribute__((format(printf, 1, 2), noreturn)) void
report_fatal(const char *fmt, ...);

/* Send warnings to fn(line) (without the trailing newline) instead of
 * stderr; NULL restores stderr. Fatal errors always go to stderr. For a
 * layer with its own warning hook (the Boehm layer's GC_set_warn_proc). fn
 * may run with the world stopped: it must not allocate from cgc. */
void report_set_warning_handler(void (*fn)(const char *line));

#endif
