/*
 * test_preempt.c — threads that never cooperate are stopped by the
 * preemption signal (CGC_SIGNAL), so ordinary C needs no safepoints and no
 * blocking regions for the collector to make progress.
 *
 *   test_preempt default      signal preemption on (the default), with
 *                             gccheckmark verifying every mark
 *   test_preempt cooperative  CGC_DEBUG=asyncpreemptoff=1: today's
 *                             cooperative behaviour and its warning
 *   test_preempt blocked      a thread that blocks the signal is reported
 *
 * Every test holds objects only where an uncooperative thread keeps them
 * (its registers and stack while it sits in read() or a compute loop, a
 * local between two GC_WRITEs) while other threads drive collections, and
 * checks that those objects survive and that collections kept completing.
 * One thread lives inside the loader's lock (dl_iterate_phdr callbacks)
 * while checkmark reads module data with the world stopped.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/syscall.h>

/* ---- helpers --------------------------------------------------------------
 */

static uint32_t num_gc(void)
{
    gc_stats s;
    gc_read_stats(&s);
    return s.num_gc;
}

/* Allocate and drop `bytes` in objects of 64..4096 bytes; returns the
 * number of cycles that completed meanwhile. */
static uint32_t churn(size_t bytes)
{
    uint32_t first = num_gc();
    uint64_t x = 12345;
    for (size_t done = 0; done < bytes;) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t size = 64 + (size_t)((x >> 33) % 4033);
        char *p = gc_alloc_noscan(size);
        if (!p)
            abort();
        p[0] = 1;
        done += size;
    }
    return num_gc() - first;
}

struct probe {
    pthread_t th;
    atomic_int ready;
    atomic_int stop;
    atomic_int finished;
    char error[200];
};

static void probe_error(struct probe *p, const char *what)
{
    snprintf(p->error, sizeof p->error, "%s", what);
}

/* Join without a blocking region: the collector must preempt us. */
static void join_plain(pthread_t th)
{
    pthread_join(th, NULL);
}

#define OBJ_BYTES 4096

static NOINLINE char *new_pattern_object(unsigned seed)
{
    char *obj = gc_alloc(OBJ_BYTES);
    if (obj)
        fill_pattern(obj, OBJ_BYTES, seed);
    return obj;
}

static bool pattern_intact(const char *obj, unsigned seed)
{
    return gc_base(obj) == obj &&
           check_pattern(obj, OBJ_BYTES, seed) == OBJ_BYTES;
}

/* ---- a thread blocked in read() ------------------------------------------ */

static int reader_pipe[2];

static void *reader_main(void *arg)
{
    struct probe *p = arg;
    char *obj = new_pattern_object(17); /* the only reference: here */
    atomic_store(&p->ready, 1);
    char c;
    ssize_t n = read(reader_pipe[0], &c, 1); /* no blocking region */
    if (n != 1)
        probe_error(p, "read failed");
    else if (!pattern_intact(obj, 17))
        probe_error(p, "the object held by the thread blocked in read() was "
                       "reclaimed or damaged");
    atomic_store(&p->finished, 1);
    return NULL;
}

static void test_thread_blocked_in_read(void **state)
{
    (void)state;
    struct probe p;
    memset(&p, 0, sizeof p);
    CHECK(pipe(reader_pipe) == 0, "pipe");
    CHECK(pthread_create(&p.th, NULL, reader_main, &p) == 0, "create");
    while (!atomic_load(&p.ready))
        usleep(1000);
    usleep(20000); /* let it block in read() */
    uint32_t cycles = churn(scaled((size_t)1 << 30, (size_t)64 << 20));
    CHECK(!atomic_load(&p.finished), "the reader woke up too early");
    CHECK(write(reader_pipe[1], "x", 1) == 1, "write");
    join_plain(p.th);
    close(reader_pipe[0]);
    close(reader_pipe[1]);
    CHECK(p.error[0] == 0, "%s", p.error);
    CHECK(cycles >= 5,
          "only %u collections completed while a thread sat in read()", cycles);
    print_message("%u collections while a thread was blocked in read()\n",
                  cycles);
}

/* ---- a thread in a compute loop ------------------------------------------ */

static void *computer_main(void *arg)
{
    struct probe *p = arg;
    char *obj = new_pattern_object(23);
    atomic_store(&p->ready, 1);
    /* No allocation, no gc_safepoint, no call into cgc: arithmetic until
     * told to stop (at least as long as the churn takes, 3 s on this
     * project's machine), or 60 s at most. */
    uint64_t until = mono_ns() + 60000000000ull, x = 1;
    while (!atomic_load_explicit(&p->stop, memory_order_relaxed) &&
           mono_ns() < until)
        for (int i = 0; i < 1000; i++)
            x = x * 3 + (uint64_t)obj[i & 63];
    if (!atomic_load(&p->stop))
        atomic_store(&p->finished, 1); /* ran out of time */
    if (!pattern_intact(obj, 23) || x == 42)
        probe_error(p, "the object held by the computing thread was "
                       "reclaimed or damaged");
    return NULL;
}

static void test_thread_in_compute_loop(void **state)
{
    (void)state;
    struct probe p;
    memset(&p, 0, sizeof p);
    CHECK(pthread_create(&p.th, NULL, computer_main, &p) == 0, "create");
    while (!atomic_load(&p.ready))
        usleep(1000);
    uint32_t cycles = churn(scaled((size_t)512 << 20, (size_t)64 << 20));
    bool still_computing = !atomic_load(&p.finished);
    atomic_store(&p.stop, 1);
    join_plain(p.th);
    CHECK(p.error[0] == 0, "%s", p.error);
    CHECK(still_computing, "the churn took over 60 s: the collector waited for "
                           "the computing thread");
    CHECK(cycles >= 5, "only %u collections completed while a thread computed",
          cycles);
    print_message("%u collections while a thread computed\n", cycles);
}

/* ---- a contended mutex around allocations -------------------------------- */

#define MUTEX_THREADS 4

static pthread_mutex_t contended = PTHREAD_MUTEX_INITIALIZER;
static void *mutex_slots[MUTEX_THREADS][64];

static void *mutex_main(void *arg)
{
    struct probe *p = arg;
    size_t rounds = scaled(20000, 2000);
    for (size_t i = 0; i < rounds; i++) {
        pthread_mutex_lock(&contended); /* no blocking region */
        char *obj = gc_alloc(32 + (i % 8) * 64);
        if (!obj)
            abort();
        obj[0] = (char)i;
        GC_WRITE(mutex_slots[i % MUTEX_THREADS][i % 64], obj);
        pthread_mutex_unlock(&contended);
    }
    atomic_store(&p->finished, 1);
    return NULL;
}

static void test_contended_mutex_around_allocation(void **state)
{
    (void)state;
    struct probe p[MUTEX_THREADS];
    memset(p, 0, sizeof p);
    uint32_t first = num_gc();
    for (int i = 0; i < MUTEX_THREADS; i++)
        CHECK(pthread_create(&p[i].th, NULL, mutex_main, &p[i]) == 0, "create");
    for (int i = 0; i < MUTEX_THREADS; i++)
        join_plain(p[i].th);
    for (int i = 0; i < MUTEX_THREADS; i++)
        CHECK(atomic_load(&p[i].finished), "thread %d did not finish", i);
    print_message("%u collections, 4 threads contending a mutex\n",
                  num_gc() - first);
}

/* ---- stop = 1; pthread_join() ------------------------------------------- */

static void *allocator_main(void *arg)
{
    struct probe *p = arg;
    while (!atomic_load(&p->stop))
        if (!gc_alloc(64))
            abort();
    /* Now the joiner sits in pthread_join without a region: collections
     * must stop it by signal. */
    p->error[0] = churn((size_t)64 << 20) > 0 ? 0 : 'x';
    return NULL;
}

static void test_join_without_region(void **state)
{
    (void)state;
    struct probe p;
    memset(&p, 0, sizeof p);
    CHECK(pthread_create(&p.th, NULL, allocator_main, &p) == 0, "create");
    usleep(10000);
    atomic_store(&p.stop, 1);
    join_plain(p.th);
    CHECK(p.error[0] == 0, "no collection ran while main was in pthread_join");
}

/* ---- interrupted between GC_WRITEs -------------------------------------- */

/* A mover owns OBJECTS objects in HOLDERS heap holders; it moves them
 * between holders through a local, without allocating or calling cgc, as
 * fast as it can, so that preemption signals land between the load of the
 * barrier flag and the store, and between the two stores of a move. It
 * attaches first, as every thread that touches GC objects must: one that
 * never allocates is otherwise unknown to the collector until its first
 * GC_WRITE while marking runs, so a cycle during which it did not get the
 * CPU neither stopped it nor scanned its registers, and freed the object
 * it was moving (this test lost one in about one run in six when two
 * copies ran at once, before the movers attached). */
#define HOLDERS 256
#define OBJECTS 128
#define MOVERS  2

struct holder {
    uint64_t tag;
    char *slot;
};

static struct holder **movers_holders[MOVERS]; /* malloc'd roots */

static void *mover_main(void *arg)
{
    struct probe *p = arg;
    int me = atomic_load(&p->ready) - 1;
    if (gc_thread_attach()) {
        probe_error(p, "gc_thread_attach failed");
        return NULL;
    }
    struct holder **h = movers_holders[me];
    uint64_t x = (uint64_t)me * 7919 + 1, moves = 0;
    while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        struct holder *from = h[(x >> 20) % HOLDERS];
        struct holder *to = h[(x >> 40) % HOLDERS];
        if (!from->slot || to->slot || from == to)
            continue;
        char *obj = from->slot;
        GC_WRITE(from->slot, NULL); /* obj is only in a register now */
        GC_WRITE(to->slot, obj);
        moves++;
    }
    size_t found = 0;
    for (int i = 0; i < HOLDERS; i++) {
        char *obj = h[i]->slot;
        if (!obj)
            continue;
        found++;
        if (gc_base(obj) != obj || check_pattern(obj, 64, 99) != 64)
            probe_error(p, "a moved object was reclaimed or damaged");
    }
    if (found != OBJECTS)
        probe_error(p, "objects were lost from the holders");
    print_message("mover %d: %llu moves\n", me, (unsigned long long)moves);
    return NULL;
}

static void test_preempted_between_barrier_and_store(void **state)
{
    (void)state;
    struct probe p[MOVERS];
    memset(p, 0, sizeof p);
    for (int m = 0; m < MOVERS; m++) {
        movers_holders[m] = calloc(HOLDERS, sizeof *movers_holders[m]);
        CHECK(movers_holders[m] != NULL, "calloc");
        CHECK(gc_root_add(movers_holders[m],
                          HOLDERS * sizeof *movers_holders[m]) == 0,
              "gc_root_add");
        for (int i = 0; i < HOLDERS; i++) {
            struct holder *h = gc_alloc(sizeof *h);
            CHECK(h != NULL, "gc_alloc");
            h->tag = (uint64_t)i;
            GC_WRITE(movers_holders[m][i], h);
            if (i < OBJECTS) {
                char *obj = gc_alloc(64);
                CHECK(obj != NULL, "gc_alloc");
                fill_pattern(obj, 64, 99);
                GC_WRITE(h->slot, obj);
            }
        }
        atomic_store(&p[m].ready, m + 1);
        CHECK(pthread_create(&p[m].th, NULL, mover_main, &p[m]) == 0, "create");
    }
    uint32_t cycles = churn(scaled((size_t)512 << 20, (size_t)64 << 20));
    for (int m = 0; m < MOVERS; m++)
        atomic_store(&p[m].stop, 1);
    for (int m = 0; m < MOVERS; m++) {
        join_plain(p[m].th);
        CHECK(p[m].error[0] == 0, "mover %d: %s", m, p[m].error);
        CHECK(gc_root_remove(movers_holders[m]) == 0, "gc_root_remove");
        free(movers_holders[m]);
    }
    CHECK(cycles >= 5, "only %u collections while the movers ran", cycles);
}

/* ---- a thread inside the loader ------------------------------------------ */

/* Spends its time inside dl_iterate_phdr callbacks, that is holding the
 * loader's lock, without calling cgc: the signal may stop it there while
 * checkmark (on in this mode) reads module data with the world stopped. */
static int loader_callback(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uint64_t *x = data;
    for (int i = 0; i < 2000; i++)
        *x = *x * 31 + (uint64_t)info->dlpi_phnum;
    return 0;
}

static void *loader_main(void *arg)
{
    struct probe *p = arg;
    char *obj = new_pattern_object(53);
    atomic_store(&p->ready, 1);
    uint64_t x = 1;
    while (!atomic_load_explicit(&p->stop, memory_order_relaxed))
        dl_iterate_phdr(loader_callback, &x);
    if (!pattern_intact(obj, 53) || x == 42)
        probe_error(p, "the object held by the thread in the loader was lost");
    return NULL;
}

static void test_thread_inside_the_loader(void **state)
{
    (void)state;
    struct probe p;
    memset(&p, 0, sizeof p);
    CHECK(pthread_create(&p.th, NULL, loader_main, &p) == 0, "create");
    while (!atomic_load(&p.ready))
        usleep(1000);
    uint32_t cycles = churn(scaled((size_t)256 << 20, (size_t)32 << 20));
    atomic_store(&p.stop, 1);
    join_plain(p.th);
    CHECK(p.error[0] == 0, "%s", p.error);
    CHECK(cycles >= 5, "only %u collections while a thread sat in the loader",
          cycles);
}

/* ---- a thread that exits without detaching ------------------------------- */

static atomic_int vanisher_tid;

static void *vanisher_main(void *arg)
{
    (void)arg;
    if (!gc_alloc(64)) /* attaches */
        abort();
    atomic_store(&vanisher_tid, (int)syscall(SYS_gettid));
    /* The exit system call directly: no thread-exit hooks run, so the
     * thread stays in cgc's registry with a stack that no longer exists. */
    syscall(SYS_exit, 0);
    return NULL;
}

static bool vanisher_attached(pid_t tid)
{
    (void)tid;
    return atomic_load(&vanisher_tid) != 0;
}

static bool thread_gone(pid_t tid)
{
    return syscall(SYS_tgkill, getpid(), tid, 0) != 0 && errno == ESRCH;
}

/* Poll cond(tid) every millisecond for up to 10 s; whether it came true. */
static bool wait_until(bool (*cond)(pid_t), pid_t tid)
{
    uint64_t until = mono_ns() + 10000000000ull;
    while (!cond(tid)) {
        if (mono_ns() > until)
            return false;
        usleep(1000);
    }
    return true;
}

static void test_thread_exits_without_detaching(void **state)
{
    (void)state;
    pthread_t th;
    pthread_attr_t attr;
    /* From before the thread starts: a cycle may find it gone at once. */
    struct capture c;
    capture_begin(&c);
    atomic_store(&vanisher_tid, 0);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    CHECK(pthread_create(&th, &attr, vanisher_main, NULL) == 0, "create");
    pthread_attr_destroy(&attr);
    /* Attached, then gone from the kernel (a signal to it says ESRCH): not
     * a fixed sleep, which a loaded machine outlasted once. */
    CHECK(wait_until(vanisher_attached, 0),
          "the thread did not attach within 10 s");
    pid_t tid = (pid_t)atomic_load(&vanisher_tid);
    CHECK(wait_until(thread_gone, tid), "thread %d did not exit within 10 s",
          (int)tid);
    gc_collect();
    gc_collect();
    char *err = capture_end(&c);
    CHECK(strstr(err, "exited without detaching") != NULL,
          "no report of the vanished thread; stderr:\n%s", err);
    CHECK(count_lines(err, "cgc: thread", "exited without detaching", NULL) ==
              1,
          "the vanished thread was reported more than once:\n%s", err);
    free(err);
}

/* ---- cooperative mode: a thread that skips safepoints is named ----------- */

static void *late_main(void *arg)
{
    struct probe *p = arg;
    pthread_setname_np(pthread_self(), "cgc-late");
    char *obj = new_pattern_object(31);
    atomic_store(&p->ready, 1);
    uint64_t until = mono_ns() + 1500000000ull, x = 1;
    while (mono_ns() < until)
        x = x * 3 + 1;
    gc_safepoint();
    if (!pattern_intact(obj, 31) || x == 42)
        probe_error(p, "the late thread's object was lost");
    return NULL;
}

static void test_late_thread_is_named(void **state)
{
    (void)state;
    struct probe p;
    memset(&p, 0, sizeof p);
    CHECK(pthread_create(&p.th, NULL, late_main, &p) == 0, "create");
    while (!atomic_load(&p.ready))
        usleep(1000);
    struct capture c;
    capture_begin(&c);
    gc_collect();
    char *err = capture_end(&c);
    gc_blocking_begin();
    pthread_join(p.th, NULL);
    gc_blocking_end();
    CHECK(p.error[0] == 0, "%s", p.error);
    CHECK(strstr(err, "has not reached a safepoint") != NULL &&
              strstr(err, "cgc-late") != NULL,
          "no warning naming the thread that ran 1.5 s without a safepoint; "
          "stderr:\n%s",
          err);
    free(err);
}

/* ---- a thread that blocks the signal is reported once -------------------- */

static void *blocker_main(void *arg)
{
    struct probe *p = arg;
    pthread_setname_np(pthread_self(), "cgc-blocker");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, atoi(getenv("CGC_SIGNAL")));
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    char *obj = new_pattern_object(41);
    atomic_store(&p->ready, 1);
    usleep(2500000); /* no region, signal blocked */
    if (!gc_alloc(16) || !pattern_intact(obj, 41)) /* a safepoint */
        probe_error(p, "the blocking thread's object was lost");
    return NULL;
}

static void test_blocked_signal_is_reported(void **state)
{
    (void)state;
    struct probe p;
    memset(&p, 0, sizeof p);
    CHECK(pthread_create(&p.th, NULL, blocker_main, &p) == 0, "create");
    while (!atomic_load(&p.ready))
        usleep(1000);
    struct capture c;
    capture_begin(&c);
    gc_collect(); /* completes once the thread reaches its safepoint */
    char *err = capture_end(&c);
    gc_blocking_begin();
    pthread_join(p.th, NULL);
    gc_blocking_end();
    CHECK(p.error[0] == 0, "%s", p.error);
    CHECK(count_lines(err, "cgc: thread", "blocks signal", NULL) == 1,
          "expected one report of the thread blocking the signal; "
          "stderr:\n%s",
          err);
    CHECK(strstr(err, "cgc-blocker") != NULL, "the report names no thread:\n%s",
          err);
    free(err);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "default";
    if (strcmp(mode, "default") == 0) {
        setenv("CGC_DEBUG", "gccheckmark=1", 1);
        setenv("CGC_PERCENT", "25", 1);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_thread_blocked_in_read),
            cmocka_unit_test(test_thread_in_compute_loop),
            cmocka_unit_test(test_contended_mutex_around_allocation),
            cmocka_unit_test(test_join_without_region),
            cmocka_unit_test(test_preempted_between_barrier_and_store),
            cmocka_unit_test(test_thread_inside_the_loader),
            cmocka_unit_test(test_thread_exits_without_detaching),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    if (strcmp(mode, "cooperative") == 0) {
        setenv("CGC_DEBUG", "asyncpreemptoff=1", 1);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_late_thread_is_named),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    if (strcmp(mode, "blocked") == 0) {
        char sig[16];
        snprintf(sig, sizeof sig, "%d", SIGRTMIN + 5);
        setenv("CGC_SIGNAL", sig, 1);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_blocked_signal_is_reported),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    fprintf(stderr, "usage: %s [default|cooperative|blocked]\n", argv[0]);
    return 2;
}
