/*
 * weak.h — weak pointers (Go's weak.Pointer, done as Go does it).
 *
 * gc_weak_new gives an object one handle: a small pointer-free GC object
 * holding the object's address, so the handle does not keep it alive. A
 * record on the object's span links the object to its handle, and the
 * handles of all records are mark roots, so a handle lives at least as long
 * as its object. The sweeper that claims a span with records clears the
 * handles of its unmarked objects first (before finalizers are queued and
 * before any mark bit changes), then drops their records.
 *
 * Reading (gc_weak_get) after a mark and before the object's span is swept
 * must already say NULL for an unmarked object: the reader looks at the
 * span's sweep generation and, for an unswept span, at the mark bit, and
 * retries if the span's sweep began meanwhile (the sweeper clears mark
 * bits with release stores after claiming the span). While marking runs,
 * the object returned is shaded through the write barrier: turning a weak
 * pointer into a strong one is a pointer store the marker must see.
 */
#ifndef CGC_WEAK_H
#define CGC_WEAK_H

#include <stdint.h>

struct gc_weak;
struct marker;
struct span;

/* Mark roots: the handle of every object that has one. */
void weak_scan_roots(struct marker *m);
/* The sweeper claimed s, which has had weak pointers: clear the handles of
 * its unmarked (or gc_free'd) objects. Before the mark bits change. */
void weak_sweep_span(struct span *s);
uint64_t weak_cleared_count(void);
/* The object a handle names, 0 once cleared (no liveness test: for the
 * marker, which reads mark bits itself). */
uintptr_t weak_target(const struct gc_weak *w);
void weak_shutdown(void);

#endif
