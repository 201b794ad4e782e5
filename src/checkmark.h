/*
 * checkmark.h — CGC_DEBUG=gccheckmark=1: after marking, re-mark from the
 * roots with the world stopped and abort on any reachable object that the
 * marking missed (Go's checkmark mode).
 */
#ifndef CGC_CHECKMARK_H
#define CGC_CHECKMARK_H

/* World stopped, registry lock held, marking finished. Aborts with the
 * object, its referrer and a hint about GC_WRITE if marking missed one. */
void checkmark_verify(void);

/* World stopped, marking about to start: abort unless the last cycle's
 * sweep is over (no span unswept or being swept). Marking over an unswept
 * span skips its objects as already marked, and a sweep that runs on
 * through the mark wipes the new mark bits. */
void checkmark_verify_swept(void);

#endif
