/*
 * os.c — thin wrappers over mmap/madvise and the clocks, so the rest of the
 * library never calls the system directly. Every mapping is private,
 * anonymous and MAP_NORESERVE: the heap reserves address space in 64 MiB
 * arenas and the kernel commits pages on first touch. os_probe_memory runs
 * once per gc_init (from heap_init); afterwards os_backable_bytes only
 * reads what it found.
 */
#define _GNU_SOURCE
#include "os.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

/* Set by os_probe_memory during gc_init, before any allocation can read it
 * (gc_init publishes its work with a release store), never written after. */
static uint64_t backable_bytes = UINT64_MAX;

static uint64_t lower_to_rlimit(uint64_t bytes, int resource)
{
    struct rlimit r;
    if (getrlimit(resource, &r) == 0 && r.rlim_cur != RLIM_INFINITY &&
        (uint64_t)r.rlim_cur < bytes)
        return (uint64_t)r.rlim_cur;
    return bytes;
}

void os_probe_memory(void)
{
    /* The rule of Linux's heuristic overcommit, which refuses a malloc that
     * is larger than RAM + swap: no request over that can ever be backed.
     * A resource limit on the address space or on data, when lower, is
     * the bound instead. A figure the system does not give imposes none. */
    uint64_t bytes = UINT64_MAX;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    struct sysinfo si;
    if (pages > 0 && page > 0 && sysinfo(&si) == 0)
        bytes = (uint64_t)pages * (uint64_t)page +
                (uint64_t)si.totalswap * (uint64_t)si.mem_unit;
    bytes = lower_to_rlimit(bytes, RLIMIT_AS);
    bytes = lower_to_rlimit(bytes, RLIMIT_DATA);
    backable_bytes = bytes;
}

uint64_t os_backable_bytes(void)
{
    return backable_bytes;
}

void *os_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *os_map_aligned(size_t size, size_t align)
{
    /* Over-map by align and trim both ends: the kernel gives no alignment
     * guarantee beyond the page. */
    if (size + align < size)
        return NULL;
    char *raw = os_map(size + align);
    if (!raw)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)raw;
    size_t tail = align - head;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap((char *)start + size, tail);
    return (void *)start;
}

void os_unmap(void *p, size_t size)
{
    munmap(p, size);
}

void os_release(void *p, size_t size)
{
    madvise(p, size, MADV_DONTNEED);
}

int os_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t os_monotonic_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

uint64_t os_realtime_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

uint64_t os_thread_cpu_ns(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

int os_thread_create(pthread_t *thread, void *(*main)(void *), void *arg)
{
    /* The new thread inherits the creator's mask: block everything for the
     * creation, then restore it for the creator. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(thread, NULL, main, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

void os_precise_sleeps(void)
{
    /* 1 µs; failure only leaves the default slack. */
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
}
