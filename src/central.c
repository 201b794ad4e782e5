/*
 * central.c — per-class span lists (see central.h).
 *
 * Lists are singly linked stacks through span->next, protected by the
 * class's lock. A span on an unswept list always has sweepgen sg - 2;
 * popping it under the lock and storing sg - 1 is the claim that makes its
 * sweeper unique (sweep.h).
 */
#include "central.h"
#include "fork.h"

#include "sweep.h"

#include <pthread.h>

/* How many unswept full spans one acquire may sweep looking for a free slot
 * before it gives up and takes a fresh span (Go's spanBudget). */
#define SWEEP_BUDGET 100

struct span_stack {
    struct span *head;
    _Atomic uint32_t *count; /* the class's count for this list's pair */
};

struct central {
    pthread_mutex_t lock;
    /* Indexed by (sweepgen / 2) % 2: [swept] and [1 - swept]. */
    struct span_stack partial[2];
    struct span_stack full[2];
    /* Spans on partial[k] and full[k]: written under the lock, read
     * without it (relaxed) to skip classes with nothing to sweep, which a
     * stale value only delays or makes take the lock for nothing. */
    _Atomic uint32_t count[2];
} __attribute__((aligned(64)));

static CGC_STATE struct central centrals[NUM_SPAN_CLASSES];
/* Spans on all unswept lists: set just before the generation flips,
 * decremented by each claim; lets a sweeper see "nothing left" without
 * visiting every class (relaxed: a stale value costs one useless pass).
 * A low count would end a quick sweep early; sweep_finish's thorough pass
 * does not rely on it (sweep.c), but gccheckmark reports when marking
 * would have started over an unswept span (see central_count_unswept). */
static CGC_STATE _Atomic int64_t unswept_total;

void central_init(void)
{
    static bool locks_ready; /* set once under gc_init's lock */
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++) {
        if (!locks_ready)
            pthread_mutex_init(&centrals[i].lock, NULL);
        for (int k = 0; k < 2; k++) {
            centrals[i].partial[k].head = centrals[i].full[k].head = NULL;
            centrals[i].partial[k].count = &centrals[i].count[k];
            centrals[i].full[k].count = &centrals[i].count[k];
            atomic_store_explicit(&centrals[i].count[k], 0,
                                  memory_order_relaxed);
        }
    }
    locks_ready = true;
}

static void push(struct span_stack *st, struct span *s)
{
    s->next = st->head;
    st->head = s;
    atomic_store_explicit(
        st->count, atomic_load_explicit(st->count, memory_order_relaxed) + 1,
        memory_order_relaxed);
}

static struct span *pop(struct span_stack *st)
{
    struct span *s = st->head;
    if (s) {
        st->head = s->next;
        s->next = NULL;
        atomic_store_explicit(
            st->count,
            atomic_load_explicit(st->count, memory_order_relaxed) - 1,
            memory_order_relaxed);
    }
    return s;
}

static unsigned swept_index(void)
{
    return (sweep_current_generation() / 2) % 2;
}

static bool span_has_free(const struct span *s)
{
    return s->alloc_count < s->nelems;
}

/* Pop an unswept span and claim it; the lock is held. */
static struct span *claim(struct span_stack *st)
{
    struct span *s = pop(st);
    if (s) {
        atomic_fetch_sub_explicit(&unswept_total, 1, memory_order_relaxed);
        sweep_begin();
        atomic_store_explicit(&s->sweepgen, sweep_current_generation() - 1,
                              memory_order_relaxed);
    }
    return s;
}

void central_release(struct span *s)
{
    struct central *c = &centrals[s->span_class];
    pthread_mutex_lock(&c->lock);
    unsigned swept = swept_index();
    push(span_has_free(s) ? &c->partial[swept] : &c->full[swept], s);
    pthread_mutex_unlock(&c->lock);
}

struct span *central_acquire(unsigned span_class)
{
    struct central *c = &centrals[span_class];
    for (int budget = SWEEP_BUDGET; budget > 0; budget--) {
        pthread_mutex_lock(&c->lock);
        unsigned swept = swept_index();
        struct span *s = pop(&c->partial[swept]);
        if (s) {
            pthread_mutex_unlock(&c->lock);
            return s;
        }
        s = claim(&c->partial[1 - swept]);
        if (!s)
            s = claim(&c->full[1 - swept]);
        pthread_mutex_unlock(&c->lock);
        if (!s)
            return NULL;
        enum sweep_result r = span_sweep(s);
        sweep_end();
        if (r == SWEEP_KEPT) {
            if (span_has_free(s))
                return s;
            central_release(s);
        }
    }
    return NULL;
}

/* Counted before the flip, not after: the background sweeper is not
 * stopped with the world, and one already inside central_claim_unswept
 * (past its unswept_total test, between two classes, holding no lock) may
 * pop a span from the new unswept lists the moment the generation flips.
 * Counted after the flip, that span could be missing from the class count
 * read here while its claim's decrement landed after the store: the total
 * then counted one low, sweep_finish stopped with a span unswept, and the
 * next cycle marked over that span's stale mark bits (objects it held
 * were skipped as already marked) or had the sweeper wipe its new ones.
 * Before the flip the lists counted here are the swept ones: only this
 * thread pushes to them now and nobody pops them (a claim pops the
 * unswept lists, which are empty), so the count is exact. */
void central_count_unswept(void)
{
    unsigned swept = swept_index();
    int64_t total = 0;
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++)
        total += atomic_load_explicit(&centrals[i].count[swept],
                                      memory_order_relaxed);
    atomic_store_explicit(&unswept_total, total, memory_order_relaxed);
}

bool central_all_swept(void)
{
    bool swept_all = true;
    for (unsigned i = 0; i < NUM_SPAN_CLASSES && swept_all; i++) {
        struct central *c = &centrals[i];
        pthread_mutex_lock(&c->lock);
        unsigned unswept = 1 - swept_index();
        swept_all = !c->partial[unswept].head && !c->full[unswept].head;
        pthread_mutex_unlock(&c->lock);
    }
    return swept_all;
}

struct span *central_claim_unswept(unsigned *cursor, bool thorough)
{
    if (!thorough &&
        atomic_load_explicit(&unswept_total, memory_order_relaxed) <= 0)
        return NULL;
    for (unsigned n = 0; n < NUM_SPAN_CLASSES; n++) {
        struct central *c = &centrals[*cursor];
        if (!thorough && atomic_load_explicit(&c->count[1 - swept_index()],
                                              memory_order_relaxed) == 0) {
            *cursor = (*cursor + 1) % NUM_SPAN_CLASSES;
            continue;
        }
        pthread_mutex_lock(&c->lock);
        unsigned unswept = 1 - swept_index();
        struct span *s = claim(&c->partial[unswept]);
        if (!s)
            s = claim(&c->full[unswept]);
        pthread_mutex_unlock(&c->lock);
        if (s)
            return s;
        *cursor = (*cursor + 1) % NUM_SPAN_CLASSES;
    }
    return NULL;
}

/* Not taken before fork: by then no thread can be inside one (mutators are
 * stopped outside cgc's code, sweeping is finished so the background
 * sweeper finds no work without taking a lock, and no cycle runs), and
 * holding all of them at once would exceed what ThreadSanitizer tracks.
 * The child re-initialises them all the same. */
void central_fork(enum fork_phase phase)
{
    if (phase != FORK_CHILD)
        return;
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++)
        fork_mutex(&centrals[i].lock, phase);
}
