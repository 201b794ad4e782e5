/*
 * test_fork.c — fork() with the collector running.
 *
 *   - a single-threaded program forks and the child allocates through many
 *     collections (the collector's threads do not exist in the child: they
 *     must be started again, not waited for);
 *   - a 4-thread program forks again and again while its threads churn and
 *     collections run; each child churns, calls gc_collect, reads its
 *     statistics, checks a list it inherited and exits 0; the parent's
 *     threads verify their own data afterwards;
 *   - fork + exec and posix_spawn from the multi-threaded program work.
 *
 * The busy threads also call malloc, so that fork's own locking of malloc
 * meets threads the collector stopped.
 *
 * A child that hangs is killed by its own alarm, which the parent reports.
 *
 * Under AddressSanitizer the forks from the busy program are left out: the
 * sanitizer's own allocator (GCC 12's libsanitizer) takes no part in fork,
 * so a child forked while a parent thread holds one of its locks — its
 * quarantine allocates and frees on every free() — deadlocks in the
 * sanitizer the first time a thread starts there (thread start frees the
 * buffer of pthread_getattr_np), whatever cgc does. The normal and clang
 * builds run them.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>

extern char **environ;

struct node {
    struct node *next;
    uint64_t value;
};

/* The list every child checks: built before the forks, a root. */
static struct node *inherited;
#define INHERITED_NODES 10000

static void build_inherited(void)
{
    for (uint64_t i = 0; i < INHERITED_NODES; i++) {
        struct node *n = gc_alloc(sizeof *n);
        if (!n)
            abort();
        n->value = i * 7919;
        GC_WRITE(n->next, inherited);
        GC_WRITE(inherited, n);
    }
}

static bool inherited_intact(void)
{
    uint64_t i = INHERITED_NODES;
    for (struct node *n = inherited; n; n = n->next) {
        if (i == 0 || gc_base(n) != n || n->value != --i * 7919)
            return false;
    }
    return i == 0;
}

static void churn(size_t bytes)
{
    uint64_t x = 99;
    for (size_t done = 0; done < bytes;) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t size = 32 + (size_t)((x >> 33) % 4000);
        char *p = (x & 1) ? gc_alloc(size) : gc_alloc_noscan(size);
        if (!p)
            abort();
        p[0] = 1;
        done += size;
    }
}

/* The child's life: churn, collect, check, exit with a code that says what
 * went wrong. */
static NOINLINE void child_main(size_t churn_bytes)
{
    alarm(60); /* a hang becomes SIGALRM, reported by the parent */
    gc_stats before, after;
    gc_read_stats(&before);
    churn(churn_bytes);
    gc_collect();
    gc_read_stats(&after);
    if (after.num_gc <= before.num_gc)
        _exit(3);
    if (!inherited_intact())
        _exit(4);
    char *p = gc_alloc(64); /* still allocating after gc_collect */
    if (!p)
        _exit(5);
    _exit(0);
}

static void check_child(pid_t pid, int round)
{
    int status;
    pid_t r;
    do
        r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    CHECK(r == pid, "waitpid: %s", strerror(errno));
    char buf[64];
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child %d: %s (3: no collection ran, 4: the inherited list was "
          "damaged, 5: allocation failed after gc_collect; SIGALRM: it "
          "hung)",
          round, describe_status(status, buf, sizeof buf));
}

static size_t child_churn_bytes(void)
{
    return scaled((size_t)256 << 20, (size_t)16 << 20);
}

static void test_single_threaded_child_collects(void **state)
{
    (void)state;
    CHECK(gc_root_add(&inherited, sizeof inherited) == 0, "gc_root_add");
    build_inherited();
    gc_collect(); /* the collector's threads exist and have run */
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0)
        child_main(child_churn_bytes());
    check_child(pid, 0);
    CHECK(inherited_intact(), "the parent's list was damaged");
}

/* ---- forks from a busy multi-threaded program ---------------------------- */

#define BUSY_THREADS 3

struct busy {
    pthread_t th;
    atomic_int *stop;
    struct node *list; /* this thread's own list, on its stack too */
    char error[128];
};

static void *busy_main(void *arg)
{
    struct busy *b = arg;
    struct node *head = NULL;
    uint64_t count = 0;
    while (!atomic_load(b->stop)) {
        struct node *n = gc_alloc(sizeof *n);
        if (!n)
            abort();
        n->value = count++;
        GC_WRITE(n->next, head);
        head = n;
        if (count % 4096 == 0) { /* verify, then drop */
            uint64_t v = count;
            for (struct node *m = head; m; m = m->next)
                if (m->value != --v) {
                    snprintf(b->error, sizeof b->error, "node %llu damaged",
                             (unsigned long long)v);
                    return NULL;
                }
            head = NULL;
            count = 0;
        }
        churn(256);
        /* malloc too: a thread stopped inside malloc when fork takes
         * malloc's locks must not deadlock it (fork.h) */
        free(malloc(16 + count % 2048));
    }
    return NULL;
}

static void start_busy(struct busy *busy, atomic_int *stop)
{
    memset(busy, 0, BUSY_THREADS * sizeof *busy);
    for (int i = 0; i < BUSY_THREADS; i++) {
        busy[i].stop = stop;
        CHECK(pthread_create(&busy[i].th, NULL, busy_main, &busy[i]) == 0,
              "pthread_create");
    }
}

static void stop_busy(struct busy *busy, atomic_int *stop)
{
    atomic_store(stop, 1);
    for (int i = 0; i < BUSY_THREADS; i++) {
        pthread_join(busy[i].th, NULL);
        CHECK(busy[i].error[0] == 0, "thread %d: %s", i, busy[i].error);
    }
}

#if !defined(CGC_SANITIZE_ADDRESS)
static void test_forks_during_collections(void **state)
{
    (void)state;
    atomic_int stop = 0;
    struct busy busy[BUSY_THREADS];
    start_busy(busy, &stop);
    gc_stats s0, s1;
    gc_read_stats(&s0);
    int forks = (int)scaled(100, 10);
    for (int round = 1; round <= forks; round++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0)
            child_main(child_churn_bytes());
        check_child(pid, round);
    }
    gc_read_stats(&s1);
    stop_busy(busy, &stop);
    CHECK(inherited_intact(), "the parent's list was damaged");
    print_message("%d forks while %u collections ran in the parent\n", forks,
                  s1.num_gc - s0.num_gc);
}
#endif

static void test_exec_and_spawn_from_threads(void **state)
{
    (void)state;
    atomic_int stop = 0;
    struct busy busy[BUSY_THREADS];
    start_busy(busy, &stop);
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            execl("/bin/sh", "sh", "-c", "exit 0", (char *)NULL);
            _exit(127);
        }
        check_child(pid, round);
        char *argv[] = {"sh", "-c", "exit 0", NULL};
        CHECK(posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) == 0,
              "posix_spawn");
        check_child(pid, round);
    }
    stop_busy(busy, &stop);
}

int main(void)
{
    setenv("CGC_PERCENT", "50", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_threaded_child_collects),
#if !defined(CGC_SANITIZE_ADDRESS)
        cmocka_unit_test(test_forks_during_collections),
#endif
        cmocka_unit_test(test_exec_and_spawn_from_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
