/*
 * finalization.c — bdwgc's finalizer registration, GC_invoke_finalizers and
 * the finalizer notifier, on cgc's (ordered) finalizers.
 *
 * cgc's finalizer thread is never used (init.c sets GC_FINALIZE_ON_DEMAND):
 * as in bdwgc, ready finalizers run from allocation calls on the thread
 * that allocates, unless the program set GC_finalize_on_demand and runs
 * them itself with GC_invoke_finalizers, being told by its notifier. A
 * finalizer that allocates does not run further finalizers from inside
 * itself (running_finalizers, per thread).
 */
#include "bdwgc.h"

#include "finalize.h"

#include <cgc.h>

static _Thread_local bool running_finalizers;
static GC_finalizer_notifier_proc _Atomic notifier;
/* GC_gc_no when the notifier was last called: once per cycle at most. */
static _Atomic GC_word notified_at_gc = (GC_word)-1;

static void register_finalizer(void *obj, GC_finalization_proc fn, void *cd,
                               GC_finalization_proc *ofn, void **ocd)
{
    bdwgc_ensure_init();
    gc_finalizer_fn old_fn = NULL;
    void *old_data = NULL;
    /* Not the start of a GC object: ignored, as bdwgc does. */
    finalize_replace(obj, (gc_finalizer_fn)fn, cd, &old_fn, &old_data);
    if (ofn)
        *ofn = (GC_finalization_proc)old_fn;
    if (ocd)
        *ocd = old_data;
}

void GC_register_finalizer(void *obj, GC_finalization_proc fn, void *cd,
                           GC_finalization_proc *ofn, void **ocd)
{
    register_finalizer(obj, fn, cd, ofn, ocd);
}

void GC_register_finalizer_ignore_self(void *obj, GC_finalization_proc fn,
                                       void *cd, GC_finalization_proc *ofn,
                                       void **ocd)
{
    register_finalizer(obj, fn, cd, ofn, ocd);
}

void GC_register_finalizer_no_order(void *obj, GC_finalization_proc fn,
                                    void *cd, GC_finalization_proc *ofn,
                                    void **ocd)
{
    register_finalizer(obj, fn, cd, ofn, ocd);
}

void GC_register_finalizer_unreachable(void *obj, GC_finalization_proc fn,
                                       void *cd, GC_finalization_proc *ofn,
                                       void **ocd)
{
    register_finalizer(obj, fn, cd, ofn, ocd);
}

int GC_invoke_finalizers(void)
{
    if (!GC_is_init_called() || running_finalizers)
        return 0;
    running_finalizers = true;
    size_t n = gc_run_finalizers();
    running_finalizers = false;
    return (int)n;
}

int GC_should_invoke_finalizers(void)
{
    return GC_is_init_called() && finalize_ready();
}

void GC_set_finalizer_notifier(GC_finalizer_notifier_proc fn)
{
    atomic_store_explicit(&notifier, fn, memory_order_relaxed);
}

GC_finalizer_notifier_proc GC_get_finalizer_notifier(void)
{
    return atomic_load_explicit(&notifier, memory_order_relaxed);
}

void bdwgc_finalizers_after_allocation(void)
{
    if (!finalize_ready())
        return;
    if (!GC_get_finalize_on_demand()) {
        GC_invoke_finalizers();
        return;
    }
    GC_finalizer_notifier_proc fn =
        atomic_load_explicit(&notifier, memory_order_relaxed);
    GC_word now = GC_get_gc_no();
    if (fn && atomic_exchange_explicit(&notified_at_gc, now,
                                       memory_order_relaxed) != now)
        fn();
}
