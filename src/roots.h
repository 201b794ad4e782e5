/*
 * roots.h — the root set: registered root ranges and the stacks and
 * registers of attached threads, all scanned conservatively.
 */
#ifndef CGC_ROOTS_H
#define CGC_ROOTS_H

#include "mark.h"

struct gc_thread;

struct root_scan_totals {
    uint64_t stack_bytes;
    uint64_t global_bytes;
};

void roots_init(void);
void roots_shutdown(void);
/* Grey everything the roots reference. The world is stopped and the
 * registry lock held; `self` is the collecting thread (or NULL). */
void roots_scan(struct marker *m, struct gc_thread *self,
                struct root_scan_totals *totals);

#endif
