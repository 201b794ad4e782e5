/*
 * test_checkmark.c — CGC_DEBUG=gccheckmark=1 catches a forgotten GC_WRITE.
 *
 * The scenario, in a fresh child process each time: object B is reachable
 * only through the tail C of a long rooted list. While the collector marks
 * (the list takes it a while), the main thread allocates A (black: objects
 * allocated while marking are never scanned), moves B from C to A and
 * clears C's field. With GC_WRITE the barrier shades B and all is well;
 * with plain stores B stays unmarked although A references it, so without
 * checkmark it would be freed while reachable. The death test shows that
 * checkmark aborts naming the object, its referrer and GC_WRITE; the control
 * shows the same program with the barrier survives with B intact. A third
 * child moves B into a global (module data is a root) without the barrier,
 * after marking has read that global: checkmark aborts naming the global
 * and the executable.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

struct node {
    struct node *next;
    struct node *extra;
    unsigned char payload[48];
};

static struct node *list_head; /* registered root */
static struct node *holder;    /* registered root: points to A */

static NOINLINE struct node *build_list(size_t n, struct node **tail)
{
    struct node *head = NULL, *last = NULL;
    for (size_t i = 0; i < n; i++) {
        struct node *x = gc_alloc(sizeof *x);
        if (!x)
            _exit(30);
        if (last)
            GC_WRITE(last->next, x);
        else
            head = x;
        last = x;
    }
    *tail = last;
    return head;
}

static NOINLINE void hang_b_on(struct node *c)
{
    struct node *b = gc_alloc(sizeof *b);
    memset(b->payload, 0xb5, sizeof b->payload);
    GC_WRITE(c->extra, b);
}

static void *collect_thread(void *arg)
{
    (void)arg;
    gc_collect();
    return NULL;
}

static atomic_int collect_done;

static void *collect_and_flag(void *arg)
{
    collect_thread(arg);
    atomic_store(&collect_done, 1);
    return NULL;
}

/* Move B from C to a black A, with or without the barrier. */
static NOINLINE void move_b(struct node *c, bool use_barrier)
{
    struct node *a = gc_alloc(sizeof *a); /* black: marking runs */
    GC_WRITE(holder, a);
    if (use_barrier) {
        GC_WRITE(a->extra, c->extra);
        GC_WRITE(c->extra, NULL);
    } else {
        a->extra = c->extra; /* the forgotten barriers */
        c->extra = NULL;
    }
}

/* Wait for marking to start; our stack is scanned meanwhile, before we
 * load B. In a blocking region, so that the stop does not take this thread
 * by signal: a stop that does makes the next one scan every stack again
 * (design.md, "Preemption by signal"), which finds B in a dead slot of this
 * frame as often as not and so hides the forgotten barrier. */
static void wait_for_marking(void)
{
    gc_blocking_begin();
    while (!atomic_load_explicit(&gc_internal_barrier_enabled,
                                 memory_order_relaxed))
        sched_yield();
    gc_blocking_end(); /* a safepoint: our stack is scanned by now */
    gc_safepoint();
}

static void scenario(int result_fd, void *arg)
{
    bool use_barrier = arg != NULL;
    setenv("CGC_DEBUG", "gccheckmark=1", 1);
    setenv("CGC_WORKERS", "1", 1);
    setenv("CGC_PERCENT", "off", 1);
    gc_init();
    GC_ROOT(list_head);
    GC_ROOT(holder);
    struct node *c;
    list_head = build_list((size_t)(1000000 * test_scale()) + 200000, &c);
    hang_b_on(c);
    clear_stack();

    pthread_t th;
    if (pthread_create(&th, NULL, collect_and_flag, NULL))
        _exit(31);
    wait_for_marking();
    move_b(c, use_barrier);
    while (!atomic_load(&collect_done))
        gc_safepoint();
    gc_blocking_begin();
    pthread_join(th, NULL);
    gc_blocking_end();
    /* Only reached when checkmark found nothing: B must be intact. */
    struct node *b = holder->extra;
    int ok = gc_base(b) == b;
    for (size_t i = 0; ok && i < sizeof b->payload; i++)
        ok = b->payload[i] == 0xb5;
    write_all(result_fd, &ok, sizeof ok);
}

/* The global variant: B moves from C into a global that marking has read
 * already, without the barrier. `moved` comes first, so the collector reads
 * it before it reaches `list_head` in the same data and starts draining the
 * long list from there; the main thread waits a little, so that the drain
 * is under way but not yet at C, and moves B. Exported (the executable is
 * linked with -rdynamic), so that the report can name it. */
struct checkmark_globals {
    struct node *moved;
    struct node *list_head;
};
struct checkmark_globals cgc_checkmark_globals;

static NOINLINE void move_b_to_global(uintptr_t hidden_c)
{
    struct node *c = unhide(hidden_c);
    cgc_checkmark_globals.moved = c->extra; /* the forgotten barriers */
    c->extra = NULL;
}

static NOINLINE uintptr_t build_global_list(void)
{
    struct node *c;
    struct node *head =
        build_list((size_t)(1000000 * test_scale()) + 200000, &c);
    GC_WRITE(cgc_checkmark_globals.list_head, head);
    hang_b_on(c);
    return hide(c);
}

static void scenario_global(int result_fd, void *arg)
{
    (void)result_fd;
    (void)arg;
    setenv("CGC_DEBUG", "gccheckmark=1", 1);
    setenv("CGC_WORKERS", "1", 1);
    setenv("CGC_PERCENT", "off", 1);
    gc_init();
    uintptr_t hidden_c = build_global_list(); /* C only hidden on our stack */
    clear_stack();
    pthread_t th;
    if (pthread_create(&th, NULL, collect_and_flag, NULL))
        _exit(31);
    wait_for_marking();
    struct timespec pause = {0, 1000000}; /* 1 ms: the drain is under way */
    nanosleep(&pause, NULL);
    move_b_to_global(hidden_c);
    while (!atomic_load(&collect_done))
        gc_safepoint();
    gc_blocking_begin();
    pthread_join(th, NULL);
    gc_blocking_end();
}

/* Run a scenario whose child must abort from gccheckmark, and check that it
 * did. The marker must not reach the hidden object before the mutation,
 * which a heavily loaded machine can delay past the whole mark: then the
 * child finds nothing wrong and exits normally, and we try again. */
/* A loaded machine (load 4-6 on 2 CPUs) loses 5 attempts in a row. */
#define CHECKMARK_ATTEMPTS 10

static void expect_checkmark_abort(child_fn scenario_fn, const char *child,
                                   struct child_result *r)
{
    for (int attempt = 0; attempt < CHECKMARK_ATTEMPTS; attempt++) {
        run_child(scenario_fn, NULL, 120, r);
        if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0)
            break;
        print_message("attempt %d: marking reached the object before the "
                      "mutation; again\n",
                      attempt + 1);
    }
    char how[64];
    describe_status(r->status, how, sizeof how);
    CHECK(WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGABRT,
          "the child that %s %s; expected an abort from gccheckmark. "
          "stderr:\n%s",
          child, how, r->err);
}

static void test_missing_barrier_into_global_is_named(void **state)
{
    (void)state;
    struct child_result r;
    expect_checkmark_abort(
        scenario_global, "moved a pointer into a global without GC_WRITE", &r);
    CHECK(strstr(r.err, "(global `cgc_checkmark_globals` in /"),
          "the abort message does not name the global:\n%s", r.err);
    CHECK(strstr(r.err, "test_checkmark"),
          "the abort message does not name the executable:\n%s", r.err);
    print_message("the report, as expected:\n%s", r.err);
}

static void test_missing_barrier_is_reported(void **state)
{
    (void)state;
    struct child_result r;
    expect_checkmark_abort(scenario, "forgot a barrier", &r);
    CHECK(strstr(r.err, "gccheckmark") && strstr(r.err, "GC_WRITE"),
          "the abort message names neither gccheckmark nor GC_WRITE:\n%s",
          r.err);
    CHECK(strstr(r.err, "reachable through the word at"),
          "the message does not name the referrer:\n%s", r.err);
    print_message("the report, as expected:\n%s", r.err);
}

static void test_with_barrier_nothing_is_reported(void **state)
{
    (void)state;
    struct child_result r;
    run_child(scenario, (void *)1, 120, &r);
    char how[64];
    describe_status(r.status, how, sizeof how);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
          "the child using GC_WRITE %s. stderr:\n%s", how, r.err);
    CHECK(r.data_len == sizeof(int) && *(int *)r.data == 1,
          "B was lost or damaged although every store used GC_WRITE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_barrier_is_reported),
        cmocka_unit_test(test_with_barrier_nothing_is_reported),
        cmocka_unit_test(test_missing_barrier_into_global_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
