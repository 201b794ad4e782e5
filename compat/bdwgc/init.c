/*
 * init.c — initialisation and the variables of bdwgc's API (GC_dont_gc,
 * GC_free_space_divisor, ...) with their setters and getters.
 *
 * Initialisation happens once, on the first GC_ call of any thread or on
 * GC_init: marking defaults to stop-the-world (a Boehm program has no write
 * barrier), finalizers run where the layer runs them (allocations,
 * GC_invoke_finalizers), never on cgc's finalizer thread, since a program
 * written for bdwgc may not expect its finalizers on another thread.
 *
 * The program writes some variables directly at any time. bdwgc_sync
 * compares them with the values last applied (relaxed atomics: a write the
 * program makes on another thread is seen at a later call) and applies a
 * change under sync_lock, so concurrent callers apply it once.
 */
#include "bdwgc.h"

#include "env.h"

#include <cgc.h>
#include <pthread.h>
#include <stdlib.h>

GC_word GC_gc_no;
int GC_dont_gc;
int GC_all_interior_pointers = 1;
GC_word GC_free_space_divisor = 3;
int GC_finalize_on_demand;
int GC_java_finalization = 1;

atomic_bool bdwgc_initialized;
size_t bdwgc_extra_bytes;
int bdwgc_seen_dont_gc;
GC_word bdwgc_seen_divisor;

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;

/* GC_free_space_divisor D onto cgc's percentage: 150 / D, at least 1. bdwgc
 * collects once the program has allocated about 2 / D of its scanned heap
 * (less for pointer-free data), where cgc's percentage is the growth over
 * the live heap. The factor was chosen by measurement: with bdwgc's default
 * D = 3, 50 % gives w3m -dump of a 4 MB page the peak RSS it has on
 * Debian's libgc (100 MB against 101 MB), where cgc's own default of 100 %
 * gave 125 MB. A larger D (collect more often) maps to a smaller
 * percentage. CGC_PERCENT, when set, wins. */
static int percent_of_divisor(GC_word divisor)
{
    if (divisor == 0)
        divisor = 1;
    GC_word percent = 150 / divisor;
    return percent < 1 ? 1 : (int)percent;
}

/* CGC_PERCENT, when set, wins over the divisor (read at init). */
static int percent_from_environment = -2; /* -2: not set */

void bdwgc_sync_slow(void)
{
    pthread_mutex_lock(&sync_lock);
    int dont_gc = __atomic_load_n(&GC_dont_gc, __ATOMIC_RELAXED);
    GC_word divisor = __atomic_load_n(&GC_free_space_divisor, __ATOMIC_RELAXED);
    int percent = percent_from_environment != -2 ? percent_from_environment
                                                 : percent_of_divisor(divisor);
    gc_set_percent(dont_gc ? -1 : percent);
    __atomic_store_n(&bdwgc_seen_dont_gc, dont_gc, __ATOMIC_RELAXED);
    __atomic_store_n(&bdwgc_seen_divisor, divisor, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&sync_lock);
}

void bdwgc_init_slow(void)
{
    pthread_mutex_lock(&init_lock);
    if (!atomic_load_explicit(&bdwgc_initialized, memory_order_relaxed)) {
        env_default_stop_the_world(true);
        bdwgc_extra_bytes = GC_all_interior_pointers ? 1 : 0;
        gc_init();
        if (getenv("CGC_PERCENT"))
            percent_from_environment = gc_config.percent;
        gc_set_finalizer_mode(GC_FINALIZE_ON_DEMAND);
        bdwgc_warn_init();
        bdwgc_collect_init();
        /* Force the first sync: the program may have set the variables
         * before the first call. */
        bdwgc_seen_dont_gc = !GC_dont_gc;
        atomic_store_explicit(&bdwgc_initialized, true, memory_order_release);
    }
    pthread_mutex_unlock(&init_lock);
    bdwgc_sync();
}

void GC_init(void)
{
    bdwgc_ensure_init();
}

int GC_is_init_called(void)
{
    return atomic_load_explicit(&bdwgc_initialized, memory_order_acquire);
}

unsigned GC_get_version(void)
{
    return (GC_VERSION_MAJOR << 16) | (GC_VERSION_MINOR << 8) |
           GC_VERSION_MICRO;
}

void GC_set_dont_gc(int value)
{
    __atomic_store_n(&GC_dont_gc, value, __ATOMIC_RELAXED);
    if (GC_is_init_called())
        bdwgc_sync();
}

int GC_get_dont_gc(void)
{
    return __atomic_load_n(&GC_dont_gc, __ATOMIC_RELAXED);
}

void GC_set_all_interior_pointers(int value)
{
    /* Read by GC_init only, as in bdwgc. */
    GC_all_interior_pointers = value != 0;
}

int GC_get_all_interior_pointers(void)
{
    return GC_all_interior_pointers;
}

void GC_set_free_space_divisor(GC_word value)
{
    __atomic_store_n(&GC_free_space_divisor, value, __ATOMIC_RELAXED);
    if (GC_is_init_called())
        bdwgc_sync();
}

GC_word GC_get_free_space_divisor(void)
{
    return __atomic_load_n(&GC_free_space_divisor, __ATOMIC_RELAXED);
}

void GC_set_finalize_on_demand(int value)
{
    __atomic_store_n(&GC_finalize_on_demand, value, __ATOMIC_RELAXED);
}

int GC_get_finalize_on_demand(void)
{
    return __atomic_load_n(&GC_finalize_on_demand, __ATOMIC_RELAXED);
}

void GC_set_java_finalization(int value)
{
    GC_java_finalization = value;
}

int GC_get_java_finalization(void)
{
    return GC_java_finalization;
}
