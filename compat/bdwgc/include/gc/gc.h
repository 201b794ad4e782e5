/* gc/gc.h — the same as gc.h, for programs that include it by this name. */
#include "../gc.h"
