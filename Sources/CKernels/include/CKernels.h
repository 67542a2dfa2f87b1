// Quantized dot-product and matmul kernels (AVX2 with a scalar fallback), called through Inference/Kernels.
#ifndef VALET_CKERNELS_H
#define VALET_CKERNELS_H
#include <stdint.h>
#include <stddef.h>
int valet_cpu_has_avx2(void);
#endif
