/*
 * test_threads — the collector with several mutator threads (run under
 * ThreadSanitizer in CI: label "threaded").
 *
 *   - 6 threads allocate linked structures concurrently while many cycles
 *     run (gc_set_percent(10)), verify them as they go and at the end;
 *   - objects handed from thread to thread through a root survive;
 *   - 2000 short-lived threads attach on their first allocation and detach
 *     at exit (joined inside gc_blocking_begin/end); gc_collect keeps
 *     working and what they left behind is reclaimed;
 *   - gc_thread_attach/detach explicit and idempotent; a detached thread's
 *     stack is not scanned; detach of an unattached thread does nothing;
 *   - a thread asleep for 2 s inside gc_blocking_begin/end does not stall
 *     gc_collect (< 1 s), is not warned about, and objects referenced only
 *     from its stack survive;
 *   - a thread spinning in a loop with gc_safepoint lets gc_collect finish;
 *   - concurrent gc_collect callers all return, each after a full cycle.
 *
 * Worker threads never call cmocka: they record failures in their own
 * struct and the main thread checks them after joining.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAGIC 0x0ddba11cafef00dull

struct node {
    struct node *next;
    uint64_t value;
    uint64_t check;
};

static const gc_type *node_type;

struct worker {
    pthread_t th;
    int id;
    size_t errors;
    char first_error[256];
};

static void worker_error(struct worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void worker_error(struct worker *w, const char *fmt, ...)
{
    if (w->errors++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first_error, sizeof w->first_error, fmt, ap);
        va_end(ap);
    }
}

/* Join a thread without stalling the collector. */
static void join_blocking(pthread_t th)
{
    gc_blocking_begin();
    pthread_join(th, NULL);
    gc_blocking_end();
}

static void check_workers(struct worker *w, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        CHECK(w[i].errors == 0,
              "%s: thread %d reported %zu error(s); first: "
              "%s",
              what, w[i].id, w[i].errors, w[i].first_error);
}

/* ---- lists ----------------------------------------------------------------
 */

static uint64_t tag(int thread, uint64_t round, uint64_t i)
{
    return ((uint64_t)thread << 48) | (round << 24) | i;
}

static struct node *build_list(int thread, uint64_t round, size_t n, int typed)
{
    struct node *head = NULL;
    for (size_t i = 0; i < n; i++) {
        struct node *nd = typed ? gc_alloc_typed(sizeof *nd, node_type)
                                : gc_alloc(sizeof *nd);
        if (!nd)
            return NULL;
        nd->value = tag(thread, round, i);
        nd->check = nd->value ^ MAGIC;
        GC_WRITE(nd->next, head);
        head = nd;
        if (i % 3 == 0)
            memset(gc_alloc_noscan(40 + i % 200), 0x8c, 40 + i % 200);
    }
    return head;
}

/* Returns NULL if the list holds n nodes tagged (thread, round, n-1..0). */
static const char *verify_list(const struct node *head, int thread,
                               uint64_t round, size_t n, size_t *where)
{
    size_t i = 0;
    for (const struct node *nd = head; nd; nd = nd->next, i++) {
        *where = i;
        if (i >= n)
            return "list longer than built";
        if (nd->value != tag(thread, round, n - 1 - i))
            return "wrong value";
        if (nd->check != (nd->value ^ MAGIC))
            return "wrong check word";
    }
    *where = i;
    return i == n ? NULL : "list shorter than built";
}

/* ---- concurrent allocators -------------------------------------------------
 */

#define NWORKERS 6
#define KEEP     4

static void *g_published[NWORKERS]; /* a root; each thread its own slot */
static uint64_t g_published_round[NWORKERS];
static size_t g_list_len;
static size_t g_rounds;

static void *allocator_thread(void *arg)
{
    struct worker *w = arg;
    struct node *kept[KEEP] = {0};
    uint64_t kept_round[KEEP] = {0};
    int typed = w->id & 1;
    for (uint64_t r = 0; r < g_rounds; r++) {
        struct node *l = build_list(w->id, r, g_list_len, typed);
        if (!l) {
            worker_error(w, "allocation failed in round %llu",
                         (unsigned long long)r);
            return NULL;
        }
        kept[r % KEEP] = l; /* drops the list of round r - KEEP */
        kept_round[r % KEEP] = r;
        for (int k = 0; k < KEEP && (uint64_t)k <= r; k++) {
            size_t where = 0;
            const char *e =
                verify_list(kept[k], w->id, kept_round[k], g_list_len, &where);
            if (e)
                worker_error(w,
                             "round %llu: kept list of round %llu: node "
                             "%zu: %s",
                             (unsigned long long)r,
                             (unsigned long long)kept_round[k], where, e);
        }
        if (w->id == 0 && r % 4 == 3)
            gc_collect();
    }
    GC_WRITE(g_published[w->id], kept[(g_rounds - 1) % KEEP]);
    g_published_round[w->id] = g_rounds - 1;
    return NULL;
}

static void test_concurrent_allocators(void **state)
{
    (void)state;
    g_list_len = 2000;
    g_rounds = scaled(24, 6);
    CHECK(GC_ROOT(g_published) == 0, "GC_ROOT failed");
    gc_stats s0, s1;
    gc_collect();
    gc_read_stats(&s0);
    int prev = gc_set_percent(10);
    struct worker w[NWORKERS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < NWORKERS; i++) {
        w[i].id = i;
        CHECK(pthread_create(&w[i].th, NULL, allocator_thread, &w[i]) == 0,
              "pthread_create");
    }
    for (int i = 0; i < NWORKERS; i++)
        join_blocking(w[i].th);
    gc_set_percent(prev);
    check_workers(w, NWORKERS, "concurrent allocators");
    /* The published lists outlive their threads. */
    clear_stack();
    gc_collect();
    for (int i = 0; i < NWORKERS; i++) {
        size_t where = 0;
        const char *e = verify_list(g_published[i], i, g_published_round[i],
                                    g_list_len, &where);
        CHECK(e == NULL, "list published by exited thread %d: node %zu: %s", i,
              where, e);
    }
    gc_read_stats(&s1);
    CHECK(s1.num_gc >= s0.num_gc + 5,
          "only %u cycles ran during the concurrent test",
          s1.num_gc - s0.num_gc);
    CHECK(gc_root_remove(g_published) == 0, "gc_root_remove");
    memset(g_published, 0, sizeof g_published);
}

/* ---- hand-off between threads through a root --------------------------------
 */

#define NHAND 1000
static void *g_slots[NHAND]; /* root */
static atomic_int g_ready[NHAND];

static void *producer_thread(void *arg)
{
    struct worker *w = arg;
    for (size_t i = 0; i < NHAND; i++) {
        struct node *l = build_list(w->id, i, 10, (int)(i & 1));
        if (!l) {
            worker_error(w, "allocation failed");
            break;
        }
        GC_WRITE(g_slots[i], l);
        atomic_store_explicit(&g_ready[i], 1, memory_order_release);
        for (int k = 0; k < 20; k++) /* garbage to drive cycles */
            memset(gc_alloc(64), 0x8c, 64);
    }
    return NULL;
}

static void *consumer_thread(void *arg)
{
    struct worker *w = arg;
    struct node **mine = calloc(NHAND, sizeof *mine);
    if (!mine || gc_root_add(mine, NHAND * sizeof *mine) != 0) {
        worker_error(w, "setup failed");
        free(mine);
        return NULL;
    }
    for (size_t i = 0; i < NHAND; i++) {
        while (!atomic_load_explicit(&g_ready[i], memory_order_acquire))
            gc_safepoint();
        GC_WRITE(mine[i], g_slots[i]);
        GC_WRITE(g_slots[i], NULL); /* now only this thread's root has it */
        memset(gc_alloc(48), 0x8c, 48);
    }
    gc_collect();
    for (size_t i = 0; i < NHAND; i++) {
        size_t where = 0;
        const char *e = verify_list(mine[i], 1, i, 10, &where);
        if (e)
            worker_error(w, "handed-off list %zu: node %zu: %s", i, where, e);
    }
    gc_root_remove(mine);
    free(mine);
    return NULL;
}

static void test_handoff_between_threads(void **state)
{
    (void)state;
    CHECK(GC_ROOT(g_slots) == 0, "GC_ROOT failed");
    int prev = gc_set_percent(10);
    struct worker w[2];
    memset(w, 0, sizeof w);
    w[0].id = 1; /* producer tags lists with thread 1 */
    w[1].id = 2;
    CHECK(pthread_create(&w[1].th, NULL, consumer_thread, &w[1]) == 0,
          "pthread_create");
    CHECK(pthread_create(&w[0].th, NULL, producer_thread, &w[0]) == 0,
          "pthread_create");
    join_blocking(w[0].th);
    join_blocking(w[1].th);
    gc_set_percent(prev);
    check_workers(w, 2, "hand-off");
    CHECK(gc_root_remove(g_slots) == 0, "gc_root_remove");
}

/* ---- many short-lived threads ----------------------------------------------
 */

#define NSHORT 2000
#define BATCH  50
static uintptr_t g_short_hidden[NSHORT];
static atomic_int g_short_errors;

static void *short_thread(void *arg)
{
    size_t idx = (size_t)(uintptr_t)arg;
    unsigned char *objs[10];
    for (int k = 0; k < 10; k++) {
        objs[k] = gc_alloc(64 + k * 8);
        if (!objs[k]) {
            atomic_fetch_add(&g_short_errors, 1);
            return NULL;
        }
        memset(objs[k], (int)(idx & 0x7f) | 0x80, 64 + k * 8);
    }
    if (idx % 100 == 0)
        gc_collect();
    for (int k = 0; k < 10; k++)
        for (int b = 0; b < 64 + k * 8; b++)
            if (objs[k][b] != ((idx & 0x7f) | 0x80)) {
                atomic_fetch_add(&g_short_errors, 1);
                return NULL;
            }
    g_short_hidden[idx] = hide(objs[idx % 10]);
    return NULL;
}

static void test_many_short_lived_threads(void **state)
{
    (void)state;
    uint64_t worst = 0;
    for (size_t b = 0; b < NSHORT / BATCH; b++) {
        pthread_t th[BATCH];
        for (size_t i = 0; i < BATCH; i++) {
            size_t idx = b * BATCH + i;
            int rc = pthread_create(&th[i], NULL, short_thread,
                                    (void *)(uintptr_t)idx);
            CHECK(rc == 0, "pthread_create #%zu: %s", idx, strerror(rc));
        }
        gc_blocking_begin();
        for (size_t i = 0; i < BATCH; i++)
            pthread_join(th[i], NULL);
        gc_blocking_end();
        if (b % 8 == 7) {
            uint64_t t0 = mono_ns();
            gc_collect();
            uint64_t dt = mono_ns() - t0;
            if (dt > worst)
                worst = dt;
        }
    }
    CHECK(atomic_load(&g_short_errors) == 0,
          "%d short-lived threads saw allocation failures or corrupted "
          "objects",
          atomic_load(&g_short_errors));
    clear_stack();
    uint64_t t0 = mono_ns();
    gc_collect();
    uint64_t dt = mono_ns() - t0;
    if (dt > worst)
        worst = dt;
    CHECK(worst < 2000000000ull,
          "a gc_collect after short-lived threads exited took %llu ms (are "
          "exited threads still waited for?)",
          (unsigned long long)(worst / 1000000));
    size_t alive = count_alive(g_short_hidden, NSHORT);
    CHECK(alive * 20 <= NSHORT,
          "%zu of %d objects left by exited threads survived (allowed: 5%%) "
          "-- are exited threads' stacks still scanned?",
          alive, NSHORT);
}

/* ---- explicit attach / detach -----------------------------------------------
 */

static atomic_int g_phase;
#define NDET 64
static uintptr_t g_det_hidden[NDET];

static void *detaching_thread(void *arg)
{
    struct worker *w = arg;
    if (gc_thread_attach() != 0)
        worker_error(w, "first gc_thread_attach failed");
    if (gc_thread_attach() != 0)
        worker_error(w, "second gc_thread_attach (idempotent) failed");
    void *volatile keep[NDET];
    for (size_t i = 0; i < NDET; i++) {
        void *p = gc_alloc_noscan(80);
        memset(p, 0x8c, 80);
        keep[i] = p;
        g_det_hidden[i] = hide(p);
    }
    gc_thread_detach();
    gc_thread_detach(); /* does nothing */
    atomic_store(&g_phase, 1);
    /* Detached: the collector neither waits for nor scans this thread. */
    while (atomic_load(&g_phase) != 2)
        usleep(1000);
    if (gc_thread_attach() != 0)
        worker_error(w, "re-attach after detach failed");
    unsigned char *fresh[16];
    for (int i = 0; i < 16; i++) {
        fresh[i] = gc_alloc(100);
        memset(fresh[i], 0x9a, 100);
    }
    gc_collect();
    for (int i = 0; i < 16; i++)
        if (gc_base(fresh[i]) != fresh[i] || fresh[i][99] != 0x9a)
            worker_error(w, "object %d of the re-attached thread lost", i);
    (void)keep[0]; /* never dereferenced after detach */
    return NULL;   /* exits attached: detached automatically */
}

static void *unattached_detach_thread(void *arg)
{
    (void)arg;
    gc_thread_detach(); /* never attached: does nothing */
    gc_thread_detach();
    return NULL;
}

static void test_attach_detach_explicit(void **state)
{
    (void)state;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, unattached_detach_thread, NULL) == 0,
          "pthread_create");
    join_blocking(th);

    struct worker w;
    memset(&w, 0, sizeof w);
    atomic_store(&g_phase, 0);
    CHECK(pthread_create(&w.th, NULL, detaching_thread, &w) == 0,
          "pthread_create");
    while (atomic_load(&g_phase) != 1) {
        gc_safepoint();
        usleep(1000);
    }
    clear_stack();
    gc_collect();
    /* The detached thread still has every object on its stack. */
    size_t alive = count_alive(g_det_hidden, NDET);
    atomic_store(&g_phase, 2);
    join_blocking(w.th);
    check_workers(&w, 1, "attach/detach");
    CHECK(alive * 10 <= NDET,
          "%zu of %d objects referenced only from a detached thread's stack "
          "survived gc_collect (allowed: 10%%) -- is the stack of a detached "
          "thread still scanned?",
          alive, NDET);
    /* The main thread: attach is idempotent here too. */
    CHECK(gc_thread_attach() == 0, "gc_thread_attach on the main thread");
    CHECK(gc_thread_attach() == 0, "second gc_thread_attach on main");
}

/* ---- a thread asleep in a blocking region -----------------------------------
 */

#define NSLEEP 100
static atomic_int g_in_region;
static uintptr_t g_sleep_hidden[NSLEEP];

static unsigned seed_of(const void *p)
{
    return (unsigned)((uintptr_t)p >> 4);
}

static NOINLINE void sleeper_body(struct worker *w)
{
    void *volatile keep[NSLEEP];
    for (size_t i = 0; i < NSLEEP; i++) {
        void *p = gc_alloc_noscan(72);
        fill_pattern(p, 72, seed_of(p));
        keep[i] = p;
        g_sleep_hidden[i] = hide(p);
    }
    gc_blocking_begin();
    atomic_store(&g_in_region, 1);
    struct timespec ts = {2, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    gc_blocking_end();
    for (size_t i = 0; i < NSLEEP; i++) {
        void *p = keep[i];
        if (gc_base(p) != p)
            worker_error(w, "object %zu on the sleeper's stack was freed", i);
        else if (check_pattern(p, 72, seed_of(p)) != 72)
            worker_error(w, "object %zu on the sleeper's stack was changed", i);
    }
}

static void *sleeper_thread(void *arg)
{
    sleeper_body(arg);
    return NULL;
}

static NOINLINE void churn(size_t n)
{
    for (size_t i = 0; i < n; i++)
        memset(gc_alloc(72), 0xee, 72);
}

static void test_blocking_thread_does_not_stall(void **state)
{
    (void)state;
    struct worker w;
    memset(&w, 0, sizeof w);
    atomic_store(&g_in_region, 0);
    CHECK(pthread_create(&w.th, NULL, sleeper_thread, &w) == 0,
          "pthread_create");
    while (!atomic_load(&g_in_region)) {
        gc_safepoint();
        usleep(1000);
    }
    uint64_t t_start = mono_ns();
    struct capture c;
    capture_begin(&c);
    uint64_t t0 = mono_ns();
    gc_collect();
    uint64_t t1 = mono_ns();
    churn(20000); /* reuse anything wrongly freed */
    gc_collect();
    uint64_t t2 = mono_ns();
    char *err = capture_end(&c);
    size_t alive = count_alive(g_sleep_hidden, NSLEEP);
    int still_sleeping = mono_ns() - t_start < 1500000000ull;
    join_blocking(w.th);
    CHECK(t1 - t0 < 1000000000ull,
          "gc_collect took %llu ms while another thread slept in a blocking "
          "region",
          (unsigned long long)((t1 - t0) / 1000000));
    CHECK(t2 - t1 < 1000000000ull,
          "churn + second gc_collect took %llu ms while a thread slept",
          (unsigned long long)((t2 - t1) / 1000000));
    CHECK(*err == '\0',
          "the collector wrote to stderr while a thread slept in a blocking "
          "region (it must not be warned about):\n%s",
          err);
    free(err);
    CHECK(still_sleeping, "test too slow: the sleeper may have woken up "
                          "before the checks");
    CHECK(alive == NSLEEP,
          "%zu of %d objects referenced only from the sleeping thread's stack "
          "were reclaimed while it slept",
          NSLEEP - alive, NSLEEP);
    check_workers(&w, 1, "sleeper");
}

/* ---- a thread spinning with gc_safepoint
 * ------------------------------------- */

static atomic_int g_spin_started, g_spin_stop;

static void *spinner_thread(void *arg)
{
    struct worker *w = arg;
    unsigned char *mine = gc_alloc(256); /* attaches */
    memset(mine, 0x9c, 256);
    atomic_store(&g_spin_started, 1);
    uint64_t x = 1, iters = 0;
    while (!atomic_load_explicit(&g_spin_stop, memory_order_relaxed)) {
        gc_safepoint();
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        iters++;
    }
    if (gc_base(mine) != mine || mine[255] != 0x9c)
        worker_error(w, "the spinner's object was lost (x=%llu, %llu iters)",
                     (unsigned long long)x, (unsigned long long)iters);
    return NULL;
}

static void test_spinning_thread_with_safepoints(void **state)
{
    (void)state;
    struct worker w;
    memset(&w, 0, sizeof w);
    atomic_store(&g_spin_started, 0);
    atomic_store(&g_spin_stop, 0);
    CHECK(pthread_create(&w.th, NULL, spinner_thread, &w) == 0,
          "pthread_create");
    while (!atomic_load(&g_spin_started)) {
        gc_safepoint();
        usleep(1000);
    }
    uint64_t worst = 0;
    struct capture c;
    capture_begin(&c);
    for (int i = 0; i < 5; i++) {
        churn(5000);
        uint64_t t0 = mono_ns();
        gc_collect();
        uint64_t dt = mono_ns() - t0;
        if (dt > worst)
            worst = dt;
    }
    char *err = capture_end(&c);
    atomic_store(&g_spin_stop, 1);
    join_blocking(w.th);
    CHECK(worst < 1000000000ull,
          "gc_collect took %llu ms with a thread spinning on gc_safepoint",
          (unsigned long long)(worst / 1000000));
    CHECK(*err == '\0',
          "the collector warned about a thread that polls gc_safepoint:\n%s",
          err);
    free(err);
    check_workers(&w, 1, "spinner");
}

/* ---- concurrent gc_collect callers
 * ------------------------------------------- */

#define NCOLLECTORS 4
#define COLLECTS    5

static void *collector_thread(void *arg)
{
    struct worker *w = arg;
    unsigned char *mine = gc_alloc(128);
    memset(mine, 0x70 + w->id, 128);
    for (int i = 0; i < COLLECTS; i++) {
        gc_collect();
        churn(500);
    }
    if (gc_base(mine) != mine || mine[127] != 0x70 + w->id)
        worker_error(w, "object held by a gc_collect caller lost");
    return NULL;
}

static void test_concurrent_collect_callers(void **state)
{
    (void)state;
    gc_stats s0, s1;
    gc_collect();
    gc_read_stats(&s0);
    struct worker w[NCOLLECTORS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < NCOLLECTORS; i++) {
        w[i].id = i;
        CHECK(pthread_create(&w[i].th, NULL, collector_thread, &w[i]) == 0,
              "pthread_create");
    }
    for (int i = 0; i < NCOLLECTORS; i++)
        join_blocking(w[i].th);
    gc_read_stats(&s1);
    check_workers(w, NCOLLECTORS, "concurrent gc_collect");
    uint32_t forced = s1.num_forced_gc - s0.num_forced_gc;
    CHECK(forced >= COLLECTS && forced <= NCOLLECTORS * COLLECTS,
          "%d threads x %d gc_collect calls gave %u forced cycles (expected "
          "between %d and %d)",
          NCOLLECTORS, COLLECTS, forced, COLLECTS, NCOLLECTORS * COLLECTS);
}

int main(void)
{
    static const size_t offs[] = {offsetof(struct node, next)};
    node_type = gc_type_new(sizeof(struct node), offs, 1);
    if (!node_type) {
        fprintf(stderr, "gc_type_new failed (errno %d)\n", errno);
        return 1;
    }
    remember_percent();
    const struct CMUnitTest tests[] = {
        PERCENT_TEST(test_concurrent_allocators),
        PERCENT_TEST(test_handoff_between_threads),
        PERCENT_TEST(test_many_short_lived_threads),
        PERCENT_TEST(test_attach_detach_explicit),
        PERCENT_TEST(test_blocking_thread_does_not_stall),
        PERCENT_TEST(test_spinning_thread_with_safepoints),
        PERCENT_TEST(test_concurrent_collect_callers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
