/*
 * os.h — the operating system underneath: memory mapping, clocks, CPUs.
 */
#ifndef CGC_OS_H
#define CGC_OS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Map size bytes of zeroed read-write memory, or NULL. Memory is committed
 * lazily by the kernel, so reserving is cheap. */
void *os_map(size_t size);
/* Map size bytes aligned to align (a power of two), or NULL. */
void *os_map_aligned(size_t size, size_t align);
void os_unmap(void *p, size_t size);
/* Give the pages back to the OS; they read as zero afterwards. */
void os_release(void *p, size_t size);

/* The largest request the machine could ever back: physical RAM + swap,
 * or RLIMIT_AS / RLIMIT_DATA when lower (UINT64_MAX if unknown). Probed
 * once per gc_init by os_probe_memory. */
void os_probe_memory(void);
uint64_t os_backable_bytes(void);

/* Start one of the collector's own threads with every signal blocked:
 * they never run the program's signal handlers (a process-directed signal
 * goes to one of the program's threads instead). 0 or an error number. */
int os_thread_create(pthread_t *thread, void *(*main)(void *), void *arg);

int os_cpu_count(void);
uint64_t os_monotonic_ns(void);
uint64_t os_realtime_ns(void);
/* CPU time consumed by the calling thread. */
uint64_t os_thread_cpu_ns(void);
/* Let the calling thread's short sleeps end on time: Linux lets a timer
 * of a normal thread fire up to 50 µs late (its timer slack) to batch
 * wake-ups; this sets the slack to 1 µs. */
void os_precise_sleeps(void);

#endif
