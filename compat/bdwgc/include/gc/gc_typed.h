/* gc/gc_typed.h — the same as gc_typed.h, for programs that include it by
 * this name. */
#include "../gc_typed.h"
