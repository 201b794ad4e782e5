/*
 * roots.h — the root set: registered root ranges, the stacks and
 * registers of attached threads, and (globals.h) the data of loaded modules
 * and the threads' static TLS, all scanned conservatively.
 */
#ifndef CGC_ROOTS_H
#define CGC_ROOTS_H

#include "mark.h"
#include "threads.h"

struct gc_thread;

/* Bytes of stacks, and of registered roots, module data and TLS (the
 * gctrace "globals"), scanned since the last call. */
struct root_scan_totals {
    uint64_t stack_bytes;
    uint64_t global_bytes;
};
void roots_take_totals(struct root_scan_totals *out);

void roots_init(void);
void roots_shutdown(void);

/* Grey everything the roots reference, with the world stopped and the
 * registry lock held (stop-the-world mode). */
void roots_scan_all_stopped(struct marker *m);

/* Concurrent mode. Registered roots and module data, while the world
 * runs. */
void roots_scan_registered(struct marker *m);
/* The calling thread's own stack, registers and TLS, at a safepoint. */
void roots_scan_own_stack(struct gc_thread *t);
/* A thread held still by the caller: with the world stopped, `how` is
 * t->stopped_as; while marking runs, THREAD_CLAIMED for a thread claimed in
 * its blocking region, THREAD_SUSPENDED for one held in its signal handler.
 * Aborts for THREAD_RUNNING. */
void roots_scan_thread(struct marker *m, struct gc_thread *t,
                       enum thread_state how);

/* Call fn on every root range: each stopped thread's stack parts
 * (is_stack) and TLS, each registered root, the module data (fn then runs
 * with the loader's module list locked, see globals.h). World stopped,
 * registry locked. */
void roots_for_each_range(void (*fn)(uintptr_t lo, uintptr_t hi, bool is_stack,
                                     void *ctx),
                          void *ctx);

#endif
