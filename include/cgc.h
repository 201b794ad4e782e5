/*
 * cgc.h — the public interface of cgc, a concurrent mark-sweep garbage
 * collector for C.
 *
 * A program calls gc_alloc() instead of malloc(), registers malloc'd memory
 * that holds GC pointers (gc_root_add), writes pointers into heap objects,
 * globals and roots through GC_WRITE, and never calls free():
 * objects that are no longer reachable from the roots, the stacks and the
 * registers of attached threads are reclaimed automatically.
 *
 * What is scanned for pointers:
 *   - every attached thread's stack and registers, conservatively;
 *   - the data and bss of the executable and of every loaded shared
 *     library, and the static thread-local storage (__thread variables of
 *     the executable and of the libraries loaded at start-up) of attached
 *     threads, conservatively (CGC_SCAN_GLOBALS=0 turns this off);
 *   - registered roots, conservatively (every aligned word may be a pointer);
 *   - objects from gc_alloc/gc_calloc/gc_realloc/gc_strdup, conservatively;
 *   - objects from gc_alloc_typed, only at the pointer offsets of their type;
 *   - never objects from gc_alloc_noscan.
 * A pointer to anywhere inside an object keeps the whole object alive.
 * Memory from malloc, and __thread variables of libraries loaded with
 * dlopen, are NOT scanned unless registered with gc_root_add.
 *
 * The user's one rule: a GC pointer stored anywhere except a local variable
 * goes through GC_WRITE (or gc_memmove for block copies).
 *
 * Errors follow libc: a failed allocation returns NULL with errno ENOMEM; an
 * invalid argument returns NULL or -1 with errno EINVAL; removing a root that
 * is not registered returns -1 with errno ENOENT. A misuse that would corrupt
 * the heap aborts with a message that names the call.
 *
 * Environment (read once by gc_init; a malformed value is reported once on
 * stderr and the default is used):
 *   CGC_PERCENT   like GOGC: heap growth percentage that triggers a
 *                 collection (default 100); "off" disables automatic GC.
 *   CGC_MEMLIMIT  like GOMEMLIMIT: a soft limit on the memory the heap
 *                 retains from the OS, in bytes with an optional B, KiB,
 *                 MiB, GiB or TiB suffix; "off" (the default) for none.
 *   CGC_WORKERS   number of mark worker threads (default: a quarter of the
 *                 CPUs, at least 1; at most 64).
 *   CGC_SCAN_GLOBALS  1 (the default): module data, bss and static TLS are
 *                 roots; 0: only stacks and registered roots are.
 *   CGC_DEBUG     comma-separated list of name=0|1:
 *                   gctrace        one line per collection on stderr, in
 *                                  the format of Go's GODEBUG=gctrace=1;
 *                   gcstoptheworld mark with the world stopped (for code
 *                                  that cannot use GC_WRITE);
 *                   gccheckmark    after each mark, re-mark with the world
 *                                  stopped and abort, naming the object and
 *                                  its referrer, if marking missed a
 *                                  reachable object (a forgotten GC_WRITE);
 *                   clobberfree    fill freed objects with 0xdeadbeef so a
 *                                  use after free shows at once;
 *                   gcpacertrace   Go's two pacer lines per cycle;
 *                   scavtrace      Go's scav line per cycle.
 *                 As GODEBUG, the list is read item by item: an unknown or
 *                 malformed item is reported once on stderr, naming it, and
 *                 ignored; the valid items still apply.
 */
#ifndef CGC_H
#define CGC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#error "cgc.h is a C11 header; C++ is not supported"
#endif

#define CGC_VERSION_MAJOR 0
#define CGC_VERSION_MINOR 1
#define CGC_VERSION_PATCH 0

#if defined(__GNUC__) || defined(__clang__)
#define GC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define GC_UNLIKELY(x) (x)
#endif

/* Everything declared here is exported from libcgc.so; the library builds
 * with hidden visibility for all else. */
#pragma GCC visibility push(default)

/* ------------------------------------------------------------------------
 * Lifetime
 * ------------------------------------------------------------------------ */

/* Initialise the collector: reads the CGC_* environment variables, starts the
 * mark workers and attaches the calling thread. Idempotent and thread-safe;
 * every gc_* function calls it on first use, so calling it is optional.
 * Returns 0 on every call. */
int gc_init(void);

/* Stop the collector's threads and unmap every heap page. Afterwards every GC
 * pointer is invalid; a later gc_init (or any gc_* call) starts afresh.
 * Call it only from a thread when no other thread is attached (other threads
 * must have called gc_thread_detach or exited); otherwise it prints a message
 * naming the call and returns without doing anything. Meant for tests and for
 * leak checkers such as valgrind. */
void gc_shutdown(void);

/* ------------------------------------------------------------------------
 * Allocation. All functions are thread-safe but not async-signal-safe; the
 * calling thread is attached automatically on its first allocation.
 * Objects of 16 bytes or more are 16-byte aligned, smaller ones 8-byte
 * aligned (as malloc).
 * ------------------------------------------------------------------------ */

/* Allocate size bytes, zeroed, scanned conservatively (every aligned word may
 * be a pointer). size 0 returns a unique minimum-size object.
 * Errors: NULL with errno ENOMEM when the memory cannot be had, including
 * any size too large to represent (such as SIZE_MAX) and, at once, any size
 * larger than the machine could ever back: its physical RAM + swap, or
 * RLIMIT_AS / RLIMIT_DATA when lower (the rule by which Linux's heuristic
 * overcommit refuses such a malloc). The same holds for every allocation
 * function below.
 * Not async-signal-safe (like malloc), nor is any other gc_* function: a
 * signal handler must not allocate. A handler that calls an allocation
 * function while the code it interrupted is inside one (on the same
 * thread) is caught and aborts with a message naming the re-entry, rather
 * than deadlocking on an internal lock or handing out an object twice. */
void *gc_alloc(size_t size);

/* Allocate size bytes that are never scanned: for pointer-free data (strings,
 * numbers, pixels). The memory is NOT zeroed. Errors as gc_alloc. */
void *gc_alloc_noscan(size_t size);

/* A precise layout: which words of an object hold GC pointers. */
typedef struct gc_type gc_type;

/* Describe objects of size bytes whose GC pointers sit at the byte offsets
 * ptr_offsets[0..n_ptrs). Each offset must be a multiple of sizeof(void *)
 * and offset + sizeof(void *) <= size. The descriptor is immortal (never
 * freed) and may be shared by any number of threads and objects.
 * Errors: NULL with errno EINVAL for size 0, a NULL ptr_offsets with
 * n_ptrs > 0, or an offset that is misaligned or outside the size; NULL with
 * errno ENOMEM when memory runs out. */
const gc_type *gc_type_new(size_t size, const size_t *ptr_offsets,
                           size_t n_ptrs);

/* Allocate size bytes, zeroed, scanned precisely: only the pointer offsets of
 * t, repeated every t's size bytes (so an array of n elements is
 * gc_alloc_typed(n * size, t)). Every whole element that fits in the
 * object's usable size (gc_size) is scanned; trailing bytes that do not make
 * a whole element are not.
 * Errors: NULL with errno EINVAL if t is NULL or size is smaller than t's
 * size; otherwise as gc_alloc. */
void *gc_alloc_typed(size_t size, const gc_type *t);

/* Allocate n * size bytes, zeroed, scanned conservatively.
 * Errors: NULL with errno ENOMEM if n * size overflows or memory runs out. */
void *gc_calloc(size_t n, size_t size);

/* Resize the object p to size bytes, preserving its contents up to the
 * smaller of the two sizes; the new object has the same scanning kind
 * (conservative, noscan or typed) as p. Bytes past the old size are zeroed
 * unless p is noscan. p NULL behaves as gc_alloc(size). The old object is
 * left to the collector (it stays valid while referenced).
 * Errors: NULL with errno EINVAL if p is not the start of a live GC object
 * (a stack address, a malloc pointer, an interior pointer, a freed object);
 * NULL with errno ENOMEM if memory runs out, with p untouched. */
void *gc_realloc(void *p, size_t size);

/* Copy the NUL-terminated string s into a new noscan object.
 * Errors: NULL with errno EINVAL if s is NULL; ENOMEM as gc_alloc. */
char *gc_strdup(const char *s);

/* Free the object p explicitly (optional: unreachable objects are freed
 * anyway). Its memory is reused after the next collection's sweep; using p
 * afterwards is a use-after-free. gc_free(NULL) does nothing. A pointer that
 * is not the start of a live GC object (a stack address, a malloc pointer,
 * an interior pointer, an object already freed) is reported with one line
 * on stderr naming gc_free and otherwise ignored: the heap stays as it was.
 * Thread-safe. */
void gc_free(void *p);

/* The usable size of the object p points into (p may be an interior
 * pointer); 0 if p is not inside a live GC object. Thread-safe; never
 * fails loudly. */
size_t gc_size(const void *p);

/* The start of the live object p points into, or NULL if p does not point
 * into a live GC object. */
void *gc_base(const void *p);

/* ------------------------------------------------------------------------
 * Threads. A thread that touches GC objects must be attached; allocation
 * attaches automatically and thread exit detaches automatically. A thread
 * that never allocates (it only reads GC objects or moves pointers between
 * them) calls gc_thread_attach before it loads a GC pointer: the collector
 * neither stops nor scans a thread it does not know, so an object held
 * only in such a thread's registers is freed.
 * The collector stops a thread at its next safepoint (any allocation,
 * gc_safepoint, gc_blocking_begin) or, if it does not reach one within
 * about 100 µs (blocked in read or pthread_join, or in a loop that never
 * allocates), with the preemption signal (CGC_SIGNAL), whose handler holds
 * it where it is. gc_safepoint in long loops and gc_blocking_begin/end
 * around blocking calls are optimizations: they spare the thread the
 * signal. The signal is installed with SA_RESTART; calls that Linux
 * interrupts regardless (nanosleep, poll, select, epoll_wait, ...) may
 * return EINTR. CGC_DEBUG=asyncpreemptoff=1 turns the signal off; a thread
 * that then does not reach a safepoint within a second, or one that blocks
 * the signal, is named in a warning on stderr. No cgc function is
 * async-signal-safe.
 * ------------------------------------------------------------------------ */

/* Attach the calling thread (its stack and registers become roots).
 * Idempotent. Returns 0, or -1 with errno ENOMEM if its record cannot be
 * allocated or EINVAL if the stack bounds cannot be determined. */
int gc_thread_attach(void);

/* Detach the calling thread: its stack is no longer scanned. Does nothing
 * if the thread is not attached. Must not be called inside a blocking
 * region. */
void gc_thread_detach(void);

/* Internal flag polled by gc_safepoint; do not write it. */
extern atomic_int gc_internal_safepoint_requested;
/* Out-of-line part of gc_safepoint; call gc_safepoint instead. */
void gc_safepoint_slow(void);

/* Let the collector stop this thread if it is waiting to. Costs one relaxed
 * load when no collection is starting. */
static inline void gc_safepoint(void)
{
    if (GC_UNLIKELY(atomic_load_explicit(&gc_internal_safepoint_requested,
                                         memory_order_relaxed)))
        gc_safepoint_slow();
}

/* Enter a region in which the thread does not touch GC memory (no
 * allocation, no GC_WRITE, no reads of GC objects it needs to be stable)
 * and may block. The collector treats the thread as stopped and scans the
 * stack it had on entry. Regions do not nest. An unattached thread is
 * attached first. */
void gc_blocking_begin(void);

/* Leave the blocking region; waits if the collector has the world stopped.
 * Calling it outside a region aborts with a message naming the call. */
void gc_blocking_end(void);

/* ------------------------------------------------------------------------
 * Roots: memory outside the GC heap that holds GC pointers and that the
 * collector does not scan by itself (malloc'd tables, __thread variables of
 * dlopen'ed libraries, anything with CGC_SCAN_GLOBALS=0). Scanned
 * conservatively.
 * ------------------------------------------------------------------------ */

/* Register [addr, addr + size) as a root. Thread-safe.
 * Errors: -1 with errno EINVAL if addr is NULL, size is 0, the range wraps,
 * or it overlaps a registered root; -1 with errno ENOMEM if memory runs out. */
int gc_root_add(void *addr, size_t size);

/* Unregister the root that starts at addr. Thread-safe.
 * Errors: -1 with errno ENOENT if no root starts at addr. */
int gc_root_remove(void *addr);

#define GC_ROOT(var) gc_root_add(&(var), sizeof(var))

/* ------------------------------------------------------------------------
 * The write barrier. Every store of a GC pointer into GC heap memory or a
 * registered root goes through GC_WRITE:
 *     GC_WRITE(node->next, other);
 * lvalue is evaluated once; value is evaluated once. The fast path is one
 * relaxed load of a global flag; while the collector marks concurrently,
 * the out-of-line part records the old and the new pointer.
 * ------------------------------------------------------------------------ */

/* Internal flag read by GC_WRITE; do not write it. */
extern atomic_int gc_internal_barrier_enabled;
/* Out-of-line part of GC_WRITE: shades the pointer currently in *slot and
 * value. Called only while the barrier is enabled. */
void gc_write_barrier_slow(void *const *slot, const void *value);

#define GC_WRITE(lvalue, value)                                                \
    do {                                                                       \
        __typeof__(lvalue) *gc_write_slot_ = &(lvalue);                        \
        __typeof__(lvalue) gc_write_value_ = (value);                          \
        if (GC_UNLIKELY(atomic_load_explicit(&gc_internal_barrier_enabled,     \
                                             memory_order_relaxed)))           \
            gc_write_barrier_slow((void *const *)gc_write_slot_,               \
                                  (const void *)gc_write_value_);              \
        *gc_write_slot_ = gc_write_value_;                                     \
    } while (0)

/* memmove(dst, src, n) with the write barrier applied to every word of dst
 * that may hold a pointer. Use it for block copies of pointer-holding
 * memory into the GC heap or a root. */
void gc_memmove(void *dst, const void *src, size_t n);

/* ------------------------------------------------------------------------
 * Control, like Go's runtime.GC and debug.SetGCPercent.
 * ------------------------------------------------------------------------ */

/* Run a full collection; marking and sweeping are complete on return.
 * Thread-safe: concurrent callers each wait for a full cycle. */
void gc_collect(void);

/* Set the heap growth percentage that triggers a collection (like GOGC);
 * negative turns automatic collection off (a memory limit still applies).
 * Returns the previous setting (-1 if it was off). Thread-safe. */
int gc_set_percent(int percent);

/* Set the soft memory limit (like debug.SetMemoryLimit): the collector
 * collects earlier and returns free memory to the OS to keep the memory the
 * heap retains (sys - heap_released) under `bytes`. A limit below what the
 * program needs makes collections run back to back but at most about half
 * of the time, rather than failing: allocation then goes on without waiting
 * for them and the heap grows past the limit (Go's GC CPU limiter), so the
 * program runs at about half speed. Negative only reads. Returns the
 * previous limit (INT64_MAX when there was none). Thread-safe. */
int64_t gc_set_memory_limit(int64_t bytes);

/* ------------------------------------------------------------------------
 * Observability, like Go's runtime.ReadMemStats. Reading never stops the
 * world; counters are exact at a point where no thread allocates and may
 * lag by a few objects otherwise.
 * ------------------------------------------------------------------------ */

#define GC_NUM_SIZE_CLASSES 74

struct gc_stats {
    /* General statistics (Go's meanings). */
    uint64_t alloc;       /* bytes of allocated heap objects (= heap_alloc) */
    uint64_t total_alloc; /* cumulative bytes allocated (never decreases) */
    uint64_t sys;         /* bytes obtained from the OS (heap + metadata) */
    uint64_t mallocs;     /* cumulative objects allocated */
    uint64_t frees;       /* cumulative objects freed */

    /* Heap. */
    uint64_t heap_alloc;    /* bytes of allocated objects, including
                               unreachable ones not yet swept */
    uint64_t heap_sys;      /* bytes of heap address space in use or idle */
    uint64_t heap_idle;     /* bytes in spans holding no object */
    uint64_t heap_inuse;    /* bytes in spans holding at least one object */
    uint64_t heap_released; /* bytes of idle spans returned to the OS */
    uint64_t heap_objects;  /* number of allocated objects */

    /* Collector. */
    uint64_t next_gc;        /* heap goal of the next cycle, bytes */
    uint64_t last_gc;        /* end of the last cycle, ns since the epoch */
    uint64_t pause_total_ns; /* cumulative stop-the-world pause time */
    uint64_t pause_ns[256];  /* stop-the-world time of recent cycles (both
                                pauses of a cycle added up, as Go's
                                PauseNs); newest at [(num_gc + 255) % 256] */
    uint64_t pause_end[256]; /* end of those pauses, ns since the epoch */
    uint32_t num_gc;         /* completed cycles */
    uint32_t num_forced_gc;  /* cycles started by gc_collect */
    double gc_cpu_fraction;  /* fraction of CPU time used by the collector
                                since gc_init */

    /* Per small size class, as Go's BySize: object size, objects allocated
     * and freed. Large objects (over 32 KiB) are counted in mallocs and
     * frees but in no entry; by_size[0] is, as in Go, the size-0 entry and
     * always {0, 0, 0}. */
    struct {
        uint32_t size;
        uint64_t mallocs;
        uint64_t frees;
    } by_size[GC_NUM_SIZE_CLASSES];

    /* Beyond Go's MemStats. */
    uint64_t gc_sys;            /* bytes of collector metadata from the OS */
    uint64_t pause_max_ns;      /* longest single stop-the-world pause since
                                   gc_init */
    uint64_t pause_p50_ns;      /* median of the cycles' pauses in pause_ns */
    uint64_t pause_p99_ns;      /* 99th percentile (nearest rank) of them */
    uint32_t mark_workers;      /* mark worker threads */
    int32_t gc_percent;         /* current CGC_PERCENT, -1 if off */
    uint64_t finalizers_queued; /* finalizers found ready, since gc_init */
    uint64_t finalizers_run;    /* finalizers that have run */
    uint64_t cleanups_queued;   /* cleanups found ready */
    uint64_t cleanups_run;      /* cleanups that have run */
    uint64_t weak_cleared;      /* weak pointers cleared (objects died) */
};
typedef struct gc_stats gc_stats;

/* Fill *out with the collector's statistics. Thread-safe; never stops the
 * world. Does nothing if out is NULL. */
void gc_read_stats(gc_stats *out);

/* Return free memory to the OS now, like Go's debug.FreeOSMemory: runs a
 * full collection (as gc_collect), then releases every free page. */
void gc_free_os_memory(void);

/* ------------------------------------------------------------------------
 * Finalizers, like Go's runtime.SetFinalizer. A finalizer runs once, after
 * its object was found unreachable; the object and everything it references
 * stay alive until it has run (it may resurrect the object by storing it
 * somewhere; the object then has no finalizer unless one is set again).
 * Ordering, as in Go and the Boehm collector: if A references B and both
 * have finalizers and become unreachable together, A's runs first and B's
 * only in a later cycle; so a cycle of objects with finalizers is never
 * collected. An object freed with gc_free loses its finalizer unrun.
 * gc_shutdown does not run pending finalizers.
 * ------------------------------------------------------------------------ */

typedef void (*gc_finalizer_fn)(void *obj, void *data);

/* Set fn(obj, data) as obj's finalizer; fn NULL removes it. Thread-safe.
 * Errors: -1 with errno EINVAL if obj is not the start of a live GC object;
 * EEXIST if obj already has one (remove it first); ENOMEM. Returns 0. */
int gc_set_finalizer(void *obj, gc_finalizer_fn fn, void *data);

/* Cleanups, like Go's runtime.AddCleanup: fn(arg) runs after obj was found
 * unreachable (after its finalizer, if it has one, and once it is
 * unreachable again); it never sees obj, so it cannot resurrect it. An
 * object may have several, run in any order; each is cancellable until it
 * runs. arg is kept alive until then, so arg must not reach obj, or the
 * cleanup never runs: an arg pointing into obj is refused. They run where
 * finalizers run. The handle is a GC object (drop it if you never cancel).
 * Thread-safe. */
typedef void (*gc_cleanup_fn)(void *arg);
typedef struct gc_cleanup gc_cleanup;
/* Errors: NULL with errno EINVAL (obj not the start of a live GC object,
 * fn NULL, arg inside obj) or ENOMEM. */
gc_cleanup *gc_add_cleanup(void *obj, gc_cleanup_fn fn, void *arg);
/* 0, or -1 with errno ENOENT if it already ran or was cancelled (EINVAL
 * for NULL). */
int gc_cleanup_cancel(gc_cleanup *c);

/* Where finalizers run: GC_FINALIZE_THREAD (the default) on one dedicated,
 * attached thread, in the order they became ready; GC_FINALIZE_ON_DEMAND
 * queues them until the program calls gc_run_finalizers (for a
 * single-threaded interpreter that runs user code on its own thread). */
enum gc_finalizer_mode { GC_FINALIZE_THREAD, GC_FINALIZE_ON_DEMAND };
void gc_set_finalizer_mode(enum gc_finalizer_mode mode);

/* Run the queued finalizers on the calling thread; returns how many ran.
 * A finalizer may allocate, call gc_collect, set finalizers. */
size_t gc_run_finalizers(void);

/* ------------------------------------------------------------------------
 * Weak pointers, like Go's weak.Pointer. A handle refers to an object
 * without keeping it alive; it reads NULL from the moment the object is
 * found unreachable — before any finalizer of the object runs, so a
 * resurrected object stays NULL to its weak pointers. The handle is itself
 * a GC object: it lives while the program holds it, and at least as long
 * as its object.
 * ------------------------------------------------------------------------ */
typedef struct gc_weak gc_weak;

/* The weak pointer to obj; the same handle every time for the same object.
 * Thread-safe. Errors: NULL with errno EINVAL if obj is not the start of a
 * live GC object, ENOMEM. */
gc_weak *gc_weak_new(void *obj);

/* The object, or NULL once it was found unreachable (or w is NULL). The
 * result is a strong pointer: while the collector marks, reading it is a
 * barrier that keeps the object alive. Thread-safe, lock-free. */
void *gc_weak_get(const gc_weak *w);

/* ------------------------------------------------------------------------
 * Ephemerons: value is kept alive only while key is reachable — through
 * paths other than the ephemeron's own value — and while the ephemeron
 * itself is. Chains (a value that is another ephemeron's key) resolve in
 * one cycle. A dropped ephemeron keeps nothing. The handle is a GC object.
 * Reading key or value while the collector marks is a barrier, as for weak
 * pointers.
 * ------------------------------------------------------------------------ */
typedef struct gc_ephemeron gc_ephemeron;
/* key must be the start of a live GC object; value any pointer (NULL too).
 * Errors: NULL with errno EINVAL or ENOMEM. Thread-safe. */
gc_ephemeron *gc_ephemeron_new(void *key, void *value);
/* The key, or NULL once it died (or e is NULL). */
void *gc_ephemeron_key(const gc_ephemeron *e);
/* The value, or NULL once the key died (or e is NULL). */
void *gc_ephemeron_value(const gc_ephemeron *e);

/* Keep p reachable up to this call, like Go's runtime.KeepAlive: after its
 * last use an object may be found unreachable while a function that got it
 * is still running. */
void gc_keep_alive(const void *p);

/* Route the trace lines of CGC_DEBUG=gctrace/gcpacertrace/scavtrace to fn
 * instead of stderr: fn(line, data) gets each line without its newline.
 * NULL restores stderr. fn runs on the collector's threads, outside any
 * stop-the-world; it may call gc_read_stats but no other gc_* function.
 * Thread-safe. */
typedef void (*gc_trace_fn)(const char *line, void *data);
void gc_set_trace_handler(gc_trace_fn fn, void *data);

/* Phase events of each cycle, for metrics: fn(event, data) is called on the
 * collector thread when a cycle starts (before STW 1), when concurrent
 * marking starts (after STW 1), when marking is done (after STW 2) and when
 * the cycle ends (its statistics recorded). Same rules as the trace
 * handler. NULL turns events off. */
enum gc_event_kind {
    GC_EVENT_CYCLE_START,
    GC_EVENT_MARK_START,
    GC_EVENT_MARK_DONE,
    GC_EVENT_CYCLE_END,
};
typedef struct gc_event {
    enum gc_event_kind kind;
    uint32_t cycle;     /* the cycle's number, from 1 (num_gc once done) */
    uint64_t time_ns;   /* CLOCK_MONOTONIC */
    uint64_t heap_live; /* bytes, the pacer's view */
    uint64_t heap_goal; /* bytes */
} gc_event;
typedef void (*gc_event_fn)(const gc_event *event, void *data);
void gc_set_event_handler(gc_event_fn fn, void *data);

#pragma GCC visibility pop

#endif /* CGC_H */
