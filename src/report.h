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

#endif
