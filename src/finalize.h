/*
 * finalize.h — finalizers (Go's runtime.SetFinalizer, done as Go does it).
 *
 * A finalizer record hangs off its object's span (as Go's specials). At
 * every mark the roots include the *contents* of each object with a
 * finalizer, not the object itself: what it references stays alive, and an
 * object only its finalizable referrer reaches is not finalized before it
 * (ordering). The sweeper that claims a span with records looks at their
 * mark bits before anything else: an unmarked object is marked again (so
 * this sweep keeps it), its record moves to the ready queue, and it stays
 * alive as a root of the next marks until its finalizer has run. An object
 * freed with gc_free loses its record unrun.
 *
 * Records, the span lists and the ready queue are under one lock, taken
 * only by gc_set_finalizer, the sweep of a span with records, the root
 * scan and whoever runs finalizers; the lock comes before the mark lock.
 */
#ifndef CGC_FINALIZE_H
#define CGC_FINALIZE_H

#include <cgc.h>
#include <stdbool.h>
#include <stdint.h>

struct marker;
struct span;

/* Mark roots: the contents of every object with a finalizer, and every
 * object whose finalizer is queued. */
void finalize_scan_roots(struct marker *m);

/* The sweeper claimed s, which has had finalizers (has_finalizers): queue
 * the finalizers of its unmarked objects and mark those objects. Call it
 * before the sweep reads the mark bits. */
void finalize_sweep_span(struct span *s);

void finalize_read_counts(gc_stats *out);

/* For the Boehm layer (GC_register_finalizer): set fn(obj, data) as obj's
 * finalizer, replacing any (fn NULL removes it), and return the one it had
 * in old_fn and old_data (NULL if none). 0, or -1 with errno EINVAL (obj not
 * the start of a live GC object) or ENOMEM. Thread-safe. */
int finalize_replace(void *obj, gc_finalizer_fn fn, void *data,
                     gc_finalizer_fn *old_fn, void **old_data);

/* For the Boehm layer's long links (weak_set_mark_done_hook): whether the
 * object starting at obj has a finalizer registered (not a cleanup), i.e.
 * whether this cycle's sweep resurrects it if it is unmarked. Takes the
 * lock; safe with the world stopped (every holder is inside cgc). */
bool finalize_has_finalizer(uintptr_t obj);

/* Whether finalizers or cleanups are queued to run (a hint: it may lag). */
bool finalize_ready(void);

/* gccheckmark, world stopped: say once of each pending cleanup whose arg
 * reaches its object (reaches(arg, obj)) that it can never run. */
void finalize_check_cleanups(bool (*reaches)(uintptr_t from, uintptr_t to));

/* gc_shutdown: stop the finalizer thread and drop every record (pending
 * finalizers do not run). */
void finalize_shutdown(void);

#endif
