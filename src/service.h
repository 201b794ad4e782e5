/*
 * service.h — a background thread of the collector's own (the collector
 * thread, the background sweeper, the scavenger): its lock, the condition
 * it sleeps on, and the stop flag gc_shutdown raises. The fields are
 * protected by `lock`; `running` belongs to whoever starts and stops it.
 */
#ifndef CGC_SERVICE_H
#define CGC_SERVICE_H

#include <pthread.h>
#include <stdbool.h>

struct service {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool running, stop;
};

#define SERVICE_INITIALIZER                                                    \
    {                                                                          \
        .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER    \
    }

/* Start main on a new thread; -1 if it cannot be created. */
int service_start(struct service *s, void *(*main)(void *));
/* Raise the stop flag, wake the thread and wait for it to end. */
void service_stop(struct service *s);

#endif
