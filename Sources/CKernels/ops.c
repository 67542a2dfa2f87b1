// Float-side kernels: norms, SwiGLU, half conversion, float matmul, row dequantization and paged attention.
#include "CKernels.h"
#include "internal.h"
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// e^x for 8 lanes: x = n*ln2 + r with |r| <= ln2/2, e^r by the Cephes expf polynomial, 2^n through the exponent
// bits. Within 2 ulp of expf over the float range; inputs beyond ±88.37 are clamped (0 and 2.4e38 ends).
AVX2 static __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-88.3762626647949f)), _mm256_set1_ps(88.3762626647949f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // ln2 split in two so n*C1 is exact.
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // n = -127 (only at the clamp) gives a zero scale: e^-88.4 is below the smallest normal anyway.
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

AVX2 static void swiglu_avx2(float *gate, const float *up, int n) {
    int i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, exp8(_mm256_xor_ps(g, sign))));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/// Replaces scores[0..<n] by e^(score - mx) and returns their sum.
AVX2 static float softmax_numerators_avx2(float *scores, int n, float mx) {
    __m256 m = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    int p = 0;
    for (; p + 8 <= n; p += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(scores + p), m));
        _mm256_storeu_ps(scores + p, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum8(acc);
    for (; p < n; p++) {
        scores[p] = expf(scores[p] - mx);
        sum += scores[p];
    }
    return sum;
}

AVX2 static float dot_f32_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

AVX2 static float dot_f16_avx2(const float *a, const uint16_t *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i))), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i + 8))), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * valet_h2f(b[i]);
    return s;
}

AVX2 static void axpy_f16_avx2(float *y, float w, const uint16_t *x, int n) {
    __m256 wv = _mm256_set1_ps(w);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(wv, xv, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) y[i] += w * valet_h2f(x[i]);
}

AVX2 static void f32_to_f16_avx2(const float *x, uint16_t *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) y[i] = valet_f2h(x[i]);
}
#endif

float valet_dot_f32(const float *a, const float *b, int n) {
#if defined(__x86_64__)
    if (valet_use_avx2()) return dot_f32_avx2(a, b, n);
#endif
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static float dot_f16(const float *a, const uint16_t *b, int n) {
#if defined(__x86_64__)
    if (valet_use_avx2()) return dot_f16_avx2(a, b, n);
#endif
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * valet_h2f(b[i]);
    return s;
}

static void axpy_f16(float *y, float w, const uint16_t *x, int n) {
#if defined(__x86_64__)
    if (valet_use_avx2()) { axpy_f16_avx2(y, w, x, n); return; }
#endif
    for (int i = 0; i < n; i++) y[i] += w * valet_h2f(x[i]);
}

void valet_f32_to_f16(const float *x, uint16_t *y, int n) {
#if defined(__x86_64__)
    if (valet_use_avx2()) { f32_to_f16_avx2(x, y, n); return; }
#endif
    for (int i = 0; i < n; i++) y[i] = valet_f2h(x[i]);
}

void valet_f32_to_f16_scalar(const float *x, uint16_t *y, int n) {
    for (int i = 0; i < n; i++) y[i] = valet_f2h(x[i]);
}

void valet_f16_to_f32(const uint16_t *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = valet_h2f(x[i]);
}

void valet_rmsnorm(const float *x, const float *weight, float *out, int n, float eps) {
    float ss = valet_dot_f32(x, x, n);
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * weight[i];
}

void valet_swiglu(float *gate, const float *up, int n) {
#if defined(__x86_64__)
    if (valet_use_avx2()) { swiglu_avx2(gate, up, n); return; }
#endif
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

int valet_matmul_float(int type, const void *w, size_t rowBytes, int n, int r0, int r1,
                       const float *x, int xstride, int cols, float *out, int ldo) {
    if (type != VALET_TYPE_F32 && type != VALET_TYPE_F16) return 0;
    for (int r = r0; r < r1; r++) {
        const void *row = (const uint8_t *)w + (size_t)r * rowBytes;
        for (int c = 0; c < cols; c++) {
            const float *xc = x + (size_t)c * xstride;
            out[(size_t)c * ldo + r] = type == VALET_TYPE_F32 ? valet_dot_f32(row, xc, n) : dot_f16(xc, row, n);
        }
    }
    return 1;
}

int valet_dequantize_row(int type, const void *w, size_t rowBytes, int row, float *out, int n) {
    const uint8_t *p = (const uint8_t *)w + (size_t)row * rowBytes;
    switch (type) {
    case VALET_TYPE_F32:
        memcpy(out, p, (size_t)n * 4);
        return 1;
    case VALET_TYPE_F16:
        valet_f16_to_f32((const uint16_t *)p, out, n);
        return 1;
    case VALET_TYPE_Q8_0:
        for (int b = 0; b < n / 32; b++, p += 34) {
            uint16_t dh;
            memcpy(&dh, p, 2);
            float d = valet_h2f(dh);
            for (int i = 0; i < 32; i++) out[b * 32 + i] = d * (float)(int8_t)p[2 + i];
        }
        return 1;
    case VALET_TYPE_Q4_0:
    case VALET_TYPE_Q4_1: {
        int q41 = type == VALET_TYPE_Q4_1, bytes = q41 ? 20 : 18;
        for (int b = 0; b < n / 32; b++, p += bytes) {
            uint16_t dh, mh = 0;
            memcpy(&dh, p, 2);
            if (q41) memcpy(&mh, p + 2, 2);
            float d = valet_h2f(dh), m = q41 ? valet_h2f(mh) : -8.0f * d;
            const uint8_t *qs = p + (q41 ? 4 : 2);
            for (int i = 0; i < 16; i++) {
                out[b * 32 + i] = d * (float)(qs[i] & 15) + m;
                out[b * 32 + i + 16] = d * (float)(qs[i] >> 4) + m;
            }
        }
        return 1;
    }
    default:
        return 0;
    }
}

#if defined(__x86_64__)
// One head, head size 64: q and the output accumulator stay in registers, K/V rows are converted from half on the
// fly, and positions are walked block by block (no division per position).
AVX2 static void attention_head64_avx2(const float *q, const uint16_t *kbase, const uint16_t *vbase,
                                       const int32_t *blockTable, size_t blockStride, int blockSize, int kvdim,
                                       size_t headOffset, int npos, float scale, float *scores, float *out) {
    __m256 qv[8];
    for (int i = 0; i < 8; i++) qv[i] = _mm256_loadu_ps(q + 8 * i);
    float mx = -INFINITY;
    for (int p0 = 0; p0 < npos; p0 += blockSize) {
        const uint16_t *k = kbase + (size_t)blockTable[p0 / blockSize] * blockStride + headOffset;
        int n = npos - p0 < blockSize ? npos - p0 : blockSize;
        for (int i = 0; i < n; i++, k += kvdim) {
            __m256 a = _mm256_mul_ps(qv[0], _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)k)));
            __m256 b = _mm256_mul_ps(qv[1], _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + 8))));
            for (int j = 2; j < 8; j += 2) {
                a = _mm256_fmadd_ps(qv[j], _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + 8 * j))), a);
                b = _mm256_fmadd_ps(qv[j + 1], _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + 8 * j + 8))), b);
            }
            float s = hsum8(_mm256_add_ps(a, b)) * scale;
            scores[p0 + i] = s;
            if (s > mx) mx = s;
        }
    }
    const float inv = 1.0f / softmax_numerators_avx2(scores, npos, mx);
    __m256 o[8];
    for (int i = 0; i < 8; i++) o[i] = _mm256_setzero_ps();
    for (int p0 = 0; p0 < npos; p0 += blockSize) {
        const uint16_t *v = vbase + (size_t)blockTable[p0 / blockSize] * blockStride + headOffset;
        int n = npos - p0 < blockSize ? npos - p0 : blockSize;
        for (int i = 0; i < n; i++, v += kvdim) {
            __m256 w = _mm256_set1_ps(scores[p0 + i] * inv);
            for (int j = 0; j < 8; j++) {
                o[j] = _mm256_fmadd_ps(w, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + 8 * j))), o[j]);
            }
        }
    }
    for (int i = 0; i < 8; i++) _mm256_storeu_ps(out + 8 * i, o[i]);
}
#endif

void valet_attention_f16(const float *q, int nhead, int nkv, int hd, int h0, int h1,
                         const uint16_t *kbase, const uint16_t *vbase, const int32_t *blockTable,
                         size_t blockStride, int blockSize, int npos, float scale, float *scores, float *out) {
    int kvdim = nkv * hd, group = nhead / nkv;
    for (int h = h0; h < h1; h++) {
        const float *qh = q + (size_t)h * hd;
        size_t headOffset = (size_t)(h / group) * hd;
#if defined(__x86_64__)
        if (hd == 64 && valet_use_avx2()) {
            attention_head64_avx2(qh, kbase, vbase, blockTable, blockStride, blockSize, kvdim, headOffset, npos, scale,
                                  scores, out + (size_t)h * hd);
            continue;
        }
#endif
        float mx = -INFINITY;
        for (int p = 0; p < npos; p++) {
            size_t at = (size_t)blockTable[p / blockSize] * blockStride + (size_t)(p % blockSize) * kvdim + headOffset;
            float s = dot_f16(qh, kbase + at, hd) * scale;
            scores[p] = s;
            if (s > mx) mx = s;
        }
        float sum = 0;
        for (int p = 0; p < npos; p++) {
            float e = expf(scores[p] - mx);
            scores[p] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
        float *oh = out + (size_t)h * hd;
        for (int i = 0; i < hd; i++) oh[i] = 0;
        for (int p = 0; p < npos; p++) {
            size_t at = (size_t)blockTable[p / blockSize] * blockStride + (size_t)(p % blockSize) * kvdim + headOffset;
            axpy_f16(oh, scores[p] * inv, vbase + at, hd);
        }
    }
}
