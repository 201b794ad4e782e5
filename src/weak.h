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

#include <stdbool.h>
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

/* The Boehm layer's disappearing links (compat/bdwgc/links.c) are plain
 * words the program reads without any barrier, so they must be cleared
 * before any thread can load a dead object's address from them: with the
 * world stopped, after marking, before the sweep. cgc's own handles are
 * cleared later, by the sweeper, because gc_weak_get tests mark bits.
 *
 * weak_set_mark_done_hook sets fn (NULL: none) to be called by the
 * collector thread in STW 2 (both modes) once marking is complete and
 * before the sweep generation flips, with every mutator stopped outside
 * cgc's code: fn must not allocate, call malloc/free or take a lock a
 * stopped thread may hold. Set once at initialisation (release/acquire:
 * the collector sees whatever fn's state was set up before). */
void weak_set_mark_done_hook(void (*fn)(void));
/* Called by gc.c at that point. */
void weak_run_mark_done_hook(void);

/* For that hook: what marking decided about the address p. */
enum weak_liveness {
    WEAK_NOT_HEAP, /* not in cgc's heap at all */
    WEAK_FREE,     /* in a span, but not in an allocated object */
    WEAK_UNMARKED, /* in an object this cycle's sweep frees (unless a
                    * finalizer keeps it: finalize_has_finalizer) */
    WEAK_MARKED,   /* in a reachable object */
};
/* Only with the world stopped after marking (the hook); *base gets the
 * start of the object for the last two answers. */
enum weak_liveness weak_liveness_stopped(uintptr_t p, uintptr_t *base);

#endif
