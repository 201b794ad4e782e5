/*
 * gc.h — the Boehm-Demers-Weiser collector's API (bdwgc 8.2), backed by
 * cgc. Programs written for the Boehm collector compile against this header
 * and link -lcgc-bdwgc (pkg-config cgc-bdwgc), or run unchanged with cgc's
 * libgc.so.1 on LD_LIBRARY_PATH. Written from bdwgc's documented API.
 *
 * What differs from the Boehm collector, on purpose:
 *   - Marking runs with the world stopped by default, as Boehm's does: a
 *     Boehm program stores pointers with plain stores, without a barrier.
 *     CGC_DEBUG=gcstoptheworld=0 selects cgc's concurrent marking, which is
 *     correct only for a program whose every pointer store into the heap
 *     goes through GC_ptr_store_and_dirty / GC_end_stubborn_change.
 *   - The heap grows by cgc's pacer: GC_free_space_divisor D sets cgc's
 *     growth percentage (CGC_PERCENT) to 150 / D: the default D = 3 gives
 *     50, which matched Debian's libgc in peak memory; CGC_PERCENT, when
 *     set, wins.
 *   - Finalization is ordered for every registration function (see
 *     GC_register_finalizer).
 *   - The CGC_* environment variables apply (see cgc.h); Boehm's GC_*
 *     environment variables are not read.
 * Every function declared here does what bdwgc documents or says on stderr
 * why it cannot; what is not declared is not provided (README lists it).
 */
#ifndef CGC_BDWGC_GC_H
#define CGC_BDWGC_GC_H

#include <stddef.h>
#if defined(GC_THREADS) || defined(CGC_BDWGC_BUILD)
#include <pthread.h>
#include <signal.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define GC_API extern __attribute__((visibility("default")))
#define GC_CALL
#define GC_CALLBACK
#define GC_ATTR_MALLOC __attribute__((malloc))

/* The version of bdwgc whose API this is. */
#define GC_VERSION_MAJOR 8
#define GC_VERSION_MINOR 2
#define GC_VERSION_MICRO 2

typedef unsigned long GC_word;
typedef long GC_signed_word;
typedef void *GC_PTR; /* old name */

/* ---- variables and their accessors -------------------------------------
 * A program may write these before GC_init (most take effect then) or at
 * any time (GC_dont_gc, GC_free_space_divisor, GC_finalize_on_demand are
 * read again at each allocation and collection). */

/* Number of completed collections (read-only for the program). */
GC_API GC_word GC_gc_no;
/* Non-zero: no collection happens, automatic or explicit. */
GC_API int GC_dont_gc;
/* Pointers into the middle of objects keep them alive (always true in
 * cgc); when non-zero at GC_init, every object gets one extra byte so that
 * a pointer just past its end keeps it alive too. Default 1. */
GC_API int GC_all_interior_pointers;
/* Heap growth: see the file comment. Default 3. */
GC_API GC_word GC_free_space_divisor;
/* Non-zero: finalizers run only from GC_invoke_finalizers. Default 0:
 * they run from allocation calls on the thread that allocates. */
GC_API int GC_finalize_on_demand;
/* Read and written for compatibility only: cgc's finalization is always
 * what bdwgc calls Java-style (a finalizer may resurrect its object, which
 * is then not finalized again unless registered again). */
GC_API int GC_java_finalization;

GC_API void GC_CALL GC_set_dont_gc(int);
GC_API int GC_CALL GC_get_dont_gc(void);
GC_API void GC_CALL GC_set_all_interior_pointers(int);
GC_API int GC_CALL GC_get_all_interior_pointers(void);
GC_API void GC_CALL GC_set_free_space_divisor(GC_word);
GC_API GC_word GC_CALL GC_get_free_space_divisor(void);
GC_API void GC_CALL GC_set_finalize_on_demand(int);
GC_API int GC_CALL GC_get_finalize_on_demand(void);
GC_API void GC_CALL GC_set_java_finalization(int);
GC_API int GC_CALL GC_get_java_finalization(void);

/* ---- initialisation ---------------------------------------------------- */

/* Initialise the collector (also done by the first allocation). Call it
 * from the main thread. */
GC_API void GC_CALL GC_init(void);
#define GC_INIT() GC_init()
/* Whether GC_init has run. */
GC_API int GC_CALL GC_is_init_called(void);
/* 0x00MMmmuu: the bdwgc version whose API this is (8.2.2). */
GC_API unsigned GC_CALL GC_get_version(void);

/* ---- allocation ----------------------------------------------------------
 * Objects are zeroed except those from the _atomic functions, which hold
 * no pointers and are never scanned. On failure the out-of-memory function
 * (GC_set_oom_fn) is called and its result returned. */

GC_API GC_ATTR_MALLOC void *GC_CALL GC_malloc(size_t);
GC_API GC_ATTR_MALLOC void *GC_CALL GC_malloc_atomic(size_t);
/* Scanned, never collected: a root until GC_free. */
GC_API GC_ATTR_MALLOC void *GC_CALL GC_malloc_uncollectable(size_t);
GC_API GC_ATTR_MALLOC void *GC_CALL GC_malloc_atomic_uncollectable(size_t);
/* As GC_malloc / GC_malloc_atomic (cgc always recognises interior
 * pointers, so the hint changes nothing). */
GC_API GC_ATTR_MALLOC void *GC_CALL GC_malloc_ignore_off_page(size_t);
GC_API GC_ATTR_MALLOC void *GC_CALL GC_malloc_atomic_ignore_off_page(size_t);
/* A list of objects of the given size linked through their first word
 * (GC_NEXT); NULL if none could be allocated. */
GC_API void *GC_CALL GC_malloc_many(size_t);
#define GC_NEXT(p) (*(void **)(p))
/* An object whose address is a multiple of align (a power of two). */
GC_API GC_ATTR_MALLOC void *GC_CALL GC_memalign(size_t align, size_t);
/* 0, EINVAL (align not a power of two multiple of sizeof(void *)) or
 * ENOMEM. */
GC_API int GC_CALL GC_posix_memalign(void **, size_t align, size_t);
/* Resize, keeping the kind (scanned, atomic, uncollectable); NULL p
 * allocates, size 0 frees and returns NULL. */
GC_API void *GC_CALL GC_realloc(void *, size_t);
/* Free an object now (it must not be referenced any more); NULL is
 * ignored. */
GC_API void GC_CALL GC_free(void *);
GC_API GC_ATTR_MALLOC char *GC_CALL GC_strdup(const char *);
GC_API GC_ATTR_MALLOC char *GC_CALL GC_strndup(const char *, size_t);
/* The start of the object p points into, NULL if none. */
GC_API void *GC_CALL GC_base(void *);
/* Whether p points into the collector's heap. */
GC_API int GC_CALL GC_is_heap_ptr(const void *);
/* Bytes usable in the object that starts at p. */
GC_API size_t GC_CALL GC_size(const void *);

/* The debugging forms take the caller's file and line and behave as the
 * plain ones (no debug headers). */
#define GC_EXTRA_PARAMS const char *descr, int lineno
GC_API GC_ATTR_MALLOC void *GC_CALL GC_debug_malloc(size_t, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC void *GC_CALL GC_debug_malloc_atomic(size_t,
                                                           GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC void *
    GC_CALL GC_debug_malloc_uncollectable(size_t, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC void *
    GC_CALL GC_debug_malloc_atomic_uncollectable(size_t, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC void *
    GC_CALL GC_debug_malloc_ignore_off_page(size_t, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC void *
    GC_CALL GC_debug_malloc_atomic_ignore_off_page(size_t, GC_EXTRA_PARAMS);
GC_API void *GC_CALL GC_debug_realloc(void *, size_t, GC_EXTRA_PARAMS);
GC_API void GC_CALL GC_debug_free(void *);
GC_API GC_ATTR_MALLOC char *GC_CALL GC_debug_strdup(const char *,
                                                    GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC char *GC_CALL GC_debug_strndup(const char *, size_t,
                                                     GC_EXTRA_PARAMS);

#ifdef GC_DEBUG
#define GC_EXTRAS                   __FILE__, __LINE__
#define GC_MALLOC(sz)               GC_debug_malloc(sz, GC_EXTRAS)
#define GC_MALLOC_ATOMIC(sz)        GC_debug_malloc_atomic(sz, GC_EXTRAS)
#define GC_MALLOC_UNCOLLECTABLE(sz) GC_debug_malloc_uncollectable(sz, GC_EXTRAS)
#define GC_MALLOC_ATOMIC_UNCOLLECTABLE(sz)                                     \
    GC_debug_malloc_atomic_uncollectable(sz, GC_EXTRAS)
#define GC_MALLOC_IGNORE_OFF_PAGE(sz)                                          \
    GC_debug_malloc_ignore_off_page(sz, GC_EXTRAS)
#define GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(sz)                                   \
    GC_debug_malloc_atomic_ignore_off_page(sz, GC_EXTRAS)
#define GC_REALLOC(old, sz) GC_debug_realloc(old, sz, GC_EXTRAS)
#define GC_FREE(p)          GC_debug_free(p)
#define GC_STRDUP(s)        GC_debug_strdup(s, GC_EXTRAS)
#define GC_STRNDUP(s, sz)   GC_debug_strndup(s, sz, GC_EXTRAS)
#else
#define GC_MALLOC(sz)                      GC_malloc(sz)
#define GC_MALLOC_ATOMIC(sz)               GC_malloc_atomic(sz)
#define GC_MALLOC_UNCOLLECTABLE(sz)        GC_malloc_uncollectable(sz)
#define GC_MALLOC_ATOMIC_UNCOLLECTABLE(sz) GC_malloc_atomic_uncollectable(sz)
#define GC_MALLOC_IGNORE_OFF_PAGE(sz)      GC_malloc_ignore_off_page(sz)
#define GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(sz)                                   \
    GC_malloc_atomic_ignore_off_page(sz)
#define GC_REALLOC(old, sz) GC_realloc(old, sz)
#define GC_FREE(p)          GC_free(p)
#define GC_STRDUP(s)        GC_strdup(s)
#define GC_STRNDUP(s, sz)   GC_strndup(s, sz)
#endif
#define GC_NEW(t)               ((t *)GC_MALLOC(sizeof(t)))
#define GC_NEW_ATOMIC(t)        ((t *)GC_MALLOC_ATOMIC(sizeof(t)))
#define GC_NEW_UNCOLLECTABLE(t) ((t *)GC_MALLOC_UNCOLLECTABLE(sizeof(t)))

/* A pointer the collector must not see (for disappearing links and
 * caches): stored complemented. */
#define GC_HIDE_POINTER(p)   (~(GC_word)(p))
#define GC_REVEAL_POINTER(p) ((void *)GC_HIDE_POINTER(p))
#define HIDE_POINTER(p)      GC_HIDE_POINTER(p)
#define REVEAL_POINTER(p)    GC_REVEAL_POINTER(p)

/* ---- collection ------------------------------------------------------- */

/* A full collection, unless GC_dont_gc is set; finalizers that become
 * ready run afterwards unless GC_finalize_on_demand. */
GC_API void GC_CALL GC_gcollect(void);
/* The same, then free memory goes back to the OS. */
GC_API void GC_CALL GC_gcollect_and_unmap(void);
typedef int(GC_CALLBACK *GC_stop_func)(void);
/* A full collection unless stop_func() returns non-zero before it starts
 * (a cgc cycle cannot be abandoned half-way); returns 1 if it ran. */
GC_API int GC_CALL GC_try_to_collect(GC_stop_func);
/* Some of the work of a collection under way: sweeps one span of the last
 * cycle, if any is left. Returns non-zero if more such work remains. */
GC_API int GC_CALL GC_collect_a_little(void);
/* GC_disable increments GC_dont_gc, GC_enable decrements it. */
GC_API void GC_CALL GC_disable(void);
GC_API void GC_CALL GC_enable(void);
GC_API int GC_CALL GC_is_disabled(void);
GC_API GC_word GC_CALL GC_get_gc_no(void);

/* ---- figures ------------------------------------------------------------
 * Bytes, from cgc's statistics: the heap is the memory obtained for
 * objects and not returned to the OS; free bytes are the heap's part that
 * holds no allocated object. */
GC_API size_t GC_CALL GC_get_heap_size(void);
GC_API size_t GC_CALL GC_get_free_bytes(void);
GC_API size_t GC_CALL GC_get_unmapped_bytes(void);
GC_API size_t GC_CALL GC_get_bytes_since_gc(void);
GC_API size_t GC_CALL GC_get_total_bytes(void);
/* Any pointer may be NULL. */
GC_API void GC_CALL GC_get_heap_usage_safe(GC_word *heap_size,
                                           GC_word *free_bytes,
                                           GC_word *unmapped_bytes,
                                           GC_word *bytes_since_gc,
                                           GC_word *total_bytes);

/* ---- roots --------------------------------------------------------------
 * The data and bss of the program and of its shared libraries, the stacks
 * of registered threads and these ranges are scanned for pointers. Memory
 * from malloc is not. */

/* Scan [low, high) too. A range that overlaps or touches one added before
 * is merged with it. */
GC_API void GC_CALL GC_add_roots(void *low, void *high);
/* Stop scanning the ranges added with GC_add_roots that lie entirely in
 * [low, high). */
GC_API void GC_CALL GC_remove_roots(void *low, void *high);
/* Stop scanning every range added with GC_add_roots. */
GC_API void GC_CALL GC_clear_roots(void);

/* ---- finalization ---------------------------------------------------- */

typedef void(GC_CALLBACK *GC_finalization_proc)(void *obj, void *client_data);
/* Register fn(obj, cd) to run once obj is unreachable (obj: the start of a
 * GC object; anything else is ignored). fn 0 removes the registration. The
 * previous one is returned in *ofn and *ocd (each may be NULL; 0 if there
 * was none). Ordered, as bdwgc's GC_register_finalizer: if A reaches B and
 * both are finalizable, A is finalized first and B in a later cycle, and a
 * cycle of finalizable objects is never finalized. The _ignore_self,
 * _no_order and _unreachable forms are the same here: cgc has ordered
 * finalization only (stricter: referents always stay alive for the
 * finalizer, but a cycle through a _no_order object is not collected). */
GC_API void GC_CALL GC_register_finalizer(void *obj, GC_finalization_proc fn,
                                          void *cd, GC_finalization_proc *ofn,
                                          void **ocd);
GC_API void GC_CALL GC_register_finalizer_ignore_self(void *obj,
                                                      GC_finalization_proc fn,
                                                      void *cd,
                                                      GC_finalization_proc *ofn,
                                                      void **ocd);
GC_API void GC_CALL GC_register_finalizer_no_order(void *obj,
                                                   GC_finalization_proc fn,
                                                   void *cd,
                                                   GC_finalization_proc *ofn,
                                                   void **ocd);
GC_API void GC_CALL GC_register_finalizer_unreachable(void *obj,
                                                      GC_finalization_proc fn,
                                                      void *cd,
                                                      GC_finalization_proc *ofn,
                                                      void **ocd);
/* Run the finalizers that are ready, on this thread; returns how many. */
GC_API int GC_CALL GC_invoke_finalizers(void);
/* Whether some are ready. */
GC_API int GC_CALL GC_should_invoke_finalizers(void);
/* With GC_finalize_on_demand, called (from an allocation) when finalizers
 * have become ready since the last call. */
typedef void(GC_CALLBACK *GC_finalizer_notifier_proc)(void);
GC_API void GC_CALL GC_set_finalizer_notifier(GC_finalizer_notifier_proc);
GC_API GC_finalizer_notifier_proc GC_CALL GC_get_finalizer_notifier(void);

/* ---- disappearing links -------------------------------------------------
 * A link is a pointer-sized, aligned word of the program's (in static data,
 * in malloc memory or in a GC object; never on a stack) that the collector
 * sets to NULL when obj (a GC object) dies. The word must not keep obj
 * alive: hide it (GC_HIDE_POINTER) or keep it where the collector does not
 * look (an atomic object, malloc memory). Links are cleared with the world
 * stopped, before the sweep that frees obj, so a thread never reads a link
 * to freed memory (with the default stop-the-world marking; under
 * CGC_DEBUG=gcstoptheworld=0 a link loaded while marking runs is not seen
 * by the marker, so there is no such guarantee). A link fires once: it is
 * then unregistered.
 * If the GC object holding the link dies in the same cycle, the link is
 * not written and is dropped; unregister a link before GC_free of the
 * object holding it or of obj. Links from any thread. */

#ifndef GC_NO_MEMORY
#define GC_NO_MEMORY 2 /* the same value as GC_NO_THREADS, as in bdwgc */
#endif
/* Clear *link when obj is first found unreachable, before its finalizer
 * (if any) runs, even if the finalizer resurrects obj. GC_SUCCESS,
 * GC_DUPLICATE (link already registered: unchanged) or GC_NO_MEMORY. A
 * misaligned or NULL link aborts, as in bdwgc. */
GC_API int GC_CALL GC_general_register_disappearing_link(void **link,
                                                         const void *obj);
/* As bdwgc: the same with obj = GC_base(link), the object holding the
 * link (it aborts if link is not in a GC object). */
GC_API int GC_CALL GC_register_disappearing_link(void **link);
/* 1 if link was registered (it no longer is), 0 if not. */
GC_API int GC_CALL GC_unregister_disappearing_link(void **link);
/* The registration of link now applies to new_link (*link and *new_link
 * are not touched): GC_SUCCESS, GC_NOT_FOUND (link not registered) or
 * GC_DUPLICATE (new_link already is; nothing changes). */
GC_API int GC_CALL GC_move_disappearing_link(void **link, void **new_link);
/* Long links: *link is cleared only when obj is really reclaimed, after
 * its finalizer ran (and did not resurrect it). Same results; a link may
 * be both a disappearing and a long link. */
GC_API int GC_CALL GC_register_long_link(void **link, const void *obj);
GC_API int GC_CALL GC_unregister_long_link(void **link);
GC_API int GC_CALL GC_move_long_link(void **link, void **new_link);

/* ---- threads ------------------------------------------------------------
 * Any thread may allocate: cgc attaches a thread at its first allocation
 * and detaches it when it exits, and stops a thread that does not reach a
 * safepoint with its preemption signal (CGC_SIGNAL). A thread that only
 * reads GC objects must be registered first: started by GC_pthread_create
 * (what pthread_create means under GC_THREADS), or GC_register_my_thread. */

#define GC_SUCCESS       0
#define GC_DUPLICATE     1 /* already registered */
#define GC_NO_THREADS    2
#define GC_UNIMPLEMENTED 3
#define GC_NOT_FOUND     4

struct GC_stack_base {
    void *mem_base; /* the hot end: the highest address, stacks grow down */
};
typedef void *(GC_CALLBACK *GC_fn_type)(void *client_data);
typedef void *(GC_CALLBACK *GC_stack_base_func)(struct GC_stack_base *sb,
                                                void *arg);

/* Register the calling thread (its stack and registers become roots).
 * GC_SUCCESS, or GC_DUPLICATE if it already was (a thread that allocated
 * is). sb is not needed: cgc finds the stack's bounds itself. Aborts with
 * a message if the thread's record cannot be allocated. */
GC_API int GC_CALL GC_register_my_thread(const struct GC_stack_base *sb);
/* Unregister the calling thread (not inside GC_do_blocking): its stack is
 * no longer scanned. GC_SUCCESS. A thread that exits is unregistered
 * anyway. */
GC_API int GC_CALL GC_unregister_my_thread(void);
/* Whether the calling thread is registered. */
GC_API int GC_CALL GC_thread_is_registered(void);
/* Registration from any thread is always allowed in cgc: this only
 * initialises the collector, as bdwgc requires it before the first
 * GC_register_my_thread. */
GC_API void GC_CALL GC_allow_register_threads(void);
/* The calling thread's stack base (pthread_getattr_np): GC_SUCCESS, or
 * GC_UNIMPLEMENTED if the system cannot tell. */
GC_API int GC_CALL GC_get_stack_base(struct GC_stack_base *sb);
/* fn(sb, arg) with sb the calling thread's stack base. */
GC_API void *GC_CALL GC_call_with_stack_base(GC_stack_base_func fn, void *arg);
/* fn(client_data) in a blocking region: collections do not wait for the
 * thread meanwhile, and fn must not touch GC memory (no allocation, no
 * pointer stores, no reads it needs stable), as in bdwgc. Nested calls
 * run fn in the region already entered. */
GC_API void *GC_CALL GC_do_blocking(GC_fn_type fn, void *client_data);
/* Inside GC_do_blocking: leave the region for fn(client_data), which may
 * then use GC memory, and enter it again after. Elsewhere just calls fn. */
GC_API void *GC_CALL GC_call_with_gc_active(GC_fn_type fn, void *client_data);
/* fn(client_data) holding the layer's lock, which excludes every other
 * GC_call_with_alloc_lock call, as bdwgc's allocation lock does; unlike
 * bdwgc's it does not hold up other threads' allocations and collections
 * (none is needed for a consistent read of a disappearing link: links are
 * cleared with the world stopped). fn must not call it again (it is not
 * recursive). */
GC_API void *GC_CALL GC_call_with_alloc_lock(GC_fn_type fn, void *client_data);
/* dlopen: cgc scans the data of libraries loaded later by itself. */
GC_API void *GC_CALL GC_dlopen(const char *path, int mode);
/* bdwgc's switch for its fork handlers. cgc installs its own
 * pthread_atfork handlers at initialisation whatever the value: a child
 * that does not exec has a consistent heap and its collector threads are
 * restarted when first needed (README, "fork"). The value is recorded
 * only. */
GC_API void GC_CALL GC_set_handle_fork(int value);
/* bdwgc's fork handlers, for a program that calls them itself around
 * fork (GC_set_handle_fork(-1)). They do nothing in cgc (prepare only
 * initialises the collector): cgc's pthread_atfork handlers run inside
 * every fork() and would deadlock if their locks were taken twice. A child
 * made without fork handlers (a raw clone or syscall(SYS_fork)) that goes
 * on to use the collector is not supported. */
GC_API void GC_CALL GC_atfork_prepare(void);
GC_API void GC_CALL GC_atfork_parent(void);
GC_API void GC_CALL GC_atfork_child(void);

#if defined(GC_THREADS) || defined(CGC_BDWGC_BUILD)
/* pthread_create, with the new thread registered before start runs and
 * unregistered when start returns, the thread calls GC_pthread_exit or is
 * cancelled (a cleanup handler, which also leaves a GC_do_blocking region
 * the thread was cancelled in). arg is kept alive until the thread holds
 * it and the thread's result until GC_pthread_join returns it (either may
 * be a GC object held nowhere else): both are kept in a small
 * uncollectable record, freed at join or, for a detached thread, at its
 * end. Errors: pthread_create's, or EAGAIN if the record cannot be
 * allocated. Unlike bdwgc, creation does not wait for the new thread. */
GC_API int GC_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                             void *(*start)(void *), void *arg);
/* pthread_join, pthread_detach and pthread_cancel, which also free or mark
 * the record of a thread made by GC_pthread_create; their errors. A thread
 * joined or detached with the real calls leaves its record behind until
 * another thread gets the same pthread_t. */
GC_API int GC_pthread_join(pthread_t thread, void **result);
GC_API int GC_pthread_detach(pthread_t thread);
/* pthread_exit, with the result kept until join. In a thread not made by
 * GC_pthread_create it is plain pthread_exit (cgc detaches the thread as
 * it exits). The result of a real pthread_exit is not kept alive. */
GC_API void GC_pthread_exit(void *result) __attribute__((noreturn));
GC_API int GC_pthread_cancel(pthread_t thread);
/* pthread_sigmask that never blocks cgc's preemption signal (it is taken
 * out of a SIG_BLOCK or SIG_SETMASK set, as bdwgc does with its own). */
GC_API int GC_pthread_sigmask(int how, const sigset_t *set, sigset_t *oset);

#if defined(GC_THREADS) && !defined(GC_NO_THREAD_REDIRECTS)
#undef pthread_create
#undef pthread_join
#undef pthread_detach
#undef pthread_exit
#undef pthread_cancel
#undef pthread_sigmask
#define pthread_create  GC_pthread_create
#define pthread_join    GC_pthread_join
#define pthread_detach  GC_pthread_detach
#define pthread_exit    GC_pthread_exit
#define pthread_cancel  GC_pthread_cancel
#define pthread_sigmask GC_pthread_sigmask
#endif
#endif

/* ---- warnings and out of memory ---------------------------------------- */

/* msg is a printf format with one %lu (or none) for arg. The default
 * prints to stderr; GC_ignore_warn_proc prints nothing. Warnings are the
 * collector's own (cgc's messages, passed as "%s"-free text with arg 0). */
typedef void(GC_CALLBACK *GC_warn_proc)(char *msg, GC_word arg);
GC_API void GC_CALL GC_set_warn_proc(GC_warn_proc);
GC_API GC_warn_proc GC_CALL GC_get_warn_proc(void);
GC_API void GC_CALLBACK GC_ignore_warn_proc(char *, GC_word);
/* Called with the request's size when an allocation fails; what it
 * returns is the allocation's result. The default returns NULL. */
typedef void *(GC_CALLBACK *GC_oom_func)(size_t bytes_requested);
GC_API void GC_CALL GC_set_oom_fn(GC_oom_func);
GC_API GC_oom_func GC_CALL GC_get_oom_fn(void);

#ifdef __cplusplus
}
#endif

#endif /* CGC_BDWGC_GC_H */
