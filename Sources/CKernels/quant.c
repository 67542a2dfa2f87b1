// Activation quantization to 16-bit blocks and the integer-dot matmuls against Q4_0 / Q4_1 / Q8_0 weights.
#include "CKernels.h"
#include "internal.h"
#include <math.h>
#include <string.h>

typedef struct { uint16_t d; uint8_t qs[16]; } blk_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } blk_q4_1;
typedef struct { uint16_t d; int8_t qs[32]; } blk_q8_0;

#define QMAX 32767.0f

// MARK: scalar reference

static void quantize_scalar(const float *x, valet_q16 *y, int n) {
    for (int b = 0; b < n / VALET_QK; b++) {
        const float *v = x + b * VALET_QK;
        float amax = 0;
        for (int i = 0; i < VALET_QK; i++) amax = fmaxf(amax, fabsf(v[i]));
        float d = amax / QMAX, id = amax > 0 ? QMAX / amax : 0.0f;
        int sum = 0;
        for (int i = 0; i < VALET_QK; i++) {
            int q = (int)nearbyintf(v[i] * id);
            y[b].qs[i] = (int16_t)q;
            sum += q;
        }
        y[b].d = d;
        y[b].s = d * (float)sum;
    }
}

// Weight block j of a row against one activation block: d_w*d_x*Σ(code*q) + m_w*s_x, m_w being the value of
// code 0 (Q4_1's min, Q4_0's -8*d).
static float block_dot_scalar(int type, const uint8_t *row, int j, const valet_q16 *xb) {
    int64_t isum = 0;
    switch (type) {
    case VALET_TYPE_Q4_0: {
        const blk_q4_0 *b = (const blk_q4_0 *)row + j;
        for (int i = 0; i < 16; i++) isum += (b->qs[i] & 15) * xb->qs[i] + (b->qs[i] >> 4) * xb->qs[i + 16];
        float dw = valet_h2f(b->d);
        return dw * xb->d * (float)isum - 8.0f * dw * xb->s;
    }
    case VALET_TYPE_Q4_1: {
        const blk_q4_1 *b = (const blk_q4_1 *)row + j;
        for (int i = 0; i < 16; i++) isum += (b->qs[i] & 15) * xb->qs[i] + (b->qs[i] >> 4) * xb->qs[i + 16];
        return valet_h2f(b->d) * xb->d * (float)isum + valet_h2f(b->m) * xb->s;
    }
    default: {
        const blk_q8_0 *b = (const blk_q8_0 *)row + j;
        for (int i = 0; i < 32; i++) isum += b->qs[i] * xb->qs[i];
        return valet_h2f(b->d) * xb->d * (float)isum;
    }
    }
}

static int known_type(int type) {
    return type == VALET_TYPE_Q4_0 || type == VALET_TYPE_Q4_1 || type == VALET_TYPE_Q8_0;
}

int valet_matmul_q16_scalar(int type, const void *w, size_t rowBytes, int nb, int r0, int r1,
                            const valet_q16 *x, int xstride, int cols, float *out, int ldo) {
    if (!known_type(type)) return 0;
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * rowBytes;
        for (int c = 0; c < cols; c++) {
            const valet_q16 *xc = x + (size_t)c * xstride;
            float acc = 0;
            for (int j = 0; j < nb; j++) acc += block_dot_scalar(type, row, j, xc + j);
            out[(size_t)c * ldo + r] = acc;
        }
    }
    return 1;
}

// MARK: AVX2

#define TILE 4
#define MAX_NB 1024  /* rows up to 32768 values; longer rows take the scalar path */

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE __attribute__((always_inline)) inline

AVX2 static INLINE float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static void quantize_avx2(const float *x, valet_q16 *y, int n) {
    const __m256 signBit = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < n / VALET_QK; b++) {
        const float *p = x + b * VALET_QK;
        __m256 v0 = _mm256_loadu_ps(p), v1 = _mm256_loadu_ps(p + 8);
        __m256 v2 = _mm256_loadu_ps(p + 16), v3 = _mm256_loadu_ps(p + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(signBit, v0), _mm256_andnot_ps(signBit, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(signBit, v2), _mm256_andnot_ps(signBit, v3)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        float d = amax / QMAX, id = amax > 0 ? QMAX / amax : 0.0f;
        __m256 s = _mm256_set1_ps(id);
#define ROUND_MODE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, s), ROUND_MODE));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, s), ROUND_MODE));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, s), ROUND_MODE));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, s), ROUND_MODE));
        __m256i t = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i ts = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        ts = _mm_add_epi32(ts, _mm_shuffle_epi32(ts, 0x4E));
        ts = _mm_add_epi32(ts, _mm_shuffle_epi32(ts, 0xB1));
        int sum = _mm_cvtsi128_si32(ts);
        // packs works per 128-bit lane; the 64-bit permute restores element order.
        _mm256_storeu_si256((__m256i *)y[b].qs, _mm256_permute4x64_epi64(_mm256_packs_epi32(i0, i1), 0xD8));
        _mm256_storeu_si256((__m256i *)(y[b].qs + 16), _mm256_permute4x64_epi64(_mm256_packs_epi32(i2, i3), 0xD8));
        y[b].d = d;
        y[b].s = d * (float)sum;
    }
}

// One weight block (its 32 codes as two vectors of 16-bit lanes: elements 0-15 and 16-31) against NC columns.
// The weights are unpacked and their scale converted once per block; per column remain two madds, an add, one
// convert and one FMA. The column scales d_w*d_x of a block come from one vector multiply (dxT holds the tile's
// d_x column-major) and are read back as broadcasts.
AVX2 static INLINE void block_step(const int type, const int NC, const uint8_t *row, int j, const valet_q16 *x,
                                   int xstride, const float *dxT, float *mws, __m256 *acc) {
    __m256i wlo, whi;
    float dw;
    float sv[8] __attribute__((aligned(32)));
    if (type == VALET_TYPE_Q8_0) {
        const blk_q8_0 *b = (const blk_q8_0 *)row + j;
        wlo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->qs));
        whi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b->qs + 16)));
        dw = _cvtsh_ss(b->d);
    } else {
        const uint8_t *qs;
        if (type == VALET_TYPE_Q4_1) {
            // d and m are adjacent halves: one conversion for both.
            const blk_q4_1 *b = (const blk_q4_1 *)row + j;
            uint32_t dm;
            memcpy(&dm, b, 4);
            __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)dm));
            dw = _mm_cvtss_f32(f);
            _mm_store_ss(mws + j, _mm_movehdup_ps(f));
            qs = b->qs;
        } else {
            const blk_q4_0 *b = (const blk_q4_0 *)row + j;
            qs = b->qs; dw = _cvtsh_ss(b->d); mws[j] = -8.0f * dw;
        }
        // Byte i holds element i (low nibble) and element i + 16 (high nibble); widened to 16 bits, a mask and a
        // shift give both halves in element order.
        __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)qs));
        wlo = _mm256_and_si256(v, _mm256_set1_epi16(0x0F));
        whi = _mm256_srli_epi16(v, 4);
    }
    __m256 scales = _mm256_mul_ps(_mm256_set1_ps(dw), _mm256_loadu_ps(dxT + 8 * j));
    if (NC > 1) _mm256_store_ps(sv, scales);
    for (int c = 0; c < NC; c++) {
        const valet_q16 *xb = x + (size_t)c * xstride + j;
        __m256i p = _mm256_add_epi32(_mm256_madd_epi16(wlo, _mm256_loadu_si256((const __m256i *)xb->qs)),
                                     _mm256_madd_epi16(whi, _mm256_loadu_si256((const __m256i *)(xb->qs + 16))));
        __m256 s = NC > 1 ? _mm256_broadcast_ss(sv + c) : _mm256_broadcastss_ps(_mm256_castps256_ps128(scales));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[c]);
    }
}

// One weight row against NC columns (NC and type are compile-time constants after inlining). The offset term is
// Σ_j m_j * s_j, a short float dot after the block loop. Two accumulator sets (even/odd blocks) hide the FMA
// latency; every tile width sums in the same order, so a column's result does not depend on which other
// columns share its step (batched == alone, bit for bit).
AVX2 static INLINE void row_kernel(const int type, const int NC, const uint8_t *row, int nb, const valet_q16 *x,
                                   int xstride, const float *dxT, const float *sT, int sStride, float *mws,
                                   float *out, int ldo) {
    __m256 a0[NC], a1[NC];
    for (int c = 0; c < NC; c++) { a0[c] = _mm256_setzero_ps(); a1[c] = _mm256_setzero_ps(); }
    int j = 0;
    for (; j + 2 <= nb; j += 2) {
        block_step(type, NC, row, j, x, xstride, dxT, mws, a0);
        block_step(type, NC, row, j + 1, x, xstride, dxT, mws, a1);
    }
    if (j < nb) block_step(type, NC, row, j, x, xstride, dxT, mws, a0);
    for (int c = 0; c < NC; c++) {
        float r = hsum_ps(_mm256_add_ps(a0[c], a1[c]));
        if (type != VALET_TYPE_Q8_0) {
            const float *sc = sT + (size_t)c * sStride;
            __m256 m = _mm256_setzero_ps();
            int k = 0;
            for (; k + 8 <= nb; k += 8) m = _mm256_fmadd_ps(_mm256_loadu_ps(mws + k), _mm256_loadu_ps(sc + k), m);
            r += hsum_ps(m);
            for (; k < nb; k++) r += mws[k] * sc[k];
        }
        out[(size_t)c * ldo] = r;
    }
}

AVX2 static INLINE void matmul_typed(const int type, const void *w, size_t rowBytes, int nb, int r0, int r1,
                                     const valet_q16 *x, int xstride, int cols, float *out, int ldo) {
    float dxT[MAX_NB * 8] __attribute__((aligned(32)));
    float sT[TILE * MAX_NB];
    float mws[MAX_NB];
    // Rows in chunks that stay in L2 while every column tile passes over them.
    int chunk = (int)(65536 / rowBytes);
    if (chunk < 1) chunk = 1;
    for (int rc = r0; rc < r1; rc += chunk) {
        int re = rc + chunk < r1 ? rc + chunk : r1;
        for (int c0 = 0; c0 < cols; c0 += TILE) {
            int nc = cols - c0 < TILE ? cols - c0 : TILE;
            const valet_q16 *xc = x + (size_t)c0 * xstride;
            // Column-major copies of the tile's scales and sums: contiguous for the vector loads above.
            for (int j = 0; j < nb; j++)
                for (int c = 0; c < 8; c++) dxT[8 * j + c] = c < nc ? xc[(size_t)c * xstride + j].d : 0;
            for (int c = 0; c < nc; c++)
                for (int j = 0; j < nb; j++) sT[c * nb + j] = xc[(size_t)c * xstride + j].s;
            float *oc = out + (size_t)c0 * ldo;
            for (int r = rc; r < re; r++) {
                const uint8_t *row = (const uint8_t *)w + (size_t)r * rowBytes;
                switch (nc) {
                case 4: row_kernel(type, 4, row, nb, xc, xstride, dxT, sT, nb, mws, oc + r, ldo); break;
                case 3: row_kernel(type, 3, row, nb, xc, xstride, dxT, sT, nb, mws, oc + r, ldo); break;
                case 2: row_kernel(type, 2, row, nb, xc, xstride, dxT, sT, nb, mws, oc + r, ldo); break;
                default: row_kernel(type, 1, row, nb, xc, xstride, dxT, sT, nb, mws, oc + r, ldo); break;
                }
            }
        }
    }
}

// Specialized per type so the per-block branches fold away.
AVX2 static void matmul_q4_1_avx2(const void *w, size_t rb, int nb, int r0, int r1, const valet_q16 *x, int xs,
                                  int cols, float *out, int ldo) {
    matmul_typed(VALET_TYPE_Q4_1, w, rb, nb, r0, r1, x, xs, cols, out, ldo);
}
AVX2 static void matmul_q4_0_avx2(const void *w, size_t rb, int nb, int r0, int r1, const valet_q16 *x, int xs,
                                  int cols, float *out, int ldo) {
    matmul_typed(VALET_TYPE_Q4_0, w, rb, nb, r0, r1, x, xs, cols, out, ldo);
}
AVX2 static void matmul_q8_0_avx2(const void *w, size_t rb, int nb, int r0, int r1, const valet_q16 *x, int xs,
                                  int cols, float *out, int ldo) {
    matmul_typed(VALET_TYPE_Q8_0, w, rb, nb, r0, r1, x, xs, cols, out, ldo);
}
#endif

// MARK: dispatch

void valet_quantize_q16(const float *x, valet_q16 *y, int n) {
#if defined(__x86_64__)
    if (valet_use_avx2()) { quantize_avx2(x, y, n); return; }
#endif
    quantize_scalar(x, y, n);
}

int valet_matmul_q16(int type, const void *w, size_t rowBytes, int nb, int r0, int r1,
                     const valet_q16 *x, int xstride, int cols, float *out, int ldo) {
#if defined(__x86_64__)
    if (valet_use_avx2() && nb <= MAX_NB) {
        switch (type) {
        case VALET_TYPE_Q4_1: matmul_q4_1_avx2(w, rowBytes, nb, r0, r1, x, xstride, cols, out, ldo); return 1;
        case VALET_TYPE_Q4_0: matmul_q4_0_avx2(w, rowBytes, nb, r0, r1, x, xstride, cols, out, ldo); return 1;
        case VALET_TYPE_Q8_0: matmul_q8_0_avx2(w, rowBytes, nb, r0, r1, x, xstride, cols, out, ldo); return 1;
        default: return 0;
        }
    }
#endif
    return valet_matmul_q16_scalar(type, w, rowBytes, nb, r0, r1, x, xstride, cols, out, ldo);
}
