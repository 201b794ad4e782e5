/*
 * globals.h — the static data of every loaded module and the static
 * thread-local storage of attached threads, as roots (CGC_SCAN_GLOBALS,
 * on by default).
 *
 * Data is found afresh at each scan with dl_iterate_phdr, so a library
 * dlopen'ed since the last cycle is scanned and one dlclose'd is not. A
 * thread's static TLS is located once, by the thread itself, when it
 * attaches (globals_note_thread_tls) and scanned with its stack.
 */
#ifndef CGC_GLOBALS_H
#define CGC_GLOBALS_H

#include "mark.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A thread's static TLS is one contiguous area; cgc's own pointer-holding
 * TLS word (thread_current_record, in a static link) may cut it in two. */
#define GLOBALS_TLS_RANGES 2

struct globals_tls {
    unsigned count;
    struct {
        uintptr_t lo, hi;
    } range[GLOBALS_TLS_RANGES];
};

typedef void (*globals_range_fn)(uintptr_t lo, uintptr_t hi, bool is_stack,
                                 void *ctx);

/* Grey what the data and bss of every loaded module (minus RELRO and cgc's
 * own state) reference; bytes scanned. The world may run. */
uint64_t globals_scan(struct marker *m);

/* Run fn(arg) holding the loader's module-list lock (inside a
 * dl_iterate_phdr callback; the lock is recursive, so fn may enumerate
 * modules). Whoever reads module data with the world stopped does so
 * inside it: a thread the preemption signal stops can then not be holding
 * that lock, and no module can be unmapped meanwhile. fn must not use
 * dlopen, dlclose or dladdr. With CGC_SCAN_GLOBALS=0 fn just runs. */
void globals_with_loader_held(void (*fn)(void *), void *arg);
/* Call fn(lo, hi, false, ctx) on each of those ranges. fn runs while the
 * loader's module list is locked: it must not call dlopen, dlclose, dladdr
 * or dl_iterate_phdr. */
void globals_for_each_range(globals_range_fn fn, void *ctx);

/* Called by the attaching thread itself: record its static TLS area, or
 * nothing when scanning is off, the architecture is not supported, or the
 * area lies inside [stack_lo, stack_hi) (glibc puts a created thread's TLS
 * at the top of its stack block, which the stack scan covers already). */
void globals_note_thread_tls(struct globals_tls *tls, uintptr_t stack_lo,
                             uintptr_t stack_hi);
/* Grey what a thread's recorded TLS references; bytes scanned. */
uint64_t globals_scan_tls(struct marker *m, const struct globals_tls *tls);
void globals_for_each_tls_range(const struct globals_tls *tls,
                                globals_range_fn fn, void *ctx);

/* Describe addr if it lies in the data of a loaded module, e.g. "global
 * `table`+16 in /usr/lib/libfoo.so", or, without a dynamic symbol covering
 * it, "the data of /path/exe at link-time address 0x4010 (...)". false (and
 * buf untouched) otherwise. Takes the loader's locks: never call it inside
 * globals_for_each_range's fn; with the world stopped (checkmark's abort)
 * it waits if a stopped thread holds them, which a thread parked inside a
 * constructor that dlopen runs would. */
bool globals_describe(uintptr_t addr, char *buf, size_t size);

#endif
