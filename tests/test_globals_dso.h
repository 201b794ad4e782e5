/*
 * test_globals_dso.h — what test_globals finds in the module it dlopens
 * (test_globals_dso.c): GC pointers are stored only there.
 */
#ifndef CGC_TEST_GLOBALS_DSO_H
#define CGC_TEST_GLOBALS_DSO_H

#define DSO_SLOTS 64

/* In .bss. */
extern void *cgc_test_dso_bss[DSO_SLOTS];

/* In .data: the non-zero tag keeps the whole structure there. */
struct cgc_test_dso_data {
    long tag;
    void *slots[DSO_SLOTS];
};
extern struct cgc_test_dso_data cgc_test_dso_data;

#endif
