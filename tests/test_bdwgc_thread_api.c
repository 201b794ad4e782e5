/*
 * test_bdwgc_thread_api.c — the Boehm layer's thread API as a program built
 * with GC_THREADS uses it: pthread_create and friends redirected to
 * GC_pthread_*, registration of threads made otherwise, blocking regions,
 * a signal mask that cannot block the preemption signal, fork.
 *
 * White-box in two places: the registry's thread count, to see that exit
 * and cancellation detach, and the preemption signal's number.
 */
#define _GNU_SOURCE
#include <pthread.h>

/* A thread made behind the collector's back, before the redirection. */
static int raw_pthread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
    return pthread_create(t, NULL, fn, arg);
}

#define GC_THREADS
#include "test_util.h"

#include <gc.h>

#include <dlfcn.h>
#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Internal functions of cgc (src/threads.h, src/preempt.h), declared here:
 * with src/ on the include path its gc.h would shadow the Boehm one. */
size_t threads_count(void);
int preempt_signal_number(void);
/* CGC_SIGNAL, or its default (README, Configuration). */
#define PREEMPTION_SIGNAL preempt_signal_number()

#define NODE_MAGIC 0x6a09e667f3bcc908ull

struct node {
    uint64_t magic;
    struct node *next;
};

/* ---- a thread that only reads what its argument holds -------------------- */

#define LIST_LENGTH   2000
#define READER_ROUNDS 200

static atomic_int collections_done;

static void *reader(void *arg)
{
    struct node *head = arg;
    uintptr_t damaged = 0;
    int seen = 0;
    for (int round = 0; round < READER_ROUNDS; round++) {
        for (struct node *n = head; n; n = n->next)
            damaged += n->magic != NODE_MAGIC;
        /* Keep reading while collections run, without allocating. */
        while (atomic_load(&collections_done) == seen &&
               atomic_load(&collections_done) < READER_ROUNDS)
            sched_yield();
        seen = atomic_load(&collections_done);
    }
    return (void *)damaged;
}

/* The list exists only in the new thread's argument once this returns. */
static NOINLINE int start_reader(pthread_t *t)
{
    struct node *head = NULL;
    for (int i = 0; i < LIST_LENGTH; i++) {
        struct node *n = GC_MALLOC(sizeof *n);
        if (!n)
            return -1;
        n->magic = NODE_MAGIC;
        n->next = head;
        head = n;
    }
    return pthread_create(t, NULL, reader, head); /* GC_pthread_create */
}

/* Garbage that overwrites whatever slot a wrongly freed node had. */
static NOINLINE void churn(void)
{
    for (int i = 0; i < 2000; i++) {
        uint64_t *p = GC_MALLOC(sizeof(struct node));
        if (p)
            p[0] = p[1] = ~NODE_MAGIC;
    }
}

static void test_thread_reads_only_its_argument(void **state)
{
    (void)state;
    GC_INIT();
    pthread_t t;
    CHECK(start_reader(&t) == 0, "GC_pthread_create failed");
    clear_stack();
    for (int i = 0; i < READER_ROUNDS; i++) {
        churn();
        GC_gcollect();
        atomic_fetch_add(&collections_done, 1);
    }
    void *damaged = (void *)1;
    CHECK(pthread_join(t, &damaged) == 0, "GC_pthread_join failed");
    CHECK(damaged == NULL,
          "%lu nodes held only by a thread that never allocates were freed",
          (unsigned long)(uintptr_t)damaged);
}

/* ---- registration -------------------------------------------------------- */

struct registration {
    int before, first, second, registered, unregistered, after, base;
};

static void *register_self(void *arg)
{
    struct registration *r = arg;
    struct GC_stack_base sb;
    int local;
    r->base = GC_get_stack_base(&sb) == GC_SUCCESS &&
              (char *)sb.mem_base > (char *)&local;
    r->before = GC_thread_is_registered();
    r->first = GC_register_my_thread(&sb);
    r->second = GC_register_my_thread(&sb);
    r->registered = GC_thread_is_registered();
    r->unregistered = GC_unregister_my_thread();
    r->after = GC_thread_is_registered();
    return NULL;
}

static void test_register_my_thread(void **state)
{
    (void)state;
    GC_allow_register_threads();
    struct registration r;
    memset(&r, 0xff, sizeof r);
    pthread_t t;
    CHECK(raw_pthread_create(&t, register_self, &r) == 0, "pthread_create");
    CHECK(pthread_join(t, NULL) == 0, "join");
    CHECK(r.base == 1, "GC_get_stack_base gave no base above the stack");
    CHECK(r.before == 0, "a thread made by plain pthread_create is "
                         "registered before it asks");
    CHECK(r.first == GC_SUCCESS, "GC_register_my_thread gave %d", r.first);
    CHECK(r.second == GC_DUPLICATE, "a second registration gave %d", r.second);
    CHECK(r.registered == 1, "not registered after GC_register_my_thread");
    CHECK(r.unregistered == GC_SUCCESS, "GC_unregister_my_thread gave %d",
          r.unregistered);
    CHECK(r.after == 0, "still registered after GC_unregister_my_thread");
}

static void *registered_by_create(void *arg)
{
    (void)arg;
    return (void *)(uintptr_t)GC_thread_is_registered();
}

static void *exits(void *arg)
{
    (void)arg;
    pthread_exit((void *)42); /* GC_pthread_exit */
}

static void *waits_for_cancel(void *arg)
{
    sem_t *started = arg;
    sem_post(started);
    for (;;)
        pause(); /* a cancellation point */
    return NULL;
}

static void test_exit_and_cancel(void **state)
{
    (void)state;
    pthread_t t;
    void *result = NULL;
    CHECK(pthread_create(&t, NULL, registered_by_create, NULL) == 0, "create");
    CHECK(pthread_join(t, &result) == 0, "join");
    CHECK(result == (void *)1, "a thread made by GC_pthread_create is not "
                               "registered when its start routine runs");
    CHECK(pthread_create(&t, NULL, exits, NULL) == 0, "create");
    CHECK(pthread_join(t, &result) == 0 && result == (void *)42,
          "GC_pthread_exit's value did not reach GC_pthread_join");
    sem_t started;
    sem_init(&started, 0, 0);
    CHECK(pthread_create(&t, NULL, waits_for_cancel, &started) == 0, "create");
    while (sem_wait(&started) != 0)
        ;
    CHECK(pthread_cancel(t) == 0, "GC_pthread_cancel");
    CHECK(pthread_join(t, &result) == 0 && result == PTHREAD_CANCELED,
          "the cancelled thread's result is not PTHREAD_CANCELED");
    sem_destroy(&started);
    pthread_t detached;
    CHECK(pthread_create(&detached, NULL, registered_by_create, NULL) == 0,
          "create");
    CHECK(pthread_detach(detached) == 0, "GC_pthread_detach");
    /* Collections go on with the exited threads gone from the registry. */
    for (int i = 0; i < 5; i++)
        GC_gcollect();
}

/* ---- results, detachment ------------------------------------------------ */

/* Builds a list and returns it: once the thread has ended, only the
 * result GC_pthread_join will return holds it. */
static void *build_and_return(void *arg)
{
    (void)arg;
    struct node *head = NULL;
    for (int i = 0; i < LIST_LENGTH; i++) {
        struct node *n = GC_MALLOC(sizeof *n);
        if (!n)
            return NULL;
        n->magic = NODE_MAGIC;
        n->next = head;
        head = n;
    }
    return head;
}

static NOINLINE unsigned long damaged_nodes(const struct node *head)
{
    unsigned long damaged = 0, count = 0;
    for (const struct node *n = head; n && count <= LIST_LENGTH; n = n->next) {
        damaged += n->magic != NODE_MAGIC;
        count++;
    }
    return damaged + (count == LIST_LENGTH ? 0 : 1);
}

/* Freed slots need not be reused soon: a finalizer on the head tells. */
static atomic_int result_finalized;

static void count_finalized(void *obj, void *cd)
{
    (void)obj;
    (void)cd;
    atomic_fetch_add(&result_finalized, 1);
}

static void *build_watched_and_return(void *arg)
{
    void *head = build_and_return(arg);
    if (head)
        GC_register_finalizer(head, count_finalized, NULL, NULL, NULL);
    return head;
}

static void test_result_kept_until_join(void **state)
{
    (void)state;
    atomic_store(&result_finalized, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, build_watched_and_return, NULL) == 0,
          "create");
    /* The thread has ended and been unregistered long before the join. */
    for (int i = 0; i < 20; i++) {
        churn();
        GC_gcollect();
        GC_invoke_finalizers();
    }
    void *result = NULL;
    CHECK(pthread_join(t, &result) == 0, "join");
    CHECK(result != NULL, "the thread could not allocate its list");
    CHECK(atomic_load(&result_finalized) == 0,
          "a finished thread's result was found unreachable before "
          "GC_pthread_join returned it");
    unsigned long damaged = damaged_nodes(result);
    CHECK(damaged == 0,
          "%lu nodes of a finished thread's result were freed before "
          "GC_pthread_join returned it",
          damaged);
}

static void *exits_registered(void *arg)
{
    (void)arg;
    pthread_exit((void *)(uintptr_t)GC_thread_is_registered());
}

static void *parks_for_cancel(void *arg)
{
    sem_post(arg);
    for (;;)
        pause();
    return NULL;
}

static void *blocks_for_cancel(void *arg)
{
    return GC_do_blocking(parks_for_cancel, arg);
}

static void cancel_started(void *(*fn)(void *))
{
    sem_t started;
    sem_init(&started, 0, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, &started) == 0, "create");
    while (sem_wait(&started) != 0)
        ;
    void *result = NULL;
    CHECK(pthread_cancel(t) == 0, "GC_pthread_cancel");
    CHECK(pthread_join(t, &result) == 0 && result == PTHREAD_CANCELED,
          "the cancelled thread's result is not PTHREAD_CANCELED");
    sem_destroy(&started);
}

static void test_exit_and_cancel_detach(void **state)
{
    (void)state;
    GC_INIT();
    size_t before = threads_count();
    pthread_t t;
    void *result = NULL;
    CHECK(pthread_create(&t, NULL, exits_registered, NULL) == 0, "create");
    CHECK(pthread_join(t, &result) == 0, "join");
    CHECK(result == (void *)1, "not registered before GC_pthread_exit");
    CHECK(threads_count() == before,
          "%zu threads registered after GC_pthread_exit, %zu before",
          threads_count(), before);
    cancel_started(parks_for_cancel);
    CHECK(threads_count() == before,
          "%zu threads registered after a cancellation, %zu before",
          threads_count(), before);
    /* Cancelled inside GC_do_blocking: the region is left, then the thread
     * detached. */
    cancel_started(blocks_for_cancel);
    CHECK(threads_count() == before,
          "%zu threads registered after a cancellation in GC_do_blocking, "
          "%zu before",
          threads_count(), before);
    GC_gcollect(); /* the registry is consistent */
}

/* Detached by its attribute: reads its argument, reports, ends. */
static sem_t detached_done;
static atomic_ulong detached_damage;

static void *detached_reader(void *arg)
{
    for (int i = 0; i < 20; i++) {
        atomic_store(&detached_damage, damaged_nodes(arg));
        sched_yield();
    }
    sem_post(&detached_done);
    return NULL;
}

static NOINLINE int start_detached_reader(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &attr, detached_reader, build_and_return(NULL));
    pthread_attr_destroy(&attr);
    return rc;
}

static void test_detached_by_attribute(void **state)
{
    (void)state;
    sem_init(&detached_done, 0, 0);
    atomic_store(&detached_damage, 1);
    CHECK(start_detached_reader() == 0, "create");
    clear_stack();
    for (int i = 0; i < 10; i++) {
        churn();
        GC_gcollect();
    }
    while (sem_wait(&detached_done) != 0)
        ;
    CHECK(atomic_load(&detached_damage) == 0,
          "a detached thread's argument was freed");
    sem_destroy(&detached_done);
}

/* ---- blocking regions ---------------------------------------------------- */

static void *allocate_one(void *arg)
{
    (void)arg;
    return GC_MALLOC(64);
}

static void *active_inside_blocking(void *arg)
{
    (void)arg;
    return GC_call_with_gc_active(allocate_one, NULL);
}

/* gc_blocking_end aborts outside a region: this returns only inside one. */
static void *leave_and_enter_region(void *arg)
{
    gc_blocking_end();
    gc_blocking_begin();
    return arg;
}

static void test_do_blocking(void **state)
{
    (void)state;
    void *p = GC_do_blocking(active_inside_blocking, NULL);
    CHECK(p != NULL && GC_base(p) == p, "GC_call_with_gc_active inside "
                                        "GC_do_blocking could not allocate");
    CHECK(GC_call_with_gc_active(allocate_one, NULL) != NULL,
          "GC_call_with_gc_active outside a region");
    /* The region is real: cgc's own calls see it. */
    int token;
    CHECK(GC_do_blocking(leave_and_enter_region, &token) == &token,
          "GC_do_blocking did not return fn's result");
}

/* GC_do_blocking's fn waits, with the preemption signal blocked and at no
 * safepoint, for another thread's collection: it completes only if the
 * collector treats this thread as stopped. */
static sem_t collect_go, collect_done;

static void *collector(void *arg)
{
    (void)arg;
    while (sem_wait(&collect_go) != 0)
        ;
    GC_gcollect();
    sem_post(&collect_done);
    return NULL;
}

static void *wait_for_collection(void *arg)
{
    int *completed = arg;
    sigset_t preemption, old;
    sigemptyset(&preemption);
    sigaddset(&preemption, PREEMPTION_SIGNAL);
    sigprocmask(SIG_BLOCK, &preemption, &old); /* not GC_pthread_sigmask */
    sem_post(&collect_go);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    int rc;
    while ((rc = sem_timedwait(&collect_done, &deadline)) != 0 &&
           errno == EINTR)
        ;
    *completed = rc == 0;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return arg;
}

static void test_do_blocking_while_collecting(void **state)
{
    (void)state;
    GC_INIT();
    sem_init(&collect_go, 0, 0);
    sem_init(&collect_done, 0, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, collector, NULL) == 0, "create");
    GC_word before = GC_get_gc_no();
    int completed = 0;
    CHECK(GC_do_blocking(wait_for_collection, &completed) == &completed,
          "GC_do_blocking did not return fn's result");
    if (!completed) /* the signal is unblocked now: let it finish */
        while (sem_wait(&collect_done) != 0)
            ;
    CHECK(pthread_join(t, NULL) == 0, "join");
    CHECK(completed, "no collection completed while fn ran in GC_do_blocking");
    CHECK(GC_get_gc_no() > before, "GC_gc_no did not advance");
    sem_destroy(&collect_go);
    sem_destroy(&collect_done);
}

static void *read_with_lock(void *arg)
{
    return (void *)(uintptr_t)(*(int *)arg + 1);
}

static void test_alloc_lock_and_stack_base(void **state)
{
    (void)state;
    int value = 41;
    CHECK(GC_call_with_alloc_lock(read_with_lock, &value) == (void *)42,
          "GC_call_with_alloc_lock did not return fn's result");
    CHECK(GC_dlopen(NULL, RTLD_NOW) != NULL, "GC_dlopen of the program");
}

/* GC_atfork_* do nothing; fork runs cgc's handlers and the child
 * collects. */
static void test_fork(void **state)
{
    (void)state;
    GC_set_handle_fork(-1);
    GC_atfork_prepare();
    GC_atfork_parent();
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        GC_atfork_child();
        struct node *head = build_and_return(NULL);
        GC_gcollect();
        _exit(head && damaged_nodes(head) == 0 ? 0 : 1);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the child could not allocate and collect (status %d)", status);
    GC_gcollect();
}

/* ---- the signal mask ----------------------------------------------------- */

static void test_sigmask_keeps_preemption(void **state)
{
    (void)state;
    sigset_t all, old, now;
    sigfillset(&all);
    CHECK(pthread_sigmask(SIG_BLOCK, &all, &old) == 0, "GC_pthread_sigmask");
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &now) == 0, "query the mask");
    bool blocked = sigismember(&now, PREEMPTION_SIGNAL);
    bool usr1 = sigismember(&now, SIGUSR1);
    CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0, "restore");
    CHECK(!blocked, "GC_pthread_sigmask blocked the preemption signal");
    CHECK(usr1, "GC_pthread_sigmask did not block the other signals");
    /* SIG_SETMASK with every signal: the same. */
    CHECK(pthread_sigmask(SIG_SETMASK, &all, &old) == 0, "GC_pthread_sigmask");
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &now) == 0, "query the mask");
    blocked = sigismember(&now, PREEMPTION_SIGNAL);
    usr1 = sigismember(&now, SIGUSR1);
    CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0, "restore");
    CHECK(!blocked, "SIG_SETMASK blocked the preemption signal");
    CHECK(usr1, "SIG_SETMASK did not block the other signals");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_reads_only_its_argument),
        cmocka_unit_test(test_register_my_thread),
        cmocka_unit_test(test_exit_and_cancel),
        cmocka_unit_test(test_result_kept_until_join),
        cmocka_unit_test(test_exit_and_cancel_detach),
        cmocka_unit_test(test_detached_by_attribute),
        cmocka_unit_test(test_do_blocking),
        cmocka_unit_test(test_do_blocking_while_collecting),
        cmocka_unit_test(test_alloc_lock_and_stack_base),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_sigmask_keeps_preemption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
