/*
 * env.h — the CGC_* environment variables, read once per gc_init.
 */
#ifndef CGC_ENV_H
#define CGC_ENV_H

#include <stdbool.h>
#include <stdint.h>

struct gc_config {
    int percent;          /* CGC_PERCENT; -1 = off */
    int64_t memory_limit; /* CGC_MEMLIMIT in bytes; -1 = none */
    unsigned workers;     /* CGC_WORKERS */
    int signal;           /* CGC_SIGNAL: the preemption signal */
    bool gctrace;         /* CGC_DEBUG=gctrace=1 */
    bool stoptheworld;    /* CGC_DEBUG=gcstoptheworld=1 */
    bool checkmark;       /* CGC_DEBUG=gccheckmark=1 */
    bool clobberfree;     /* CGC_DEBUG=clobberfree=1 */
    bool pacertrace;      /* CGC_DEBUG=gcpacertrace=1 */
    bool scavtrace;       /* CGC_DEBUG=scavtrace=1 */
    bool asyncpreemptoff; /* CGC_DEBUG=asyncpreemptoff=1: no signals */
    bool scan_globals;    /* CGC_SCAN_GLOBALS: module data and TLS are roots */
};

/* A library built on cgc for programs that store pointers without
 * GC_WRITE (the Boehm layer, compat/bdwgc) makes stop-the-world marking the
 * default; CGC_DEBUG=gcstoptheworld=0 still chooses concurrent marking.
 * Call before gc_init. */
void env_default_stop_the_world(bool on);

/* Parse the environment; each malformed variable is reported once on stderr
 * and its default used. */
void env_read_config(struct gc_config *out);

extern struct gc_config gc_config;

#endif
