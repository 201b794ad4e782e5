/*
 * test_badinput — every bad input the header documents.
 *
 * Size 0 (a unique non-NULL object) and impossible sizes (SIZE_MAX,
 * SIZE_MAX/2, sizes that wrap when rounded up) for every allocation
 * function (NULL, ENOMEM, no crash, the heap works afterwards), and sizes
 * beyond the machine's RAM + swap (2^40, 2^44: refused at once with ENOMEM
 * while 64 MiB still works);
 * gc_free / gc_size / gc_realloc on NULL, a stack address, a malloc
 * pointer, an interior pointer, a freed object and a double free (gc_free
 * reports one line naming gc_free on stderr and leaves the heap as it was;
 * gc_realloc fails with EINVAL); gc_type_new and gc_alloc_typed argument
 * checks; gc_strdup(NULL); gc_read_stats(NULL); gc_blocking_end outside a
 * region aborts naming gc_blocking_end, gc_shutdown with another thread
 * attached refuses naming gc_shutdown, and gc_alloc from a signal handler
 * that interrupted an allocation aborts naming the re-entry (all in a
 * re-executed child).
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/time.h>

#define MiB ((uint64_t)1 << 20)

static const gc_type *t8;  /* 8 bytes, pointer at 0 */
static const gc_type *t32; /* 32 bytes, pointers at 0 and 16 */
static char a_global[256];

static unsigned seed_of(const void *p)
{
    return (unsigned)((uintptr_t)p >> 4);
}

/* A few live objects to check that bad calls leave the heap alone. */
#define NWIT 64
static void *witness[NWIT];

static void witnesses_make(void)
{
    for (size_t i = 0; i < NWIT; i++) {
        size_t sz = 16 + i * 40;
        GC_WRITE(witness[i], (i % 8 == 7) ? gc_alloc(40000 + i) : gc_alloc(sz));
        fill_pattern(witness[i], gc_size(witness[i]), seed_of(witness[i]));
    }
}

static void witnesses_check(const char *after)
{
    /* Allocate and collect, then everything must be intact. */
    for (size_t i = 0; i < 2000; i++)
        memset(gc_alloc(48), 0xcc, 48);
    gc_collect();
    for (size_t i = 0; i < NWIT; i++) {
        void *w = witness[i];
        CHECK(gc_base(w) == w, "after %s: live object %zu was freed", after, i);
        size_t u = gc_size(w);
        CHECK(check_pattern(w, u, seed_of(w)) == u,
              "after %s: live object %zu was changed at byte %zu", after, i,
              check_pattern(w, u, seed_of(w)));
    }
    void *p = gc_alloc(100);
    CHECK(p != NULL && gc_base(p) == p, "after %s: gc_alloc broken", after);
}

/* ---- size 0
 * ------------------------------------------------------------------ */

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a;
    uintptr_t y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static void check_zero_sized(const char *what, void **objs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(objs[i] != NULL, "%s #%zu returned NULL (errno %d)", what, i,
              errno);
        CHECK(gc_base(objs[i]) == objs[i], "%s #%zu: gc_base(p) = %p, p = %p",
              what, i, gc_base(objs[i]), objs[i]);
        CHECK(gc_size(objs[i]) > 0, "%s #%zu: gc_size is 0 for a live object",
              what, i);
    }
    qsort(objs, n, sizeof *objs, cmp_ptr);
    for (size_t i = 1; i < n; i++)
        CHECK(objs[i] != objs[i - 1], "%s returned the same object %p twice",
              what, objs[i]);
}

static void test_size_zero(void **state)
{
    (void)state;
    enum { N = 100 };
    void *objs[N];
    const char *names[] = {"gc_alloc(0)",     "gc_alloc_noscan(0)",
                           "gc_calloc(0, 8)", "gc_calloc(8, 0)",
                           "gc_calloc(0, 0)", "gc_realloc(NULL, 0)",
                           "gc_realloc(p, 0)"};
    for (int k = 0; k < 7; k++) {
        for (size_t i = 0; i < N; i++) {
            errno = 0;
            switch (k) {
            case 0:
                objs[i] = gc_alloc(0);
                break;
            case 1:
                objs[i] = gc_alloc_noscan(0);
                break;
            case 2:
                objs[i] = gc_calloc(0, 8);
                break;
            case 3:
                objs[i] = gc_calloc(8, 0);
                break;
            case 4:
                objs[i] = gc_calloc(0, 0);
                break;
            case 5:
                objs[i] = gc_realloc(NULL, 0);
                break;
            default:
                objs[i] = gc_realloc(gc_alloc(32), 0);
                break;
            }
        }
        check_zero_sized(names[k], objs, N);
    }
}

/* ---- impossible sizes -------------------------------------------------------
 */

static const size_t huge_sizes[] = {
    SIZE_MAX,
    SIZE_MAX - 1,
    SIZE_MAX / 2,
    SIZE_MAX / 2 + 1,
    SIZE_MAX - 4095,            /* wraps when rounded to a 4 KiB page */
    SIZE_MAX - 8191,            /* wraps when rounded to an 8 KiB page */
    SIZE_MAX - (64u << 20) + 1, /* wraps when rounded to a 64 MiB arena */
    (size_t)1 << 63,
    (size_t)1 << 50,
    (size_t)1 << 47, /* the whole user address space */
};
#define NHUGE (sizeof huge_sizes / sizeof huge_sizes[0])

static void test_huge_sizes(void **state)
{
    (void)state;
    witnesses_make();
    gc_stats before, after;
    gc_read_stats(&before);
    void *live = gc_alloc(64);
    fill_pattern(live, 64, 1);
    const char *names[] = {"gc_alloc",           "gc_alloc_noscan",
                           "gc_alloc_typed",     "gc_calloc(1, size)",
                           "gc_calloc(size, 1)", "gc_realloc(NULL, size)",
                           "gc_realloc(p, size)"};
    for (size_t i = 0; i < NHUGE; i++) {
        size_t sz = huge_sizes[i];
        for (int k = 0; k < 7; k++) {
            void *r;
            errno = 0;
            switch (k) {
            case 0:
                r = gc_alloc(sz);
                break;
            case 1:
                r = gc_alloc_noscan(sz);
                break;
            case 2:
                r = gc_alloc_typed(sz, t8);
                break;
            case 3:
                r = gc_calloc(1, sz);
                break;
            case 4:
                r = gc_calloc(sz, 1);
                break;
            case 5:
                r = gc_realloc(NULL, sz);
                break;
            default:
                r = gc_realloc(live, sz);
                break;
            }
            int e = errno;
            CHECK(r == NULL, "%s(%zu = 0x%zx) returned %p, expected NULL",
                  names[k], sz, sz, r);
            CHECK(e == ENOMEM, "%s(0x%zx): errno %d (%s), expected ENOMEM",
                  names[k], sz, e, strerror(e));
        }
    }
    CHECK(gc_base(live) == live && check_pattern(live, 64, 1) == 64,
          "failed gc_realloc(p, huge) touched p");
    gc_read_stats(&after);
    CHECK(after.heap_sys <= before.heap_sys + 256 * MiB,
          "heap_sys grew from %llu MiB to %llu MiB through failed "
          "allocations",
          (unsigned long long)(before.heap_sys / MiB),
          (unsigned long long)(after.heap_sys / MiB));
    witnesses_check("impossible allocation sizes");
}

/* ---- sizes the machine can never back -------------------------------------
 */

#include <sys/sysinfo.h>

/* RAM + swap, as the library bounds a request (without the rlimits, which
 * only lower it). */
static uint64_t machine_memory(void)
{
    struct sysinfo si;
    if (sysinfo(&si) != 0)
        return UINT64_MAX;
    return ((uint64_t)si.totalram + si.totalswap) * si.mem_unit;
}

/* The allocation entry points of cgc.h, by index, for a size. */
#define NENTRY 7
static const char *const entry_names[NENTRY] = {
    "gc_alloc",           "gc_alloc_noscan",    "gc_alloc_typed",
    "gc_calloc(1, size)", "gc_calloc(size, 1)", "gc_realloc(NULL, size)",
    "gc_realloc(p, size)"};

static void *call_entry(int k, size_t sz, void *p)
{
    switch (k) {
    case 0:
        return gc_alloc(sz);
    case 1:
        return gc_alloc_noscan(sz);
    case 2:
        return gc_alloc_typed(sz, t8);
    case 3:
        return gc_calloc(1, sz);
    case 4:
        return gc_calloc(sz, 1);
    case 5:
        return gc_realloc(NULL, sz);
    default:
        return gc_realloc(p, sz);
    }
}

/* 1 TiB and 16 TiB fit the address space, but no machine this runs on has
 * them: each entry point refuses them at once with ENOMEM (it used to map
 * them, 16 GiB of metadata and a minute for 2^44, and every later cycle
 * scanned the 2^40 bytes of a gc_alloc), and the heap is unchanged. A size
 * the machine can hold still works. */
static void test_beyond_machine_memory(void **state)
{
    (void)state;
    static const size_t sizes[] = {(size_t)1 << 40, (size_t)1 << 44};
    uint64_t machine = machine_memory();
    witnesses_make();
    gc_stats before, after;
    gc_read_stats(&before);
    void *live = gc_alloc(64);
    fill_pattern(live, 64, 2);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (sizes[i] <= machine) {
            print_message("skipping %zu bytes: this machine has %llu bytes "
                          "of RAM + swap\n",
                          sizes[i], (unsigned long long)machine);
            continue;
        }
        for (int k = 0; k < NENTRY; k++) {
            errno = 0;
            void *r = call_entry(k, sizes[i], live);
            int e = errno;
            CHECK(r == NULL, "%s(%zu = 2^%d) returned %p, expected NULL",
                  entry_names[k], sizes[i], __builtin_ctzll(sizes[i]), r);
            CHECK(e == ENOMEM, "%s(2^%d): errno %d (%s), expected ENOMEM",
                  entry_names[k], __builtin_ctzll(sizes[i]), e, strerror(e));
        }
    }
    CHECK(gc_base(live) == live && check_pattern(live, 64, 2) == 64,
          "failed gc_realloc(p, 2^40) touched p");
    gc_read_stats(&after);
    CHECK(after.heap_sys <= before.heap_sys + 256 * MiB,
          "heap_sys grew from %llu MiB to %llu MiB through refused "
          "allocations",
          (unsigned long long)(before.heap_sys / MiB),
          (unsigned long long)(after.heap_sys / MiB));

    /* What the machine can back is still served, by every entry point. */
    for (int k = 0; k < NENTRY; k++) {
        void *r = call_entry(k, (size_t)64 << 20, live);
        CHECK(r != NULL && gc_size(r) >= ((size_t)64 << 20),
              "%s(64 MiB) failed (errno %d, %s)", entry_names[k], errno,
              strerror(errno));
    }
    /* A quarter of the machine (at most 4 GiB: address space only, a
     * noscan object is neither touched nor scanned). */
    size_t big = machine / 4 < ((uint64_t)4 << 30) ? (size_t)(machine / 4)
                                                   : (size_t)4 << 30;
    void *r = gc_alloc_noscan(big);
    CHECK(r != NULL && gc_size(r) >= big,
          "gc_alloc_noscan(%zu), a quarter of RAM + swap, failed (errno %d)",
          big, errno);
    r = NULL;
    gc_collect();
    witnesses_check("allocations beyond the machine's memory");
}

/* ---- gc_free --------------------------------------------------------------
 */

/* Call gc_free(p) with stderr captured; return the number of lines it
 * printed and (through *naming) how many of them contain "gc_free". */
static size_t free_captured(void *p, size_t *naming)
{
    struct capture c;
    capture_begin(&c);
    gc_free(p);
    char *text = capture_end(&c);
    size_t lines = count_lines(text, NULL, NULL, NULL);
    *naming = count_lines(text, NULL, "gc_free", NULL);
    free(text);
    return lines;
}

static void expect_free_reported(void *p, const char *what)
{
    size_t naming = 0;
    size_t lines = free_captured(p, &naming);
    CHECK(lines == 1 && naming == 1,
          "gc_free(%s = %p): %zu line(s) on stderr, %zu naming gc_free; "
          "expected exactly one line naming gc_free",
          what, p, lines, naming);
}

static void test_free_null_silent(void **state)
{
    (void)state;
    size_t naming = 0;
    size_t lines = free_captured(NULL, &naming);
    CHECK(lines == 0, "gc_free(NULL) printed %zu line(s)", lines);
}

static void test_free_bad_pointers(void **state)
{
    (void)state;
    witnesses_make();
    int local = 0;
    void *m = malloc(64);
    CHECK(m != NULL, "malloc");
    expect_free_reported(&local, "a stack address");
    expect_free_reported(m, "a malloc pointer");
    expect_free_reported(a_global + 8, "a global");
    expect_free_reported((void *)(uintptr_t)0x1000, "address 0x1000");
    free(m);
    witnesses_check("gc_free of non-GC pointers");
}

static void test_free_interior_pointer(void **state)
{
    (void)state;
    witnesses_make();
    for (int large = 0; large < 2; large++) {
        size_t sz = large ? 100000 : 64;
        unsigned char *p = gc_alloc(sz);
        fill_pattern(p, sz, 77);
        expect_free_reported(p + 8, large ? "interior of a large object"
                                          : "interior of a small object");
        expect_free_reported(p + sz - 1, "last byte of an object");
        gc_collect();
        CHECK(gc_base(p) == p, "gc_free(interior) freed the object (%s)",
              large ? "large" : "small");
        CHECK(check_pattern(p, sz, 77) == sz,
              "gc_free(interior) changed the object (%s)",
              large ? "large" : "small");
        /* And the object can still be freed properly. */
        size_t naming = 0;
        CHECK(free_captured(p, &naming) == 0,
              "gc_free of a live object's start printed something");
    }
    witnesses_check("gc_free of interior pointers");
}

static void test_double_free(void **state)
{
    (void)state;
    witnesses_make();
    for (int large = 0; large < 2; large++) {
        size_t sz = large ? 200000 : 48;
        void *p = gc_alloc(sz);
        size_t naming = 0;
        CHECK(free_captured(p, &naming) == 0,
              "first gc_free of a live %s object printed something",
              large ? "large" : "small");
        expect_free_reported(p, large ? "a freed large object (double free)"
                                      : "a freed object (double free)");
        gc_collect();
        expect_free_reported(p, "a freed object after gc_collect");
    }
    witnesses_check("double free");
}

/* ---- gc_size / gc_realloc on bad pointers ----------------------------------
 */

static void test_size_of_bad_pointers(void **state)
{
    (void)state;
    int local = 0;
    void *m = malloc(64);
    CHECK(m != NULL, "malloc");
    void *freed = gc_alloc(64);
    gc_free(freed);
    gc_collect();
    const void *cases[] = {NULL, &local, m, a_global, freed};
    const char *names[] = {"NULL", "a stack address", "a malloc pointer",
                           "a global", "a freed object (after gc_collect)"};
    for (size_t i = 0; i < 5; i++)
        CHECK(gc_size(cases[i]) == 0, "gc_size(%s) = %zu, expected 0", names[i],
              gc_size(cases[i]));
    unsigned char *p = gc_alloc(100);
    CHECK(gc_size(p + 50) == gc_size(p),
          "gc_size(interior) = %zu, expected "
          "%zu",
          gc_size(p + 50), gc_size(p));
    free(m);
}

static void test_realloc_bad_pointers(void **state)
{
    (void)state;
    witnesses_make();
    int local = 0;
    void *m = malloc(64);
    CHECK(m != NULL, "malloc");
    unsigned char *obj = gc_alloc(64);
    fill_pattern(obj, 64, 5);
    unsigned char *big = gc_alloc(100000);
    void *freed_now = gc_alloc(64);
    gc_free(freed_now);
    void *freed_old = gc_alloc(64);
    gc_free(freed_old);
    gc_collect();
    struct {
        void *p;
        const char *what;
    } cases[] = {
        {&local, "a stack address"},
        {m, "a malloc pointer"},
        {a_global, "a global"},
        {obj + 8, "an interior pointer"},
        {obj + 63, "a pointer to the last byte"},
        {big + 5000, "an interior pointer of a large object"},
        {freed_old, "an object freed before gc_collect"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        errno = 0;
        void *r = gc_realloc(cases[i].p, 128);
        CHECK(r == NULL, "gc_realloc(%s, 128) returned %p, expected NULL",
              cases[i].what, r);
        CHECK_ERRNO(EINVAL, cases[i].what);
    }
    CHECK(gc_base(obj) == obj && check_pattern(obj, 64, 5) == 64,
          "gc_realloc(interior) changed the object");
    free(m);
    witnesses_check("gc_realloc of bad pointers");
}

static void test_realloc_just_freed(void **state)
{
    (void)state;
    void *p = gc_alloc(64);
    gc_free(p);
    errno = 0;
    void *r = gc_realloc(p, 128);
    CHECK(r == NULL, "gc_realloc of an object just gc_free'd returned %p", r);
    CHECK_ERRNO(EINVAL, "gc_realloc(just freed)");
}

/* ---- types -----------------------------------------------------------------
 */

static void test_type_new_bad(void **state)
{
    (void)state;
    static const size_t o0[] = {0};
    static const size_t o16[] = {16};
    static const size_t o12[] = {12};
    static const size_t o4[] = {4};
    static const size_t o8[] = {8};
    static const size_t owrap[] = {SIZE_MAX - 7};
    static const size_t omix[] = {0, 8, 24};
    static const size_t obig[] = {(size_t)1 << 62};
    struct {
        size_t size;
        const size_t *offs;
        size_t n;
        const char *what;
    } bad[] = {
        {0, NULL, 0, "size 0"},
        {0, o0, 1, "size 0 with an offset"},
        {16, NULL, 1, "NULL offsets with n_ptrs 1"},
        {16, NULL, 5, "NULL offsets with n_ptrs 5"},
        {16, o16, 1, "offset 16 in a 16-byte type"},
        {32, o12, 1, "misaligned offset 12"},
        {16, o4, 1, "misaligned offset 4"},
        {15, o8, 1, "offset 8 + 8 > size 15"},
        {16, owrap, 1, "offset SIZE_MAX-7 (offset + 8 wraps)"},
        {24, omix, 3, "third offset 24 outside a 24-byte type"},
        {64, obig, 1, "offset 2^62 in a 64-byte type"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        const gc_type *t = gc_type_new(bad[i].size, bad[i].offs, bad[i].n);
        CHECK(t == NULL, "gc_type_new(%s) returned %p, expected NULL",
              bad[i].what, (const void *)t);
        CHECK_ERRNO(EINVAL, bad[i].what);
    }
    /* Valid edge cases. */
    static const size_t o16_0[] = {16, 0};
    static const size_t olast[] = {0, (1u << 20) - 8};
    CHECK(gc_type_new(16, NULL, 0) != NULL, "gc_type_new(16, NULL, 0) (no "
                                            "pointers) failed");
    CHECK(gc_type_new(8, o0, 1) != NULL, "gc_type_new(8, {0}, 1) failed");
    CHECK(gc_type_new(15, o0, 1) != NULL, "gc_type_new(15, {0}, 1) failed");
    CHECK(gc_type_new(24, o16, 1) != NULL, "gc_type_new(24, {16}, 1) failed");
    CHECK(gc_type_new(32, o16_0, 2) != NULL, "gc_type_new(32, {16, 0}, 2) "
                                             "(unsorted) failed");
    CHECK(gc_type_new(1u << 20, olast, 2) != NULL,
          "gc_type_new(1 MiB, {0, 1 MiB - 8}, 2) failed");
}

static void test_alloc_typed_bad(void **state)
{
    (void)state;
    errno = 0;
    CHECK(gc_alloc_typed(64, NULL) == NULL, "gc_alloc_typed(64, NULL) did "
                                            "not fail");
    CHECK_ERRNO(EINVAL, "gc_alloc_typed(64, NULL)");
    static const size_t small[] = {0, 1, 8, 16, 31};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        errno = 0;
        void *p = gc_alloc_typed(small[i], t32);
        CHECK(p == NULL, "gc_alloc_typed(%zu, 32-byte type) returned %p",
              small[i], p);
        CHECK_ERRNO(EINVAL, "gc_alloc_typed(size smaller than the type)");
    }
    void *ok = gc_alloc_typed(32, t32);
    CHECK(ok != NULL, "gc_alloc_typed(32, 32-byte type) failed");
    ok = gc_alloc_typed(33, t32);
    CHECK(ok != NULL, "gc_alloc_typed(33, 32-byte type) failed");
}

static void test_strdup_null(void **state)
{
    (void)state;
    errno = 0;
    CHECK(gc_strdup(NULL) == NULL, "gc_strdup(NULL) did not return NULL");
    CHECK_ERRNO(EINVAL, "gc_strdup(NULL)");
}

static void test_read_stats_null(void **state)
{
    (void)state;
    gc_read_stats(NULL); /* must not crash */
    gc_stats s;
    gc_read_stats(&s);
    CHECK(s.mallocs > 0, "gc_read_stats after gc_read_stats(NULL) broken");
}

/* ---- aborts and refusals, in a re-executed child
 * ----------------------------- */

static const char *self_path = "/proc/self/exe";

static void exec_self(int result_fd, void *arg)
{
    (void)result_fd;
    execl(self_path, "test_badinput", "--child", (const char *)arg,
          (char *)NULL);
    fprintf(stderr, "execl failed: %s\n", strerror(errno));
    _exit(127);
}

static void expect_abort(const char *scenario)
{
    struct child_result r;
    char how[128];
    run_child(exec_self, (void *)scenario, 60, &r);
    describe_status(r.status, how, sizeof how);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT,
          "%s: child %s, expected abort (SIGABRT); its stderr:\n%s", scenario,
          how, r.err);
    CHECK(count_lines(r.err, NULL, "gc_blocking_end", NULL) >= 1,
          "%s: the abort message does not name gc_blocking_end; stderr:\n%s",
          scenario, r.err);
}

static void test_blocking_end_without_begin_aborts(void **state)
{
    (void)state;
    expect_abort("blocking-end-without-begin");
    expect_abort("blocking-end-twice");
    expect_abort("blocking-end-before-init");
}

/* A signal handler that allocates, raised (SIGPROF, every few ms of CPU)
 * while the child allocates in a loop: the handler soon interrupts an
 * allocation, and the re-entry must abort with a message that names it,
 * not deadlock on a lock the interrupted call holds (large objects, the
 * slow path) nor hand out a slot twice (small objects, the fast path). */
static void expect_reentry_abort(const char *scenario)
{
    struct child_result r;
    char how[128];
    run_child(exec_self, (void *)scenario, 30, &r);
    describe_status(r.status, how, sizeof how);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT,
          "%s: child %s, expected abort (SIGABRT) on re-entry (SIGALRM: it "
          "hung); its stderr:\n%s",
          scenario, how, r.err);
    CHECK(count_lines(r.err, "cgc: gc_alloc: ", "signal handler",
                      "not async-signal-safe") == 1,
          "%s: the abort message does not name the re-entry of gc_alloc "
          "from a signal handler; stderr:\n%s",
          scenario, r.err);
}

static void test_alloc_from_signal_handler_aborts(void **state)
{
    (void)state;
    expect_reentry_abort("alloc-in-signal-handler-large");
    expect_reentry_abort("alloc-in-signal-handler-small");
}

static void test_shutdown_refused_with_attached_thread(void **state)
{
    (void)state;
    struct child_result r;
    char how[128];
    run_child(exec_self, (void *)"shutdown-with-attached-thread", 60, &r);
    describe_status(r.status, how, sizeof how);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
          "child %s; its stderr:\n%s", how, r.err);
    CHECK(count_lines(r.err, NULL, "gc_shutdown", NULL) == 1,
          "expected exactly one line naming gc_shutdown (the refused call); "
          "stderr:\n%s",
          r.err);
    CHECK(count_lines(r.err, "CHILD: object intact", NULL, NULL) == 1,
          "the refused gc_shutdown did something to the heap; stderr:\n%s",
          r.err);
    CHECK(count_lines(r.err, "CHILD: restarted", NULL, NULL) == 1,
          "the heap did not work after gc_shutdown; stderr:\n%s", r.err);
}

/* Child scenarios. */
static atomic_int child_attached;
static int child_pipe[2];

static void *attached_thread(void *arg)
{
    (void)arg;
    if (gc_thread_attach() != 0)
        return NULL;
    void *p = gc_alloc(32);
    (void)p;
    atomic_store(&child_attached, 1);
    char c;
    gc_blocking_begin();
    while (read(child_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    gc_blocking_end();
    return NULL;
}

static void allocating_handler(int sig)
{
    (void)sig;
    void *volatile p = gc_alloc(24);
    (void)p;
}

/* Allocate in a loop while SIGPROF runs allocating_handler; returns only if
 * no re-entry was caught within 10 s. */
static int alloc_under_signals(size_t size)
{
    sigset_t prof;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    /* The collector's threads inherit the mask: the signal comes here. */
    pthread_sigmask(SIG_BLOCK, &prof, NULL);
    gc_init();
    (void)gc_alloc(16);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = allocating_handler;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPROF, &sa, NULL) != 0)
        return 5;
    pthread_sigmask(SIG_UNBLOCK, &prof, NULL);
    struct itimerval every = {{0, 100}, {0, 100}}; /* the tick, really */
    if (setitimer(ITIMER_PROF, &every, NULL) != 0)
        return 6;
    uint64_t t0 = mono_ns();
    while (mono_ns() - t0 < 10000000000u)
        for (int i = 0; i < 1000; i++) {
            void *volatile p = gc_alloc(size);
            (void)p;
        }
    fprintf(stderr, "CHILD: no re-entry was caught in 10 s\n");
    return 0;
}

static int child_main(const char *scenario)
{
    if (strcmp(scenario, "alloc-in-signal-handler-large") == 0)
        return alloc_under_signals(40000);
    if (strcmp(scenario, "alloc-in-signal-handler-small") == 0)
        return alloc_under_signals(48);
    if (strcmp(scenario, "blocking-end-without-begin") == 0) {
        gc_init();
        (void)gc_alloc(16);
        gc_blocking_end();
        fprintf(stderr, "CHILD: blocking-end returned\n");
        return 0;
    }
    if (strcmp(scenario, "blocking-end-twice") == 0) {
        (void)gc_alloc(16);
        gc_blocking_begin();
        gc_blocking_end();
        gc_blocking_end();
        fprintf(stderr, "CHILD: second blocking-end returned\n");
        return 0;
    }
    if (strcmp(scenario, "blocking-end-before-init") == 0) {
        gc_blocking_end();
        fprintf(stderr, "CHILD: blocking-end returned\n");
        return 0;
    }
    if (strcmp(scenario, "shutdown-with-attached-thread") == 0) {
        if (pipe(child_pipe) != 0)
            return 2;
        unsigned char *obj = gc_alloc(4000);
        fill_pattern(obj, 4000, 9);
        pthread_t th;
        if (pthread_create(&th, NULL, attached_thread, NULL) != 0)
            return 3;
        while (!atomic_load(&child_attached)) {
            gc_safepoint();
            usleep(1000);
        }
        fprintf(stderr, "CHILD: calling shutdown with a thread attached\n");
        gc_shutdown(); /* refused: prints one line naming the call */
        gc_collect();
        if (gc_base(obj) == obj && check_pattern(obj, 4000, 9) == 4000)
            fprintf(stderr, "CHILD: object intact\n");
        if (write(child_pipe[1], "x", 1) != 1)
            return 4;
        gc_blocking_begin();
        pthread_join(th, NULL);
        gc_blocking_end();
        gc_shutdown(); /* allowed now: silent */
        void *p = gc_alloc(100);
        gc_collect();
        void *q = gc_alloc(100);
        if (p && q && gc_base(p) == p && gc_base(q) == q)
            fprintf(stderr, "CHILD: restarted\n");
        return 0;
    }
    fprintf(stderr, "unknown child scenario %s\n", scenario);
    return 100;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2]);

    static const size_t o0[] = {0};
    static const size_t o0_16[] = {0, 16};
    t8 = gc_type_new(8, o0, 1);
    t32 = gc_type_new(32, o0_16, 2);
    if (!t8 || !t32) {
        fprintf(stderr, "gc_type_new failed (errno %d)\n", errno);
        return 1;
    }
    if (GC_ROOT(witness) != 0) {
        fprintf(stderr, "GC_ROOT(witness) failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocking_end_without_begin_aborts),
        cmocka_unit_test(test_shutdown_refused_with_attached_thread),
        cmocka_unit_test(test_alloc_from_signal_handler_aborts),
        cmocka_unit_test(test_size_zero),
        cmocka_unit_test(test_huge_sizes),
        cmocka_unit_test(test_beyond_machine_memory),
        cmocka_unit_test(test_free_null_silent),
        cmocka_unit_test(test_free_bad_pointers),
        cmocka_unit_test(test_free_interior_pointer),
        cmocka_unit_test(test_double_free),
        cmocka_unit_test(test_size_of_bad_pointers),
        cmocka_unit_test(test_realloc_bad_pointers),
        cmocka_unit_test(test_realloc_just_freed),
        cmocka_unit_test(test_type_new_bad),
        cmocka_unit_test(test_alloc_typed_bad),
        cmocka_unit_test(test_strdup_null),
        cmocka_unit_test(test_read_stats_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
