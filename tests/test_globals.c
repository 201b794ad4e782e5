/*
 * test_globals — module data, bss and thread-local storage are roots by
 * default (CGC_SCAN_GLOBALS, src/globals.c).
 *
 * Each kind of holder keeps the ONLY pointers to 64 objects (the test keeps
 * XOR-hidden copies and clears its stack) across 100 collections, and the
 * objects keep their contents: a static array in .bss and one in .data of
 * this executable; the .bss and .data of a module loaded with dlopen after
 * the collector has run cycles; a __thread array of the main thread (whose
 * TLS is not on any stack) and of a second attached thread (glibc puts
 * that one's TLS inside its stack block, which was scanned before; the
 * case checks that nothing breaks for such threads). Then the
 * holders are cleared — or the module is dlclose'd, pointers still in it —
 * and at least 90 % of the objects are reclaimed (conservative stack
 * scanning may find a stale copy).
 *
 * In a re-executed child: with CGC_SCAN_GLOBALS=0 the objects held by a
 * static and by the main thread's TLS are reclaimed (the opt-out works);
 * with 1 they are not; a malformed value is reported once on a "cgc: "
 * line and the default (scan) used; gctrace counts a 4 MiB static array
 * in "MB globals", and 0 MB with scanning off.
 *
 * White box (INTERNAL): the ranges enumerated cover this program's .bss
 * and .data, but not cgc's own state (gc_config) nor its RELRO; the main
 * thread's recorded TLS covers our __thread array but not cgc's
 * thread_current_record; globals_describe names an exported global of the
 * program (linked with ENABLE_EXPORTS) and of the module with its offset,
 * gives the link-time address of a static, and declines heap and stack
 * addresses — the text that gccheckmark's report uses.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include "env.h"
#include "globals.h"
#include "test_globals_dso.h"
#include "threads.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>

#define NOBJ     64
#define OBJ_SIZE 48
#define CYCLES   100

/* The holders. g_bss is zero-initialised (.bss); g_data's tag puts it in
 * .data. */
static void *g_bss[NOBJ];
static struct {
    long tag;
    void *obj[NOBJ];
} g_data = {.tag = 42};
static __thread void *t_slots[NOBJ];
/* Exported (the executable is linked with -rdynamic): dladdr can name it. */
void *cgc_test_exported[4];
/* 4 MiB of bss, for the gctrace "MB globals" count (exported: a static
 * that is only written could be dropped by the compiler). */
#define BIG_BYTES ((size_t)4 << 20)
char cgc_test_big[BIG_BYTES];

static unsigned seed_of(const void *p)
{
    return (unsigned)((uintptr_t)p >> 4);
}

/* Store fresh objects into slots[0..n) through GC_WRITE; keep hidden
 * copies. No other copy survives the call. */
static NOINLINE void fill(void **slots, size_t n, uintptr_t *hidden)
{
    for (size_t i = 0; i < n; i++) {
        void *p = gc_alloc_noscan(OBJ_SIZE);
        fill_pattern(p, OBJ_SIZE, seed_of(p));
        hidden[i] = hide(p);
        GC_WRITE(slots[i], p);
    }
}

static NOINLINE void clear(void **slots, size_t n)
{
    for (size_t i = 0; i < n; i++)
        GC_WRITE(slots[i], NULL);
}

/* Lost objects, or objects whose contents changed. */
static size_t count_damaged(const uintptr_t *hidden, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        void *p = unhide(hidden[i]);
        if (gc_base(p) != p ||
            check_pattern(p, OBJ_SIZE, seed_of(p)) != OBJ_SIZE)
            bad++;
    }
    return bad;
}

/* 100 collections with the stack cleared, some garbage in between. */
static NOINLINE void collect_many(void)
{
    for (int i = 0; i < CYCLES; i++) {
        clear_stack();
        gc_collect();
        if (i % 10 == 0)
            for (int j = 0; j < 1000; j++)
                memset(gc_alloc(OBJ_SIZE), 0xee, OBJ_SIZE);
    }
}

static void expect_intact(const char *what, const uintptr_t *hidden, size_t n)
{
    size_t bad = count_damaged(hidden, n);
    CHECK(bad == 0,
          "%s: %zu of %zu objects held only there were reclaimed or "
          "damaged over %d collections",
          what, bad, n, CYCLES);
}

static void expect_reclaimed(const char *what, const uintptr_t *hidden,
                             size_t n)
{
    clear_stack();
    gc_collect();
    size_t alive = count_alive(hidden, n);
    CHECK(alive * 10 <= n,
          "%s: %zu of %zu objects still alive once nothing held them "
          "(allowed: 10%%)",
          what, alive, n);
}

/* ---- this program's data and bss ------------------------------------------
 */

static void test_static_globals(void **state)
{
    (void)state;
    uintptr_t in_bss[NOBJ], in_data[NOBJ];
    fill(g_bss, NOBJ, in_bss);
    fill(g_data.obj, NOBJ, in_data);
    collect_many();
    expect_intact("static array in .bss", in_bss, NOBJ);
    expect_intact("static array in .data", in_data, NOBJ);
    clear(g_bss, NOBJ);
    clear(g_data.obj, NOBJ);
    expect_reclaimed("static array in .bss, cleared", in_bss, NOBJ);
    expect_reclaimed("static array in .data, cleared", in_data, NOBJ);
}

/* ---- a module loaded later, then unloaded ----------------------------------
 */

static NOINLINE void *load_dso(void)
{
    void *h = dlopen(CGC_TEST_DSO, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL, "dlopen(%s): %s", CGC_TEST_DSO, dlerror());
    return h;
}

static NOINLINE void fill_dso(void *h, uintptr_t *in_bss, uintptr_t *in_data)
{
    void **bss = dlsym(h, "cgc_test_dso_bss");
    struct cgc_test_dso_data *data = dlsym(h, "cgc_test_dso_data");
    CHECK(bss && data, "dlsym in the test module: %s", dlerror());
    CHECK(data->tag == 7, "the module's .data is not initialised");
    fill(bss, DSO_SLOTS, in_bss);
    fill(data->slots, DSO_SLOTS, in_data);
}

static NOINLINE void check_dso_names(void *h)
{
    void **bss = dlsym(h, "cgc_test_dso_bss");
    char buf[512];
    CHECK(globals_describe((uintptr_t)&bss[3], buf, sizeof buf),
          "globals_describe does not find the module's bss");
    CHECK(strstr(buf, "global `cgc_test_dso_bss`+24 in ") == buf &&
              strstr(buf, "cgc_test_dso"),
          "the module's global is described as \"%s\"", buf);
}

static void test_dlopen_module(void **state)
{
    (void)state;
    uintptr_t in_bss[DSO_SLOTS], in_data[DSO_SLOTS];
    /* Cycles before the load: the module is new to the collector. */
    gc_collect();
    gc_collect();
    void *h = load_dso();
    fill_dso(h, in_bss, in_data);
    check_dso_names(h);
    collect_many();
    expect_intact("dlopen'ed module's .bss", in_bss, DSO_SLOTS);
    expect_intact("dlopen'ed module's .data", in_data, DSO_SLOTS);
    CHECK(dlclose(h) == 0, "dlclose: %s", dlerror());
    h = dlopen(CGC_TEST_DSO, RTLD_NOW | RTLD_NOLOAD);
    if (h) {
        dlclose(h);
        skip(); /* the loader kept it: nothing to learn about unloading */
    }
    /* The pointers are still in the unmapped module: they must not be
     * read, and hold nothing. */
    expect_reclaimed("objects held by an unloaded module's .bss", in_bss,
                     DSO_SLOTS);
    expect_reclaimed("objects held by an unloaded module's .data", in_data,
                     DSO_SLOTS);
}

/* ---- thread-local storage ---------------------------------------------------
 */

static void test_main_thread_tls(void **state)
{
    (void)state;
    uintptr_t hidden[NOBJ];
    fill(t_slots, NOBJ, hidden);
    collect_many();
    expect_intact("__thread array of the main thread", hidden, NOBJ);
    clear(t_slots, NOBJ);
    expect_reclaimed("__thread array of the main thread, cleared", hidden,
                     NOBJ);
}

struct thread_result {
    size_t damaged, alive_after_clear;
};

static void *tls_thread(void *arg)
{
    struct thread_result *r = arg;
    uintptr_t hidden[NOBJ];
    fill(t_slots, NOBJ, hidden);
    collect_many();
    r->damaged = count_damaged(hidden, NOBJ);
    clear(t_slots, NOBJ);
    clear_stack();
    gc_collect();
    r->alive_after_clear = count_alive(hidden, NOBJ);
    gc_thread_detach();
    return NULL;
}

static void test_other_thread_tls(void **state)
{
    (void)state;
    struct thread_result r = {0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, tls_thread, &r) == 0, "pthread_create");
    gc_blocking_begin();
    pthread_join(th, NULL);
    gc_blocking_end();
    CHECK(r.damaged == 0,
          "__thread array of a second thread: %zu of %d objects reclaimed "
          "or damaged",
          r.damaged, NOBJ);
    CHECK(r.alive_after_clear * 10 <= NOBJ,
          "__thread array of a second thread, cleared: %zu of %d still "
          "alive",
          r.alive_after_clear, NOBJ);
}

/* ---- white box ------------------------------------------------------------
 */

struct overlap {
    uintptr_t lo, hi;
    bool hit;
};

static void find_overlap(uintptr_t lo, uintptr_t hi, bool is_stack, void *ctx)
{
    (void)is_stack;
    struct overlap *o = ctx;
    if (lo < o->hi && o->lo < hi)
        o->hit = true;
}

static bool enumerated(const void *p, size_t n)
{
    struct overlap o = {(uintptr_t)p, (uintptr_t)p + n, false};
    globals_for_each_range(find_overlap, &o);
    return o.hit;
}

static int find_relro(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t *out = arg;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO) {
            out[0] = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
            out[1] = out[0] + info->dlpi_phdr[i].p_memsz;
        }
    return 1; /* the executable only */
}

static void test_ranges(void **state)
{
    (void)state;
    gc_init();
    CHECK(enumerated(&g_bss[NOBJ / 2], sizeof(void *)),
          "this program's .bss is not among the ranges scanned");
    CHECK(enumerated(&g_data.obj[3], sizeof(void *)),
          "this program's .data is not among the ranges scanned");
    CHECK(!enumerated(&gc_config, sizeof gc_config),
          "cgc's own state (gc_config, section cgc_state) is scanned");
    CHECK(!enumerated(&size_classes, sizeof size_classes),
          "cgc's own state (size_classes) is scanned");
    uintptr_t relro[2] = {0, 0};
    dl_iterate_phdr(find_relro, relro);
    if (relro[1] > relro[0])
        CHECK(!enumerated((void *)relro[0], relro[1] - relro[0]),
              "the executable's RELRO segment is scanned");

    const struct globals_tls *tls = &thread_current()->tls;
    bool ours = false, cgcs = false;
    for (unsigned i = 0; i < tls->count; i++) {
        uintptr_t lo = tls->range[i].lo, hi = tls->range[i].hi;
        ours |= (uintptr_t)&t_slots[0] >= lo && (uintptr_t)&t_slots[NOBJ] <= hi;
        cgcs |= (uintptr_t)&thread_current_record < hi &&
                (uintptr_t)(&thread_current_record + 1) > lo;
    }
    CHECK(ours, "the main thread's TLS ranges (%u) miss our __thread array",
          tls->count);
    CHECK(!cgcs, "the main thread's TLS ranges include thread_current_record");
}

static void test_describe(void **state)
{
    (void)state;
    char buf[512], exe[256];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0, "readlink /proc/self/exe");
    exe[n] = '\0';
    char want[512];

    CHECK(globals_describe((uintptr_t)&cgc_test_exported[2], buf, sizeof buf),
          "an exported global of the program is not found");
    snprintf(want, sizeof want, "global `cgc_test_exported`+16 in %s", exe);
    CHECK(strcmp(buf, want) == 0, "got \"%s\", expected \"%s\"", buf, want);

    CHECK(globals_describe((uintptr_t)&cgc_test_exported[0], buf, sizeof buf),
          "an exported global of the program is not found");
    snprintf(want, sizeof want, "global `cgc_test_exported` in %s", exe);
    CHECK(strcmp(buf, want) == 0, "got \"%s\", expected \"%s\"", buf, want);

    /* A static has no dynamic symbol: the link-time address names it. */
    Dl_info self;
    CHECK(dladdr((void *)test_describe, &self) && self.dli_fbase, "dladdr");
    struct link_map *map = NULL;
    CHECK(
        dladdr1((void *)test_describe, &self, (void **)&map, RTLD_DL_LINKMAP) &&
            map,
        "dladdr1");
    uintptr_t at = (uintptr_t)&g_bss[5];
    CHECK(globals_describe(at, buf, sizeof buf), "a static is not found");
    snprintf(want, sizeof want, "the data of %s at link-time address %#zx", exe,
             (size_t)(at - map->l_addr));
    CHECK(strncmp(buf, want, strlen(want)) == 0,
          "got \"%s\", expected it to start with \"%s\"", buf, want);

    void *obj = gc_alloc(64);
    int local;
    CHECK(!globals_describe((uintptr_t)obj, buf, sizeof buf),
          "a heap object is described as \"%s\"", buf);
    CHECK(!globals_describe((uintptr_t)&local, buf, sizeof buf),
          "a stack address is described as \"%s\"", buf);
}

/* ---- CGC_SCAN_GLOBALS and gctrace, in a re-executed child
 * --------------------
 */

struct scenario {
    const char *value; /* CGC_SCAN_GLOBALS, NULL: unset */
    const char *name;  /* what the child does */
};

static void exec_self(int result_fd, void *arg)
{
    (void)result_fd;
    const struct scenario *s = arg;
    unsetenv("CGC_SCAN_GLOBALS");
    unsetenv("CGC_DEBUG");
    if (s->value)
        setenv("CGC_SCAN_GLOBALS", s->value, 1);
    /* ThreadSanitizer sleeps 1 s at exit by default: 9 children. */
    setenv("TSAN_OPTIONS", "atexit_sleep_ms=0", 0);
    execl("/proc/self/exe", "test_globals", "--child", s->name, (char *)NULL);
    fprintf(stderr, "execl failed: %s\n", strerror(errno));
    _exit(127);
}

/* The child: objects held only by a static and by the main thread's TLS;
 * prints how many are alive after some collections. */
static int child_hold(void)
{
    uintptr_t in_bss[NOBJ], in_tls[NOBJ];
    fill(g_bss, NOBJ, in_bss);
    fill(t_slots, NOBJ, in_tls);
    for (int i = 0; i < 3; i++) {
        clear_stack();
        gc_collect();
    }
    fprintf(stderr, "ALIVE bss %zu tls %zu of %d\n", count_alive(in_bss, NOBJ),
            count_alive(in_tls, NOBJ), NOBJ);
    return 0;
}

/* The child: gctrace lines with g_big in the bss. */
static int child_trace(void)
{
    setenv("CGC_DEBUG", "gctrace=1", 1);
    cgc_test_big[0] = 1;
    gc_collect();
    gc_collect();
    return 0;
}

static int child_main(const char *name)
{
    if (strcmp(name, "hold") == 0)
        return child_hold();
    if (strcmp(name, "trace") == 0)
        return child_trace();
    return 2;
}

/* Run a scenario; its stderr, NULL if it failed (then the test failed). */
static const char *run_scenario(const struct scenario *s)
{
    struct child_result r;
    run_child(exec_self, (void *)s, 60, &r);
    char how[128];
    describe_status(r.status, how, sizeof how);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
          "child %s with CGC_SCAN_GLOBALS=%s %s; stderr:\n%s", s->name,
          s->value ? s->value : "(unset)", how, r.err);
    return r.err;
}

static void hold(const char *value, unsigned *bss, unsigned *tls,
                 const char **err)
{
    struct scenario s = {value, "hold"};
    *err = run_scenario(&s);
    const char *line = strstr(*err, "ALIVE ");
    CHECK(line && sscanf(line, "ALIVE bss %u tls %u", bss, tls) == 2,
          "no ALIVE line from the child:\n%s", *err);
}

static void test_opt_out(void **state)
{
    (void)state;
    unsigned bss, tls;
    const char *err;
    hold("0", &bss, &tls, &err);
    CHECK(bss * 10 <= NOBJ,
          "CGC_SCAN_GLOBALS=0: %u of %d objects held only by a static "
          "survived; the static was scanned",
          bss, NOBJ);
    CHECK(tls * 10 <= NOBJ,
          "CGC_SCAN_GLOBALS=0: %u of %d objects held only by the main "
          "thread's TLS survived; it was scanned",
          tls, NOBJ);
    CHECK(count_lines(err, "cgc: ", NULL, NULL) == 0,
          "CGC_SCAN_GLOBALS=0 was reported:\n%s", err);

    hold("1", &bss, &tls, &err);
    CHECK(bss == NOBJ && tls == NOBJ,
          "CGC_SCAN_GLOBALS=1: only %u (static) and %u (TLS) of %d held "
          "objects survived",
          bss, tls, NOBJ);
    CHECK(count_lines(err, "cgc: ", NULL, NULL) == 0,
          "CGC_SCAN_GLOBALS=1 was reported:\n%s", err);
}

static void test_malformed_value(void **state)
{
    (void)state;
    const char *bad[] = {"", "yes", "2", "0x", "1 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned bss, tls;
        const char *err;
        hold(bad[i], &bss, &tls, &err);
        CHECK(count_lines(err, "cgc: ", "CGC_SCAN_GLOBALS", NULL) == 1,
              "CGC_SCAN_GLOBALS=\"%s\": expected one \"cgc: \" line naming "
              "it; stderr:\n%s",
              bad[i], err);
        CHECK(bss == NOBJ && tls == NOBJ,
              "CGC_SCAN_GLOBALS=\"%s\": the default (scan) was not used: "
              "%u and %u of %d held objects survived",
              bad[i], bss, tls, NOBJ);
    }
}

/* The largest "N MB globals" of the gctrace lines in text. */
static long max_globals_mb(const char *text)
{
    long best = -1;
    for (const char *p = text; (p = strstr(p, "gc ")) != NULL; p++) {
        const char *g = strstr(p, " MB globals");
        const char *nl = strchr(p, '\n');
        if (!g || (nl && g > nl))
            continue;
        const char *d = g;
        while (d > p && d[-1] >= '0' && d[-1] <= '9')
            d--;
        long v = strtol(d, NULL, 10);
        if (v > best)
            best = v;
    }
    return best;
}

static void test_gctrace_counts_globals(void **state)
{
    (void)state;
    struct scenario on = {NULL, "trace"}, off = {"0", "trace"};
    long mb = max_globals_mb(run_scenario(&on));
    CHECK(mb >= (long)(BIG_BYTES >> 20),
          "gctrace shows %ld MB globals with a %zu MiB static array "
          "scanned",
          mb, BIG_BYTES >> 20);
    mb = max_globals_mb(run_scenario(&off));
    CHECK(mb == 0, "gctrace shows %ld MB globals with CGC_SCAN_GLOBALS=0", mb);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_globals),
        cmocka_unit_test(test_dlopen_module),
        cmocka_unit_test(test_main_thread_tls),
        cmocka_unit_test(test_other_thread_tls),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_opt_out),
        cmocka_unit_test(test_malformed_value),
        cmocka_unit_test(test_gctrace_counts_globals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
