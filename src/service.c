/*
 * service.c — starting and stopping the collector's background threads
 * (see service.h).
 */
#include "service.h"

#include "os.h"

int service_start(struct service *s, void *(*main)(void *))
{
    s->stop = false;
    if (os_thread_create(&s->thread, main, NULL))
        return -1;
    s->running = true;
    return 0;
}

void service_stop(struct service *s)
{
    if (!s->running)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s->running = false;
}
