/*
 * mark.c — grey work, object scanning and the mark workers (see mark.h).
 *
 * The scan loop overlaps cache misses (design §9): a popped grey object is
 * prefetched and put in a small FIFO, and the object scanned is the one that
 * entered the FIFO PREFETCH_DEPTH pops earlier, whose memory has had time to
 * arrive. Large conservative objects are scanned in OBLET_BYTES pieces, each
 * piece pushing the rest, so that one huge array spreads over all markers.
 *
 * Coordination, under mark.lock: `markers` worker threads (plus, when the
 * world is stopped, the collecting thread) and any number of helpers. A
 * marker with nothing to do is `idle`; a helper is busy from begin to end.
 * Marking is quiescent when every marker is idle, no helper is busy and no
 * buffer is queued. With the world stopped that is the end of marking; while
 * it runs, it is the collector's cue to look for grey pointers elsewhere
 * (stacks, barrier buffers) before it stops the world to finish.
 *
 * Mark bits are set with atomic OR (relaxed: whoever sets a bit first scans
 * the object; the work lock orders a buffer's pushes before its pops).
 * Scanning reads object memory that mutators may be writing while marking
 * runs concurrently: those reads are racy by design (the write barrier
 * covers every pointer they could miss) and are excluded from
 * ThreadSanitizer by attribute, function by function.
 */
#include "mark.h"
#include "fork.h"

#include "os.h"
#include "report.h"
#include "thread_role.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

/* A work buffer fills one 4 KiB page: it is mapped on its own. */
#define WORKBUF_ENTRIES 254
#define OBLET_BYTES     ((uintptr_t)128 << 10)
#define MAX_WORKERS     64
#define SPARE_WORKBUFS  64
/* Roots are greyed in slices, each followed by draining what it found, so
 * a huge root (a table of millions of pointers) never queues them all. */
#define ROOT_SLICE_BYTES ((uintptr_t)64 << 10)

struct workbuf {
    struct workbuf *next;
    size_t count;
    struct grey entries[WORKBUF_ENTRIES];
};

static_assert(sizeof(struct workbuf) <= 4096, "a work buffer is one page");

static CGC_STATE struct {
    pthread_mutex_t lock;
    pthread_cond_t work_available; /* idle markers wait here */
    pthread_cond_t cycle_start;    /* workers wait here between cycles */
    pthread_cond_t workers_done;   /* the collector waits here */
    pthread_cond_t quiescent;      /* the collector waits here too */
    struct workbuf *full;          /* grey work any marker may take */
    struct workbuf *empty;         /* recycled buffers */
    unsigned markers;              /* participants this cycle */
    unsigned idle;                 /* markers waiting for work */
    unsigned helpers;              /* helpers between begin and end */
    unsigned workers_finished;
    uint64_t cycle;      /* bumped to start workers */
    bool stop_the_world; /* quiescence ends marking */
    bool done, stop;
    uint64_t marked_bytes, scanned_bytes, cpu_ns;
    pthread_t threads[MAX_WORKERS];
    unsigned nworkers;
    atomic_bool in_progress;
    atomic_uint idle_hint;   /* relaxed copy of idle, read without the lock */
    atomic_bool queue_empty; /* relaxed: no buffer queued (full == NULL) */
    _Atomic int64_t background_credit; /* bytes scanned by workers */
    uint64_t helper_greyed;            /* bytes greyed by helpers, ever */
} mark = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .work_available = PTHREAD_COND_INITIALIZER,
    .cycle_start = PTHREAD_COND_INITIALIZER,
    .workers_done = PTHREAD_COND_INITIALIZER,
    .quiescent = PTHREAD_COND_INITIALIZER,
};

/* ---- work buffers ---------------------------------------------------------
 */

static struct workbuf *workbuf_get_empty_locked(void)
{
    struct workbuf *b = mark.empty;
    if (b) {
        mark.empty = b->next;
    } else {
        /* Mapped, not malloc'd: threads may be stopped by the preemption
         * signal inside malloc, holding its locks (preempt.h). */
        b = os_map(sizeof *b);
        if (!b)
            report_fatal("out of memory for mark work buffers");
    }
    b->next = NULL;
    b->count = 0;
    return b;
}

static struct workbuf *workbuf_get_empty(void)
{
    pthread_mutex_lock(&mark.lock);
    struct workbuf *b = workbuf_get_empty_locked();
    pthread_mutex_unlock(&mark.lock);
    return b;
}

static void workbuf_recycle_locked(struct workbuf *b)
{
    b->next = mark.empty;
    mark.empty = b;
}

static bool quiescent_locked(void)
{
    return mark.idle == mark.markers && mark.helpers == 0 && !mark.full;
}

static struct workbuf *pop_full_locked(void)
{
    struct workbuf *b = mark.full;
    if (b) {
        mark.full = b->next;
        if (!mark.full)
            atomic_store_explicit(&mark.queue_empty, true,
                                  memory_order_relaxed);
    }
    return b;
}

static void publish_locked(struct workbuf *b)
{
    b->next = mark.full;
    mark.full = b;
    atomic_store_explicit(&mark.queue_empty, false, memory_order_relaxed);
    if (mark.idle)
        pthread_cond_signal(&mark.work_available);
}

static void publish(struct workbuf *b)
{
    pthread_mutex_lock(&mark.lock);
    publish_locked(b);
    pthread_mutex_unlock(&mark.lock);
}

/* Keep work where others can take it (Go's gcWork.balance): give away
 * half of a long local buffer when a marker is idle, or, while the world
 * runs, when nothing is queued for the assists of allocating threads. The
 * thresholds keep markers from handing a few entries back and forth. */
static void maybe_donate(struct marker *m)
{
    struct workbuf *b = m->local;
    if (b->count < 32)
        return;
    bool someone_idle =
        atomic_load_explicit(&mark.idle_hint, memory_order_relaxed) > 0;
    bool assists_starve =
        !mark.stop_the_world && b->count >= 64 &&
        atomic_load_explicit(&mark.queue_empty, memory_order_relaxed);
    if (!someone_idle && !assists_starve)
        return;
    struct workbuf *half = workbuf_get_empty();
    size_t n = b->count / 2;
    b->count -= n;
    for (size_t i = 0; i < n; i++)
        half->entries[i] = b->entries[b->count + i];
    half->count = n;
    publish(half);
}

static inline void push(struct marker *m, uintptr_t addr, struct span *s)
{
    struct workbuf *b = m->local;
    if (unlikely(b->count == WORKBUF_ENTRIES)) {
        publish(b);
        b = m->local = workbuf_get_empty();
    }
    b->entries[b->count++] = (struct grey){addr, s};
}

/* Fold a marker's counters into the totals (lock held), so that the
 * totals are complete whenever every marker is idle. */
static void fold_counters_locked(struct marker *m)
{
    mark.marked_bytes += m->marked_bytes;
    mark.scanned_bytes += m->scanned_bytes;
    m->marked_bytes = m->scanned_bytes = 0;
    if (m->cpu_mark) { /* a marker thread; helpers count their own time */
        uint64_t now = os_thread_cpu_ns();
        mark.cpu_ns += now - m->cpu_mark;
        m->cpu_mark = now;
    }
}

/* A marker's wait for work; NULL when marking is over. */
static struct workbuf *get_work(struct marker *m)
{
    pthread_mutex_lock(&mark.lock);
    fold_counters_locked(m);
    mark.idle++;
    atomic_store_explicit(&mark.idle_hint, mark.idle, memory_order_relaxed);
    struct workbuf *b = NULL;
    for (;;) {
        if (mark.full) {
            b = pop_full_locked();
            mark.idle--;
            break;
        }
        if (mark.done)
            break;
        if (quiescent_locked()) {
            if (mark.stop_the_world) {
                mark.done = true;
                pthread_cond_broadcast(&mark.work_available);
                break;
            }
            pthread_cond_broadcast(&mark.quiescent);
        }
        pthread_cond_wait(&mark.work_available, &mark.lock);
    }
    atomic_store_explicit(&mark.idle_hint, mark.idle, memory_order_relaxed);
    pthread_mutex_unlock(&mark.lock);
    return b;
}

/* A helper's grab of queued work; NULL if none, never waits. */
static struct workbuf *try_get_work(void)
{
    if (atomic_load_explicit(&mark.queue_empty, memory_order_relaxed))
        return NULL;
    pthread_mutex_lock(&mark.lock);
    struct workbuf *b = pop_full_locked();
    pthread_mutex_unlock(&mark.lock);
    return b;
}

/* ---- greying --------------------------------------------------------------
 */

static inline bool mark_slot(struct span *s, uint32_t idx)
{
    uint64_t bit = (uint64_t)1 << (idx % 64);
    _Atomic uint64_t *word = &s->mark_bits[idx / 64];
    /* Most candidates are marked already (black allocations, shared
     * objects, barrier entries): a plain load spares the locked RMW. */
    if (atomic_load_explicit(word, memory_order_relaxed) & bit)
        return false;
    uint64_t old = atomic_fetch_or_explicit(word, bit, memory_order_relaxed);
    return !(old & bit);
}

void mark_allocated_black(struct span *s, uint32_t idx)
{
    mark_slot(s, idx);
}

/* relaxed: a statistic for the pacer */
static CGC_STATE _Atomic uint64_t black_bytes;

void mark_count_black_bytes(uint64_t bytes)
{
    atomic_fetch_add_explicit(&black_bytes, bytes, memory_order_relaxed);
}

uint64_t mark_take_black_bytes(void)
{
    return atomic_exchange_explicit(&black_bytes, 0, memory_order_relaxed);
}

static inline void grey_candidate(struct marker *m, uintptr_t p)
{
    uint32_t idx;
    struct span *s = object_lookup(p, &idx);
    if (!s || !mark_slot(s, idx))
        return;
    m->marked_bytes += s->elem_size;
    if (s->kind != KIND_NOSCAN)
        push(m, s->base + (uintptr_t)idx * s->elem_size, s);
}

void mark_grey(struct marker *m, uintptr_t p)
{
    grey_candidate(m, p);
}

void mark_scan_contents(struct marker *m, uintptr_t p)
{
    uint32_t idx;
    struct span *s = object_lookup(p, &idx);
    if (s && s->kind != KIND_NOSCAN)
        push(m, s->base + (uintptr_t)idx * s->elem_size, s);
}

/* Reads memory that others may write meanwhile (objects being mutated,
 * blocking threads' stacks, registered roots): every word is read as raw
 * bits, and a torn or stale word is harmless (see the file comment). */
__attribute__((no_sanitize("address", "thread"))) void
mark_scan_conservative(struct marker *m, uintptr_t lo, uintptr_t hi)
{
    lo = round_up(lo, sizeof(uintptr_t));
    for (uintptr_t a = lo; a + sizeof(uintptr_t) <= hi; a += sizeof(uintptr_t))
        grey_candidate(m, *(const uintptr_t *)a);
}

__attribute__((no_sanitize("thread"))) static void
scan_typed(struct marker *m, uintptr_t obj, struct span *s)
{
    uint32_t idx = s->nelems == 1 ? 0 : span_object_index(s, obj - s->base);
    const struct gc_type *t = s->types[idx];
    if (!t)
        return;
    for (uintptr_t elem = obj; elem + t->size <= obj + s->elem_size;
         elem += t->size)
        for (size_t i = 0; i < t->n_ptrs; i++)
            grey_candidate(m, *(const uintptr_t *)(elem + t->ptr_offsets[i]));
}

static void scan(struct marker *m, struct grey g)
{
    struct span *s = g.span;
    if (s->kind == KIND_TYPED) {
        scan_typed(m, g.addr, s);
        m->scanned_bytes += s->elem_size;
        return;
    }
    uintptr_t end =
        s->nelems == 1 ? s->base + s->elem_size : g.addr + s->elem_size;
    if (end - g.addr > OBLET_BYTES) {
        push(m, g.addr + OBLET_BYTES, s);
        end = g.addr + OBLET_BYTES;
    }
    mark_scan_conservative(m, g.addr, end);
    m->scanned_bytes += end - g.addr;
}

/* Scan from the local buffer through the prefetch FIFO until the buffer and
 * the FIFO are empty or `budget` bytes were scanned. */
static void drain_local(struct marker *m, uint64_t budget)
{
    uint64_t start = m->scanned_bytes;
    while (m->scanned_bytes - start < budget) {
        struct workbuf *b = m->local;
        if (b->count > 0) {
            struct grey g = b->entries[--b->count];
            __builtin_prefetch((const void *)g.addr);
            if (m->fifo_count == PREFETCH_DEPTH) {
                struct grey oldest = m->fifo[m->fifo_head];
                m->fifo[m->fifo_head] = g;
                m->fifo_head = (m->fifo_head + 1) % PREFETCH_DEPTH;
                scan(m, oldest);
                maybe_donate(m);
            } else {
                m->fifo[(m->fifo_head + m->fifo_count++) % PREFETCH_DEPTH] = g;
            }
            continue;
        }
        if (m->fifo_count == 0)
            return;
        struct grey oldest = m->fifo[m->fifo_head];
        m->fifo_head = (m->fifo_head + 1) % PREFETCH_DEPTH;
        m->fifo_count--;
        scan(m, oldest);
    }
}

/* A marker's main loop: drain local and global work until marking is
 * over. */
static void drain(struct marker *m)
{
    for (;;) {
        uint64_t before = m->scanned_bytes;
        drain_local(m, UINT64_MAX);
        atomic_fetch_add_explicit(&mark.background_credit,
                                  (int64_t)(m->scanned_bytes - before),
                                  memory_order_relaxed);
        struct workbuf *next = get_work(m);
        if (!next)
            return;
        pthread_mutex_lock(&mark.lock);
        workbuf_recycle_locked(m->local);
        pthread_mutex_unlock(&mark.lock);
        m->local = next;
    }
}

static void marker_init(struct marker *m)
{
    m->local = workbuf_get_empty();
    m->fifo_head = m->fifo_count = 0;
    m->marked_bytes = 0;
    m->scanned_bytes = 0;
    m->cpu_mark = os_thread_cpu_ns();
}

/* Fold a marker's counters in and recycle or publish its buffer. */
static void marker_finish_locked(struct marker *m)
{
    if (m->local->count)
        publish_locked(m->local);
    else
        workbuf_recycle_locked(m->local);
    m->local = NULL;
    fold_counters_locked(m);
}

/* ---- workers --------------------------------------------------------------
 */

static void *worker_main(void *arg)
{
    thread_role_set_internal();
    (void)arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&mark.lock);
    for (;;) {
        while (mark.cycle == seen && !mark.stop)
            pthread_cond_wait(&mark.cycle_start, &mark.lock);
        if (mark.stop)
            break;
        seen = mark.cycle;
        pthread_mutex_unlock(&mark.lock);

        struct marker m;
        marker_init(&m);
        drain(&m);

        pthread_mutex_lock(&mark.lock);
        marker_finish_locked(&m);
        mark.workers_finished++;
        pthread_cond_signal(&mark.workers_done);
    }
    pthread_mutex_unlock(&mark.lock);
    return NULL;
}

int mark_init(unsigned workers)
{
    if (workers > MAX_WORKERS)
        workers = MAX_WORKERS;
    mark.stop = false;
    mark.nworkers = 0;
    mark.cycle = 0;
    mark.workers_finished = 0;
    for (unsigned i = 0; i < workers; i++) {
        if (os_thread_create(&mark.threads[i], worker_main, NULL))
            break;
        mark.nworkers++;
    }
    mark.workers_finished = mark.nworkers; /* none is in a cycle */
    return mark.nworkers == workers ? 0 : -1;
}

void mark_shutdown(void)
{
    pthread_mutex_lock(&mark.lock);
    mark.stop = true;
    pthread_cond_broadcast(&mark.cycle_start);
    pthread_mutex_unlock(&mark.lock);
    for (unsigned i = 0; i < mark.nworkers; i++)
        pthread_join(mark.threads[i], NULL);
    mark.nworkers = 0;
    pthread_mutex_lock(&mark.lock);
    while (mark.empty) {
        struct workbuf *b = mark.empty;
        mark.empty = b->next;
        os_unmap(b, sizeof *b);
    }
    pthread_mutex_unlock(&mark.lock);
}

unsigned mark_worker_count(void)
{
    return mark.nworkers;
}

/* Start a cycle for the workers (and `extra` markers on other threads). */
static void wait_workers_locked(void);

static void start_locked(bool stop_the_world, unsigned extra)
{
    wait_workers_locked(); /* the last cycle's may still be leaving */
    mark.markers = mark.nworkers + extra;
    mark.idle = 0;
    mark.helpers = 0;
    mark.done = false;
    mark.stop_the_world = stop_the_world;
    mark.workers_finished = 0;
    mark.marked_bytes = 0;
    mark.scanned_bytes = 0;
    mark.cpu_ns = 0;
    atomic_store_explicit(&mark.background_credit, 0, memory_order_relaxed);
    mark.cycle++;
    atomic_store_explicit(&mark.queue_empty, mark.full == NULL,
                          memory_order_relaxed);
    atomic_store_explicit(&mark.in_progress, true, memory_order_release);
    pthread_cond_broadcast(&mark.cycle_start);
}

/* Wait for the workers to leave the last cycle. */
static void wait_workers_locked(void)
{
    while (mark.workers_finished < mark.nworkers)
        pthread_cond_wait(&mark.workers_done, &mark.lock);
}

/* Report a cycle whose markers are all idle (their counters folded).
 * Spare buffers beyond a small pool are unmapped: a cycle with a huge
 * grey queue must not keep its peak in memory. */
static void finish_locked(struct mark_result *out)
{
    atomic_store_explicit(&mark.in_progress, false, memory_order_release);
    out->marked_bytes = mark.marked_bytes;
    out->scanned_bytes = mark.scanned_bytes;
    out->cpu_ns = mark.cpu_ns;
    out->markers = mark.markers;
}

void mark_run(void (*roots)(struct marker *m, void *arg), void *arg,
              struct mark_result *out)
{
    pthread_mutex_lock(&mark.lock);
    start_locked(true, 1);
    pthread_mutex_unlock(&mark.lock);

    struct marker m;
    marker_init(&m);
    roots(&m, arg);
    drain(&m);

    pthread_mutex_lock(&mark.lock);
    marker_finish_locked(&m);
    wait_workers_locked();
    finish_locked(out);
    pthread_mutex_unlock(&mark.lock);
}

void mark_begin_concurrent(void)
{
    pthread_mutex_lock(&mark.lock);
    start_locked(false, 0);
    pthread_mutex_unlock(&mark.lock);
}

void mark_wait_quiescent(void)
{
    pthread_mutex_lock(&mark.lock);
    while (!quiescent_locked())
        pthread_cond_wait(&mark.quiescent, &mark.lock);
    pthread_mutex_unlock(&mark.lock);
}

void mark_end_concurrent(struct mark_result *out)
{
    /* Every worker is idle (quiescent) with its counters folded, so the
     * totals are final: report them without waiting for the workers to
     * wake up and leave, which would lengthen the pause. */
    pthread_mutex_lock(&mark.lock);
    mark.done = true;
    pthread_cond_broadcast(&mark.work_available);
    finish_locked(out);
    pthread_mutex_unlock(&mark.lock);
}

void mark_release_spares(void)
{
    /* Detach the surplus under the lock, unmap it outside: each munmap is
     * a system call and a TLB shootdown, ~8 µs on a 2-CPU VM. Done inside
     * mark termination, a cycle's few hundred spare buffers made most of
     * STW 2 (0.2-2.7 ms measured by bench/pause). */
    pthread_mutex_lock(&mark.lock);
    struct workbuf **b = &mark.empty;
    for (unsigned kept = 0; *b && kept < SPARE_WORKBUFS; kept++)
        b = &(*b)->next;
    struct workbuf *extra = *b;
    *b = NULL;
    pthread_mutex_unlock(&mark.lock);
    while (extra) {
        struct workbuf *next = extra->next;
        os_unmap(extra, sizeof *extra);
        extra = next;
    }
}

void mark_helper_begin(struct marker *m)
{
    pthread_mutex_lock(&mark.lock);
    mark.helpers++;
    m->local = workbuf_get_empty_locked();
    pthread_mutex_unlock(&mark.lock);
    m->fifo_head = m->fifo_count = 0;
    m->marked_bytes = 0;
    m->scanned_bytes = 0;
    m->cpu_mark = 0;
}

/* Put the FIFO's entries back in the buffer: they were popped, not
 * scanned. */
static void spill_fifo(struct marker *m)
{
    while (m->fifo_count) {
        struct grey g = m->fifo[m->fifo_head];
        m->fifo_head = (m->fifo_head + 1) % PREFETCH_DEPTH;
        m->fifo_count--;
        push(m, g.addr, g.span);
    }
}

uint64_t mark_helper_greyed_bytes(void)
{
    pthread_mutex_lock(&mark.lock);
    uint64_t n = mark.helper_greyed;
    pthread_mutex_unlock(&mark.lock);
    return n;
}

void mark_helper_end(struct marker *m)
{
    spill_fifo(m);
    pthread_mutex_lock(&mark.lock);
    mark.helper_greyed += m->marked_bytes;
    marker_finish_locked(m);
    mark.helpers--;
    if (quiescent_locked())
        pthread_cond_broadcast(&mark.quiescent);
    pthread_mutex_unlock(&mark.lock);
}

uint64_t mark_helper_drain(struct marker *m, uint64_t budget)
{
    uint64_t start = m->scanned_bytes;
    for (;;) {
        uint64_t done = m->scanned_bytes - start;
        if (done >= budget)
            return done;
        drain_local(m, budget - done);
        if (m->local->count || m->fifo_count)
            continue;
        struct workbuf *next = try_get_work();
        if (!next)
            return m->scanned_bytes - start;
        pthread_mutex_lock(&mark.lock);
        workbuf_recycle_locked(m->local);
        pthread_mutex_unlock(&mark.lock);
        m->local = next;
    }
}

void mark_scan_roots(struct marker *m, uintptr_t lo, uintptr_t hi)
{
    while (lo < hi) {
        uintptr_t end = hi - lo > ROOT_SLICE_BYTES ? lo + ROOT_SLICE_BYTES : hi;
        mark_scan_conservative(m, lo, end);
        mark_helper_drain(m, UINT64_MAX);
        lo = end;
    }
}

bool mark_in_progress(void)
{
    return atomic_load_explicit(&mark.in_progress, memory_order_acquire);
}

int64_t mark_take_background_credit(int64_t want)
{
    int64_t have =
        atomic_load_explicit(&mark.background_credit, memory_order_relaxed);
    while (have > 0) {
        int64_t take = have < want ? have : want;
        if (atomic_compare_exchange_weak_explicit(
                &mark.background_credit, &have, have - take,
                memory_order_relaxed, memory_order_relaxed))
            return take;
    }
    return 0;
}

/* No cycle runs across a fork (fork.h): the workers wait for one, and in
 * the child they are gone; mark_init starts new ones when the collector
 * restarts there. */
void mark_fork(enum fork_phase phase)
{
    fork_mutex(&mark.lock, phase);
    fork_cond(&mark.work_available, phase);
    fork_cond(&mark.cycle_start, phase);
    fork_cond(&mark.workers_done, phase);
    fork_cond(&mark.quiescent, phase);
    if (phase != FORK_CHILD)
        return;
    mark.nworkers = 0;
    mark.workers_finished = 0;
    mark.markers = mark.idle = mark.helpers = 0;
    mark.done = mark.stop = false;
    atomic_store_explicit(&mark.idle_hint, 0, memory_order_relaxed);
}
