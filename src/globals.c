/*
 * globals.c — module data and thread-local storage as roots (globals.h).
 *
 * Data. Each scan walks the loaded modules with dl_iterate_phdr (the
 * executable, its libraries, whatever was dlopen'ed) and scans every
 * writable PT_LOAD segment — .data, .bss and what the linker put beside
 * them — conservatively, in the same 64 KiB slices as registered roots.
 * Left out:
 *   - the PT_GNU_RELRO part (.got, .data.rel.ro, .init_array, .dynamic):
 *     read-only once the loader has relocated it, so it only ever holds
 *     addresses fixed at load time, never a pointer to a GC object;
 *   - the data of sanitizer runtimes (is_sanitizer_runtime);
 *   - cgc's own statics, which all live in the section `cgc_state`
 *     (CGC_STATE in internal.h): heap bounds, free lists and the registry
 *     hold heap addresses that would keep arbitrary objects alive. This
 *     works whether cgc is a shared library or linked statically into the
 *     program (then its statics sit among the program's, and only the
 *     section can tell them apart).
 * libc, libpthread and ld.so are scanned like any module, as the Boehm
 * collector does: a GC pointer handed to a library that keeps it in a
 * static (an atexit-style argument, strtok's position) stays alive, and
 * their writable data is a few tens of KiB. Enumerating again at every
 * cycle is what makes dlopen and dlclose safe without hooks: a module
 * loaded since the last cycle is in the list, one unloaded is gone.
 *
 * The scan runs inside the dl_iterate_phdr callback. The loader holds its
 * module-list lock meanwhile, and dlclose unlinks a module under that lock
 * before it unmaps it, so no segment can disappear under the scan. The
 * price: whoever calls dlopen, dlclose or dl_iterate_phdr meanwhile waits
 * for the scan (about 8 ms per 64 MiB, design.md), and nothing called from
 * the callback may use the loader itself (checkmark defers its report).
 * In stop-the-world mode and for checkmark the enumeration runs with the
 * world stopped, which is safe as long as no thread stops while holding the
 * loader's lock — it could only do so by allocating inside a
 * dl_iterate_phdr callback of its own (README, rule 3).
 *
 * TLS. A thread's static TLS block — the __thread variables of the
 * executable and of the libraries loaded at start-up — is found by the
 * thread itself when it attaches: dl_iterate_phdr reports, for the calling
 * thread, the address of each module's TLS block (dlpi_tls_data) and its
 * size (PT_TLS p_memsz). Blocks in static TLS are packed next to the thread
 * pointer (below it on x86-64, above the TCB on AArch64) with gaps smaller
 * than their alignment; a dlopen'ed module's dynamic block is a separate
 * malloc'd chunk that may be freed at dlclose, so only the packed run of
 * blocks adjacent to the thread pointer is kept: [lowest, highest) of that
 * run, read-only after attach. For threads made by pthread_create glibc
 * puts this area at the top of the stack block, which the stack scan
 * covers; then nothing is recorded. The main thread's TLS is elsewhere, and
 * that is where this matters.
 */
#define _GNU_SOURCE
#include "globals.h"

#include "env.h"
#include "threads.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bounds of the section that holds every cgc static (linker-defined).
 * Hidden: each module that links cgc in has its own. */
extern char __start_cgc_state[] __attribute__((visibility("hidden")));
extern char __stop_cgc_state[] __attribute__((visibility("hidden")));

/* Modules with TLS looked at when a thread attaches. glibc's static TLS
 * holds the blocks of the modules loaded at start-up plus a surplus of
 * about 1.5 KiB; a program has a handful of such modules. Blocks beyond
 * this count are not looked at: the packed run then ends early, which can
 * only leave TLS unscanned, never read memory that is not TLS. */
#define TLS_MODULES_MAX 64

struct hole {
    uintptr_t lo, hi;
};

/* fn on [lo, hi) minus the holes (each hole may or may not overlap). */
static void emit_minus(uintptr_t lo, uintptr_t hi, const struct hole *holes,
                       size_t nholes, globals_range_fn fn, void *ctx)
{
    if (lo >= hi)
        return;
    for (size_t i = 0; i < nholes; i++) {
        if (holes[i].hi <= lo || holes[i].lo >= hi)
            continue;
        emit_minus(lo, holes[i].lo, holes + i + 1, nholes - i - 1, fn, ctx);
        emit_minus(holes[i].hi, hi, holes + i + 1, nholes - i - 1, fn, ctx);
        return;
    }
    fn(lo, hi, false, ctx);
}

struct data_walk {
    globals_range_fn fn;
    void *ctx;
};

/* Sanitizer runtimes, by file name: their data is their own bookkeeping
 * (ThreadSanitizer's is 47 MiB, AddressSanitizer's 5 MiB with glibc 2.36
 * and gcc 12) and holds no pointer the program relies on. Scanning it
 * would only cost time and keep objects alive through the addresses the
 * runtime records. A runtime linked into the executable (clang's default)
 * cannot be told apart and is scanned. */
static const char *const sanitizer_runtimes[] = {
    "libasan.",  "libtsan.",   "liblsan.",
    "libubsan.", "libhwasan.", "libclang_rt.",
};

static bool is_sanitizer_runtime(const char *path)
{
    if (!path)
        return false;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0;
         i < sizeof sanitizer_runtimes / sizeof sanitizer_runtimes[0]; i++)
        if (strncmp(base, sanitizer_runtimes[i],
                    strlen(sanitizer_runtimes[i])) == 0)
            return true;
    return false;
}

static int data_callback(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct data_walk *w = arg;
    if (is_sanitizer_runtime(info->dlpi_name))
        return 0;
    struct hole holes[2] = {
        {(uintptr_t)__start_cgc_state, (uintptr_t)__stop_cgc_state},
        {0, 0},
    };
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_RELRO) {
            holes[1].lo = info->dlpi_addr + ph->p_vaddr;
            holes[1].hi = holes[1].lo + ph->p_memsz;
        }
    }
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || !ph->p_memsz)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        emit_minus(lo, lo + ph->p_memsz, holes, 2, w->fn, w->ctx);
    }
    return 0;
}

void globals_for_each_range(globals_range_fn fn, void *ctx)
{
    if (!gc_config.scan_globals)
        return;
    struct data_walk w = {fn, ctx};
    dl_iterate_phdr(data_callback, &w);
}

struct scan_ctx {
    struct marker *m;
    uint64_t bytes;
};

/* Bytes of module data scanned before the grey objects found are drained,
 * as registered roots are: a data segment full of pointers then never
 * queues all its objects at once. */
#define DATA_SLICE_BYTES ((uintptr_t)64 << 10)

/* Grey the words of [lo, hi) that fall inside the heap's address range.
 * Module data is mostly zeros and small integers, so the bounds test,
 * with the bounds read once per slice rather than once per word as
 * object_lookup does, cheaply rejects nearly every word (this is what
 * makes 64 MiB of bss cost 8 ms instead of 30, design.md). A bound read before
 * an arena was added can only miss objects allocated after the read: while
 * marking they are allocated black, and with the world stopped none are.
 * Raw reads of memory others write: see mark_scan_conservative. */
__attribute__((no_sanitize("address", "thread"))) static void
grey_slice(struct marker *m, uintptr_t lo, uintptr_t hi)
{
    uintptr_t min =
        atomic_load_explicit(&heap_min_address, memory_order_relaxed);
    uintptr_t max =
        atomic_load_explicit(&heap_max_address, memory_order_relaxed);
    if (min >= max)
        return; /* no heap yet */
    for (uintptr_t a = round_up(lo, sizeof(uintptr_t));
         a + sizeof(uintptr_t) <= hi; a += sizeof(uintptr_t)) {
        uintptr_t p = *(const uintptr_t *)a;
        if (p - min < max - min)
            mark_grey(m, p);
    }
}

static void scan_range(uintptr_t lo, uintptr_t hi, bool is_stack, void *ctx)
{
    (void)is_stack;
    struct scan_ctx *c = ctx;
    c->bytes += hi - lo;
    while (lo < hi) {
        uintptr_t end = hi - lo > DATA_SLICE_BYTES ? lo + DATA_SLICE_BYTES : hi;
        grey_slice(c->m, lo, end);
        mark_helper_drain(c->m, UINT64_MAX);
        lo = end;
    }
}

struct loader_hold {
    void (*fn)(void *);
    void *arg;
    bool ran;
};

static int hold_callback(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info;
    (void)size;
    struct loader_hold *h = data;
    if (!h->ran) {
        h->ran = true;
        h->fn(h->arg);
    }
    return 1; /* one call is all it takes */
}

void globals_with_loader_held(void (*fn)(void *), void *arg)
{
    struct loader_hold h = {fn, arg, false};
    if (gc_config.scan_globals)
        dl_iterate_phdr(hold_callback, &h);
    if (!h.ran)
        fn(arg);
}

uint64_t globals_scan(struct marker *m)
{
    struct scan_ctx c = {m, 0};
    globals_for_each_range(scan_range, &c);
    return c.bytes;
}

/* ---- thread-local storage ------------------------------------------------
 */

/* The thread pointer, from which static TLS is laid out; 0 where we do not
 * know the layout (then no TLS is recorded). */
static uintptr_t thread_pointer(void)
{
#if defined(__x86_64__) && defined(__GLIBC__)
    /* glibc's struct pthread sits at %fs:0, and pthread_self returns it. */
    return (uintptr_t)pthread_self();
#elif defined(__aarch64__)
    return (uintptr_t)__builtin_thread_pointer();
#else
    return 0;
#endif
}

struct tls_block {
    uintptr_t lo, hi, align;
};

struct tls_walk {
    struct tls_block blocks[TLS_MODULES_MAX];
    size_t count;
};

static int tls_callback(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct tls_walk *w = arg;
    /* dlpi_tls_data arrived in glibc 2.12; older loaders pass a shorter
     * structure. */
    if (size < offsetof(struct dl_phdr_info, dlpi_tls_data) +
                   sizeof info->dlpi_tls_data ||
        !info->dlpi_tls_data || w->count == TLS_MODULES_MAX)
        return 0;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_TLS || !ph->p_memsz)
            continue;
        uintptr_t lo = (uintptr_t)info->dlpi_tls_data;
        w->blocks[w->count++] = (struct tls_block){
            lo, lo + ph->p_memsz, ph->p_align ? ph->p_align : 1};
        break;
    }
    return 0;
}

/* Largest gap between two packed static TLS blocks, or between the thread
 * pointer and the nearest one: the padding that aligns the block, plus the
 * 16-byte TCB that AArch64 keeps above the thread pointer. */
static uintptr_t packing_gap(const struct tls_block *b)
{
    return b->align + 2 * sizeof(void *);
}

/* Append [lo, hi) to the globals_tls in ctx (emit_minus's callback). */
static void tls_add_range(uintptr_t lo, uintptr_t hi, bool is_stack, void *ctx)
{
    (void)is_stack;
    struct globals_tls *tls = ctx;
    if (tls->count < GLOBALS_TLS_RANGES) {
        tls->range[tls->count].lo = lo;
        tls->range[tls->count].hi = hi;
        tls->count++;
    }
}

void globals_note_thread_tls(struct globals_tls *tls, uintptr_t stack_lo,
                             uintptr_t stack_hi)
{
    tls->count = 0;
    uintptr_t tp = thread_pointer();
    if (!gc_config.scan_globals || !tp)
        return;
    struct tls_walk *w = malloc(sizeof *w);
    if (!w)
        return; /* attaching goes on; this thread's TLS is not scanned */
    w->count = 0;
    dl_iterate_phdr(tls_callback, w);

    /* Grow [lo, hi) from the thread pointer over packed blocks, downward
     * and upward, until no block continues the run. Each pass looks at
     * every block: there are a handful. */
    uintptr_t lo = tp, hi = tp;
    for (bool grew = true; grew;) {
        grew = false;
        for (size_t i = 0; i < w->count; i++) {
            const struct tls_block *b = &w->blocks[i];
            if (b->hi <= lo && b->hi + packing_gap(b) >= lo) {
                lo = b->lo;
                grew = true;
            } else if (b->lo >= hi && b->lo <= hi + packing_gap(b)) {
                hi = b->hi;
                grew = true;
            }
        }
    }
    free(w);
    if (lo == hi || (lo >= stack_lo && hi <= stack_hi))
        return;
    /* Our own pointer-holding TLS word: the thread's record, malloc'd and
     * never in the heap, but it is ours to leave out. (thread_is_internal,
     * a bool, cannot hold a pointer.) */
    struct hole own = {(uintptr_t)&thread_current_record,
                       (uintptr_t)&thread_current_record +
                           sizeof thread_current_record};
    emit_minus(lo, hi, &own, 1, tls_add_range, tls);
}

uint64_t globals_scan_tls(struct marker *m, const struct globals_tls *tls)
{
    uint64_t bytes = 0;
    for (unsigned i = 0; i < tls->count; i++) {
        mark_scan_conservative(m, tls->range[i].lo, tls->range[i].hi);
        bytes += tls->range[i].hi - tls->range[i].lo;
    }
    return bytes;
}

void globals_for_each_tls_range(const struct globals_tls *tls,
                                globals_range_fn fn, void *ctx)
{
    for (unsigned i = 0; i < tls->count; i++)
        fn(tls->range[i].lo, tls->range[i].hi, false, ctx);
}

/* ---- naming an address -----------------------------------------------------
 */

struct find_module {
    uintptr_t addr;
    bool found;
    uintptr_t base;
    char name[256];
};

static int find_callback(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct find_module *f = arg;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || f->addr < lo ||
            f->addr >= lo + ph->p_memsz)
            continue;
        f->found = true;
        f->base = info->dlpi_addr;
        snprintf(f->name, sizeof f->name, "%s",
                 info->dlpi_name ? info->dlpi_name : "");
        return 1;
    }
    return 0;
}

bool globals_describe(uintptr_t addr, char *buf, size_t size)
{
    struct find_module f = {.addr = addr};
    dl_iterate_phdr(find_callback, &f);
    if (!f.found)
        return false;
    if (!f.name[0]) {
        /* The executable: the loader does not name it. */
        ssize_t n = readlink("/proc/self/exe", f.name, sizeof f.name - 1);
        if (n > 0)
            f.name[n] = '\0';
        else
            snprintf(f.name, sizeof f.name, "the executable");
    }
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (dladdr1((void *)addr, &info, (void **)&sym, RTLD_DL_SYMENT) &&
        info.dli_sname && info.dli_saddr && sym &&
        addr >= (uintptr_t)info.dli_saddr &&
        addr < (uintptr_t)info.dli_saddr + sym->st_size) {
        size_t off = addr - (uintptr_t)info.dli_saddr;
        if (off)
            snprintf(buf, size, "global `%s`+%zu in %s", info.dli_sname, off,
                     f.name);
        else
            snprintf(buf, size, "global `%s` in %s", info.dli_sname, f.name);
        return true;
    }
    /* dladdr sees only dynamic symbols: statics, and a program's globals
     * unless it is linked with -rdynamic, have none. */
    snprintf(buf, size,
             "the data of %s at link-time address %#zx (no dynamic symbol "
             "covers it; `nm -n` on the file names it)",
             f.name, (size_t)(addr - f.base));
    return true;
}
