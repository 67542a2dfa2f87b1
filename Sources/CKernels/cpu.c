// Run-time CPU feature detection, done once.
#include "CKernels.h"
int valet_cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
