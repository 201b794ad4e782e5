/*
 * thread_role.h — the collector's own threads (collector, mark workers,
 * sweeper, scavenger) are never attached: they hold no GC pointers and the
 * world never waits for them. A handler the program installs runs on them;
 * if it calls gc_read_stats, gc_init must not attach them.
 */
#ifndef CGC_THREAD_ROLE_H
#define CGC_THREAD_ROLE_H

#include <stdbool.h>

void thread_role_set_internal(void);
bool thread_role_is_internal(void);

#endif
