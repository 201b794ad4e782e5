/*
 * test_globals_dso.c — a module that test_globals loads with dlopen and
 * unloads with dlclose: its data and bss are roots while it is loaded, and
 * stop being roots once it is gone. It does not link cgc: the test writes
 * into these variables (found with dlsym) through GC_WRITE itself.
 */
#include "test_globals_dso.h"

void *cgc_test_dso_bss[DSO_SLOTS];
struct cgc_test_dso_data cgc_test_dso_data = {.tag = 7};
