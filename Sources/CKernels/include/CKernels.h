// Quantized dot-product and matmul kernels (AVX2 with a scalar fallback), called through Inference/Kernels.
#ifndef VALET_CKERNELS_H
#define VALET_CKERNELS_H
#include <stdint.h>
#include <stddef.h>

int valet_cpu_has_avx2(void);
/// 1 when the kernels take the AVX2 path: the CPU has it and VALET_FORCE_SCALAR is not 1 (decided once).
int valet_use_avx2(void);

/// Elements per quantization block of the 32-wide types.
#define VALET_QK 32

/// Activation rows quantized in 32-value blocks to 16-bit integers: x ≈ d_j * q. 16 bits rather than llama.cpp's
/// 8: with 8-bit activations the logits drift ~5% of their range from an exact float forward pass on the default
/// model (argmax and greedy continuations differ from the oracle); 16 bits bring that to ~0.1%.
/// A row of n values (nb = n/32 blocks) is laid out as nb*32 int16 codes (block j at element 32j, one cache line
/// each), then nb floats d_j, then nb floats s_j = d_j * Σq (for the offset terms of Q4_0 / Q4_1); it takes
/// valet_q16_row_bytes(n) bytes, a multiple of 64. Rows must start 64-byte aligned for the AVX2 kernels.
size_t valet_q16_row_bytes(int n);

/// GGML type ids the fast kernels handle (same numbers as GGMLType).
enum {
    VALET_TYPE_F32 = 0,
    VALET_TYPE_F16 = 1,
    VALET_TYPE_Q4_0 = 2,
    VALET_TYPE_Q4_1 = 3,
    VALET_TYPE_Q8_0 = 8,
};

/// Quantizes n floats (n a multiple of 32) into one row in the layout above.
void valet_quantize_q16(const float *x, void *row, int n);

/// Rows [r0, r1) of a quantized weight matrix (Q4_0, Q4_1 or Q8_0; rows rowBytes apart, nb blocks each) times
/// `cols` quantized activation rows (row c starts at x + c*xRowBytes bytes). Writes out[c*ldo + r].
/// Each weight block is unpacked once and reused for every column. Returns 0 if the type has no kernel.
int valet_matmul_q16(int type, const void *w, size_t rowBytes, int nb, int r0, int r1,
                     const void *x, size_t xRowBytes, int cols, float *out, int ldo);
/// The same contract computed one value at a time: the reference for tests and for CPUs without AVX2.
int valet_matmul_q16_scalar(int type, const void *w, size_t rowBytes, int nb, int r0, int r1,
                            const void *x, size_t xRowBytes, int cols, float *out, int ldo);

/// Rows [r0, r1) of an F32 or F16 matrix (n values per row) times float columns: out[c*ldo + r].
int valet_matmul_float(int type, const void *w, size_t rowBytes, int n, int r0, int r1,
                       const float *x, int xstride, int cols, float *out, int ldo);

/// Dot product of two float vectors.
float valet_dot_f32(const float *a, const float *b, int n);

/// Row `row` of an F32/F16/Q4_0/Q4_1/Q8_0 matrix as floats (embedding lookup). Returns 0 for other types.
int valet_dequantize_row(int type, const void *w, size_t rowBytes, int row, float *out, int n);

/// out = x / rms(x) * weight.
void valet_rmsnorm(const float *x, const float *weight, float *out, int n, float eps);

/// gate[i] = silu(gate[i]) * up[i].
void valet_swiglu(float *gate, const float *up, int n);

/// Float to IEEE half and back, n values.
void valet_f32_to_f16(const float *x, uint16_t *y, int n);
void valet_f16_to_f32(const uint16_t *x, float *y, int n);
/// The portable conversion the AVX2 path must agree with (for tests).
void valet_f32_to_f16_scalar(const float *x, uint16_t *y, int n);

/// Attention of one query token over positions 0..<npos of its sequence, for heads [h0, h1) (grouped-query).
/// The KV pool is paged: position p lives in block blockTable[p / blockSize]; its K row is at
/// kbase + block*blockStride + (p % blockSize)*nkv*hd (halves), its V row likewise from vbase.
/// q and out: nhead*hd floats; scores: scratch of npos floats.
void valet_attention_f16(const float *q, int nhead, int nkv, int hd, int h0, int h1,
                         const uint16_t *kbase, const uint16_t *vbase, const int32_t *blockTable,
                         size_t blockStride, int blockSize, int npos, float scale, float *scores, float *out);

/// Persistent worker threads: spin while work keeps coming, park on a futex after `spinMicros` idle.
typedef struct valet_pool valet_pool;
typedef void (*valet_pool_fn)(void *ctx, int thread, int nthreads);
valet_pool *valet_pool_create(int nthreads, int spinMicros);
/// Runs fn(ctx, t, n) for t in 0..<n, the caller taking t = 0, and returns when all are done.
void valet_pool_run(valet_pool *pool, valet_pool_fn fn, void *ctx);
int valet_pool_threads(const valet_pool *pool);
/// Inside a job: the next unit of shared work (0, 1, 2, … across all threads; reset by every run).
long valet_pool_ticket(valet_pool *pool);
void valet_pool_destroy(valet_pool *pool);

#endif
