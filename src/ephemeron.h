/*
 * ephemeron.h — ephemerons: a value kept alive only while its key is
 * reachable, through paths other than the value itself.
 *
 * An ephemeron is a pointer-free GC object (so ordinary marking traces
 * neither field) holding a weak pointer to its key and the value. A record
 * on the ephemeron's own span lists it. Marking traces ephemerons as a
 * fixpoint at termination: for each ephemeron that is marked, its key's
 * weak handle is greyed, and if the key is marked its value too; the
 * concurrent termination loop repeats while that greys anything new, so
 * chains (a value that is another ephemeron's key) resolve in one cycle.
 * The key's death clears the weak pointer (weak.c), after which neither
 * accessor returns anything; an ephemeron the program dropped is swept
 * like any object and its record dropped with it, so it keeps nothing.
 */
#ifndef CGC_EPHEMERON_H
#define CGC_EPHEMERON_H

#include <stdbool.h>
#include <stdint.h>

struct marker;
struct span;

/* Whether any ephemeron exists (a cheap test before a fixpoint pass). */
bool ephemerons_exist(void);
/* One pass: grey what marked ephemerons keep (see above). */
void ephemerons_trace(struct marker *m);
/* The sweeper claimed s, whose objects include ephemerons: drop the
 * records of the unmarked ones. */
void ephemeron_sweep_span(struct span *s);
void ephemeron_shutdown(void);

#endif
