// Run-time CPU feature detection, done once.
#include "CKernels.h"
#include "internal.h"
#include <stdlib.h>

int valet_cpu_has_avx2(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return 0;
#endif
}

static int cachedLevel = -1;

int valet_use_avx2(void) {
    // Racing first calls compute the same value, so a plain int is enough.
    int level = __atomic_load_n(&cachedLevel, __ATOMIC_RELAXED);
    if (level < 0) {
        const char *force = getenv("VALET_FORCE_SCALAR");
        level = (force && force[0] == '1') ? 0 : valet_cpu_has_avx2();
        __atomic_store_n(&cachedLevel, level, __ATOMIC_RELAXED);
    }
    return level;
}
