/*
 * test_util.h — helpers shared by the cgc test executables: hidden pointers
 * (so that no stack slot or register keeps an object alive), stack
 * clearing, stderr capture, running a scenario in a child process, clocks,
 * fill patterns and a CHECK macro that says what went wrong.
 *
 * Include it after defining _GNU_SOURCE (each test file starts with it).
 */
#ifndef CGC_TEST_UTIL_H
#define CGC_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgc.h"

#define NOINLINE  __attribute__((noinline))
#define UNUSED_FN __attribute__((unused))

/* A failed check prints the condition and a formatted explanation, then
 * fails the current cmocka test. */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            print_error("%s:%d: check failed: %s\n  ", __FILE__, __LINE__,     \
                        #cond);                                                \
            print_error(__VA_ARGS__);                                          \
            print_error("\n");                                                 \
            fail();                                                            \
        }                                                                      \
    } while (0)

/* errno check with the names spelled out. */
#define CHECK_ERRNO(expected, what)                                            \
    do {                                                                       \
        int e_ = errno;                                                        \
        CHECK(e_ == (expected), "%s: errno %d (%s), expected %d (%s)", (what), \
              e_, strerror(e_), (expected), strerror(expected));               \
    } while (0)

/* ---- hidden pointers ---------------------------------------------------- */

#define HIDE_MASK ((uintptr_t)0xA5C3F00D5EED1235ull)

static inline uintptr_t hide(const void *p)
{
    return (uintptr_t)p ^ HIDE_MASK;
}

static inline void *unhide(uintptr_t h)
{
    return (void *)(h ^ HIDE_MASK);
}

/* Overwrite a large part of the stack below the caller so that dead frames
 * (which may hold stale copies of pointers) hold zeros instead. */
static UNUSED_FN NOINLINE void clear_stack(void)
{
    char buf[64 * 1024];
    memset(buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* Number of hidden pointers that still name a live object (gc_base returns
 * the object's start). */
static UNUSED_FN size_t count_alive(const uintptr_t *hidden, size_t n)
{
    size_t alive = 0;
    for (size_t i = 0; i < n; i++) {
        void *p = unhide(hidden[i]);
        if (gc_base(p) == p)
            alive++;
    }
    return alive;
}

/* ---- scale of the heavier loops ------------------------------------------ */

/* CGC_TEST_SCALE multiplies loop counts (e.g. 0.25); sanitizer builds
 * default to 0.25 since they run 5-10x slower. */
static UNUSED_FN double test_scale(void)
{
    const char *s = getenv("CGC_TEST_SCALE");
    if (s && *s) {
        double v = strtod(s, NULL);
        if (v > 0)
            return v;
    }
#if defined(CGC_SANITIZE_ADDRESS) || defined(CGC_SANITIZE_THREAD) ||           \
    defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return 0.25;
#else
    return 1.0;
#endif
}

/* n scaled by test_scale(), but never below min. */
static UNUSED_FN size_t scaled(size_t n, size_t min)
{
    double v = (double)n * test_scale();
    size_t r = (size_t)v;
    return r < min ? min : r;
}

/* ---- clocks -----------------------------------------------------------------
 */

static UNUSED_FN uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static UNUSED_FN uint64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- fill patterns ----------------------------------------------------------
 */

/* A byte pattern that never forms a plausible pointer. */
static inline unsigned char pattern_byte(size_t i, unsigned seed)
{
    return (unsigned char)(0x80u | ((i * 31u + seed * 7u) & 0x7fu));
}

static UNUSED_FN void fill_pattern(void *p, size_t n, unsigned seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = pattern_byte(i, seed);
}

/* Index of the first byte that differs from the pattern, or n. */
static UNUSED_FN size_t check_pattern(const void *p, size_t n, unsigned seed)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern_byte(i, seed))
            return i;
    return n;
}

/* Index of the first non-zero byte, or n. */
static UNUSED_FN size_t first_nonzero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return i;
    return n;
}

/* ---- text -------------------------------------------------------------------
 */

static UNUSED_FN char *read_whole_fd(int fd, size_t *len_out)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        abort();
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            if (!buf)
                abort();
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

/* Number of lines of text that contain every one of the (up to two)
 * needles; a NULL needle matches everything. If prefix is non-NULL the line
 * must also start with it. */
static UNUSED_FN size_t count_lines(const char *text, const char *prefix,
                                    const char *needle1, const char *needle2)
{
    size_t n = 0;
    const char *line = text;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);
        if (!copy)
            abort();
        if ((!prefix || strncmp(copy, prefix, strlen(prefix)) == 0) &&
            (!needle1 || strstr(copy, needle1)) &&
            (!needle2 || strstr(copy, needle2)))
            n++;
        free(copy);
        line = end ? end + 1 : NULL;
    }
    return n;
}

/* ---- stderr capture -------------------------------------------------------
 */

struct capture {
    int saved_fd;
    int tmp_fd;
};

/* Redirect fd 2 to a temporary file. */
static UNUSED_FN void capture_begin(struct capture *c)
{
    char path[] = "/tmp/cgc-test-stderr-XXXXXX";
    fflush(stderr);
    c->tmp_fd = mkstemp(path);
    if (c->tmp_fd < 0)
        abort();
    unlink(path);
    c->saved_fd = dup(2);
    if (c->saved_fd < 0 || dup2(c->tmp_fd, 2) < 0)
        abort();
}

/* Restore fd 2 and return what was written to it (malloc'd, NUL
 * terminated). The text is echoed to the real stderr, prefixed, so that it
 * shows in the test log. */
static UNUSED_FN char *capture_end(struct capture *c)
{
    fflush(stderr);
    dup2(c->saved_fd, 2);
    close(c->saved_fd);
    lseek(c->tmp_fd, 0, SEEK_SET);
    char *text = read_whole_fd(c->tmp_fd, NULL);
    close(c->tmp_fd);
    if (*text)
        fprintf(stderr, "[captured stderr]\n%s[end of captured stderr]\n",
                text);
    return text;
}

/* ---- child processes ---------------------------------------------------- */

struct child_result {
    int status; /* from waitpid */
    char *err;  /* everything the child wrote on fd 2 */
    void *data; /* everything the child wrote on result_fd */
    size_t data_len;
};

typedef void (*child_fn)(int result_fd, void *arg);

/* The buffers of the latest run_child; they stay valid (and reachable, so
 * that a failed check does not show up as a leak) until the next call. */
static char *child_last_err;
static void *child_last_data;

/* Run fn(result_fd, arg) in a forked child whose stderr goes to a temporary
 * file, then _exit(0). The child is killed by SIGALRM after timeout_s. */
static UNUSED_FN void run_child(child_fn fn, void *arg, unsigned timeout_s,
                                struct child_result *r)
{
    free(child_last_err);
    free(child_last_data);
    child_last_err = NULL;
    child_last_data = NULL;
    char path[] = "/tmp/cgc-test-child-XXXXXX";
    int err_fd = mkstemp(path);
    int pfd[2];
    if (err_fd < 0 || pipe(pfd) != 0)
        abort();
    unlink(path);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        close(pfd[0]);
        dup2(err_fd, 2);
        close(err_fd);
        alarm(timeout_s);
        fn(pfd[1], arg);
        fflush(stderr);
        close(pfd[1]);
        _exit(0);
    }
    close(pfd[1]);
    r->data = child_last_data = read_whole_fd(pfd[0], &r->data_len);
    close(pfd[0]);
    while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR) {
    }
    lseek(err_fd, 0, SEEK_SET);
    r->err = child_last_err = read_whole_fd(err_fd, NULL);
    close(err_fd);
}

/* How the child ended, for messages. */
static UNUSED_FN const char *describe_status(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "status 0x%x", status);
    return buf;
}

/* Write all of buf to fd (child side of run_child). */
static UNUSED_FN void write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(120);
        p += w;
        n -= (size_t)w;
    }
}

/* ---- stats ------------------------------------------------------------------
 */

/* Index of the by_size entry whose size equals the usable size of a small
 * object of `size` bytes, or -1. */
static UNUSED_FN int size_class_index(const gc_stats *s, size_t usable)
{
    for (int i = 1; i < GC_NUM_SIZE_CLASSES; i++)
        if (s->by_size[i].size == usable)
            return i;
    return -1;
}

/* ---- restoring the collection percentage --------------------------------- */

/* Tests that change gc_set_percent restore it even when they fail, so that
 * one failure does not cascade: call remember_percent() in main and use
 * cmocka_unit_test_teardown(test, restore_percent). */
static int saved_percent = 100;

static UNUSED_FN void remember_percent(void)
{
    saved_percent = gc_set_percent(100);
    gc_set_percent(saved_percent);
}

static UNUSED_FN int restore_percent(void **state)
{
    (void)state;
    gc_set_percent(saved_percent);
    return 0;
}

#define PERCENT_TEST(f) cmocka_unit_test_teardown(f, restore_percent)

#endif /* CGC_TEST_UTIL_H */
